import {execFile, spawnSync} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ensureCa, ensureClientCert, issueServerCert, type KeyType} from '../../src/pki/ca.js'
import {Store} from '../../src/store/store.js'

// Go's TLS stack, through the real docker CLI, is the client that matters: it must parse belt's
// PKCS#8 keys, verify the chain (ECDSA or RSA) and the IP SAN, and present the client certificate
// from the store's certs/ used as DOCKER_CERT_PATH as it is. The engine here is a stand-in that
// answers /_ping and /version over node:https with the same mutual-TLS settings as dockerd.
const run = promisify(execFile)
const hasDocker = spawnSync('docker', ['--version'], {stdio: 'ignore'}).status === 0
let tmp: string

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-pki-docker-'))
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

describe.skipIf(!hasDocker)('the docker CLI against belt certificates', () => {
  it.each<KeyType>(['ecdsa-p256', 'rsa-2048'])('with %s: docker version succeeds with DOCKER_CERT_PATH=<store>/certs', async (keyType) => {
    const store = new Store(path.join(tmp, keyType))
    const ca = await ensureCa(store, {keyType})
    const client = await ensureClientCert(store, ca)
    const server = await issueServerCert(ca, {hostName: 'engine', machineName: 'node1', addresses: ['127.0.0.1']})
    const clients: string[] = []
    const engine = https.createServer({cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true}, (req, res) => {
      clients.push(String((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN))
      res.setHeader('Api-Version', '1.41')
      res.setHeader('Content-Type', 'application/json')
      if (req.url?.endsWith('/_ping')) return void res.end('OK')
      res.end(JSON.stringify({Version: '99.0.0-belt-test', ApiVersion: '1.41', MinAPIVersion: '1.12', Os: 'linux', Arch: 'amd64'}))
    })
    await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve))
    try {
      const {port} = engine.address() as AddressInfo
      const env = {...process.env, DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: client.dir, DOCKER_CONFIG: path.join(tmp, 'docker-config')}
      const r = await run('docker', ['version', '--format', '{{.Server.Version}}'], {env})
      expect(r.stdout.trim()).toBe('99.0.0-belt-test')
      expect(clients.length).toBeGreaterThan(0)
      expect(new Set(clients)).toEqual(new Set(['belt client']))
      // And a CA it does not know is refused by the CLI (no silent fallback to insecure).
      const other = await ensureCa(new Store(path.join(tmp, `${keyType}-other`)), {keyType})
      const otherClient = await ensureClientCert(new Store(path.join(tmp, `${keyType}-other`)), other)
      await expect(run('docker', ['version', '--format', '{{.Server.Version}}'], {env: {...env, DOCKER_CERT_PATH: otherClient.dir}})).rejects.toThrow()
    } finally {
      await new Promise((r) => engine.close(r))
    }
  })
})
