import {execFile} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'
import {belt} from '../helpers/cli.js'
import {sleepImageTar} from '../helpers/image.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

const run = promisify(execFile)
// A subnet of its own, so this file never meets other tests' hosts.
const SUBNET = ['--local-subnet', '10.219.0.0/16']
let tmp: string
let store: string
let before: SystemSnapshot
let dockerEnv: NodeJS.ProcessEnv

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-bootstrap-'))
  store = path.join(tmp, 'store')
  before = await systemSnapshot()
})
afterAll(async () => {
  await belt(['rm', '-y', '--force', 'node*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

/** The real docker CLI with the variables `belt env NAME` printed (and a config dir of our own). */
async function docker(args: string[], env: NodeJS.ProcessEnv = dockerEnv) {
  return run('docker', args, {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...env}})
}

/** `belt env` output for bash, parsed back into variables. */
function parseEnv(out: string): NodeJS.ProcessEnv {
  return Object.fromEntries([...out.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
}

describe('create bootstraps engines with mutual TLS', () => {
  it('belt create node[1:3] ends with three engines, each with its own engine ID', async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, 'node[1:3]'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/Created and bootstrapped 3 of 3 hosts/)
    const s = new Store(store)
    const ids = await Promise.all(['node1', 'node2', 'node3'].map(async (n) => (await s.get(n)).engine?.id))
    expect(new Set(ids).size).toBe(3)
    expect((await s.get('node2')).phase).toBe('bootstrapped')
  })

  it('eval "$(belt env node2)" && docker info: the real docker CLI reaches node2 over TLS', async () => {
    const e = await belt(['env', '--shell', 'bash', 'node2'], {store})
    expect(e.code, e.stderr).toBe(0)
    dockerEnv = parseEnv(e.stdout)
    expect(dockerEnv).toMatchObject({DOCKER_TLS_VERIFY: '1', DOCKER_MACHINE_NAME: 'node2', DOCKER_CERT_PATH: path.join(store, 'certs')})
    expect(dockerEnv.DOCKER_HOST).toMatch(/^tcp:\/\/10\.219\.\d+\.\d+:2376$/)
    const info = JSON.parse((await docker(['info', '--format', '{{json .}}'])).stdout) as {Name: string; Labels: string[]}
    expect(info.Name).toBe('node2')
    expect(info.Labels).toContain('provider=local')
  })

  it('a connection without the client certificate is refused', async () => {
    const ca = await readFile(path.join(store, 'certs', 'ca.pem'), 'utf8')
    const url = new URL(dockerEnv.DOCKER_HOST!.replace('tcp:', 'https:'))
    const attempt = new Promise((resolve, reject) => {
      const req = https.get({host: url.hostname, port: url.port, path: '/info', ca, agent: false}, (res) => {
        res.resume()
        resolve(res.statusCode)
      })
      req.on('error', reject)
    })
    await expect(attempt).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i)
    // And the CLI without the certificate directory fails too.
    await expect(docker(['info'], {DOCKER_HOST: dockerEnv.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: path.join(tmp, 'nothing')})).rejects.toThrow()
  })

  it('provision again changes nothing and restarts nothing', async () => {
    const r = await belt(['provision', 'node1'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/node1: engine .* ready .*unchanged/)
    expect(r.stderr).not.toMatch(/restarting/)
  })

  it('regenerate-certs node2 keeps the engine ID and the running container, and docker still works', async () => {
    await docker(['import', sleepImageTar(tmp), 'belt-test/sleep:1'])
    const id = (await docker(['run', '-d', '--restart', 'always', 'belt-test/sleep:1', '/usr/bin/sleep', '100000'])).stdout.trim()
    const engineId = (await docker(['info', '--format', '{{.ID}}'])).stdout.trim()
    const s = new Store(store)
    const fpBefore = (await s.get('node2')).engine?.certFingerprint
    const r = await belt(['regenerate-certs', '-y', 'node2'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/new certificate/)
    expect((await s.get('node2')).engine?.certFingerprint).not.toBe(fpBefore)
    expect((await docker(['info', '--format', '{{.ID}}'])).stdout.trim()).toBe(engineId)
    const state = (await docker(['inspect', '--format', '{{.State.Running}}', id])).stdout.trim()
    expect(state).toBe('true')
  })

  it('belt env --context creates a docker context the CLI uses', async () => {
    const r = await belt(['env', '--context', 'node3'], {store, env: {DOCKER_CONFIG: path.join(tmp, 'docker-config')}})
    expect(r.code, r.stderr).toBe(0)
    const name = (await docker(['--context', 'node3', 'info', '--format', '{{.Name}}'], {})).stdout.trim()
    expect(name).toBe('node3')
  })

  it('a tampered host key makes belt ssh refuse with one clear line, and ssh-keys reset accepts the new key', async () => {
    const file = path.join(store, 'hosts', 'node1.json')
    const rec = JSON.parse(await readFile(file, 'utf8'))
    const other = JSON.parse(await readFile(path.join(store, 'hosts', 'node3.json'), 'utf8'))
    rec.hostKeys = other.hostKeys // a real key, of another host
    const {writeFile} = await import('node:fs/promises')
    await writeFile(file, JSON.stringify(rec))
    const r = await belt(['ssh', 'node1', 'hostname'], {store})
    expect(r.code).toBe(5)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Error: the SSH host key of node1 .* has changed.*belt ssh-keys reset node1/)
    const reset = await belt(['ssh-keys', 'reset', 'node1'], {store})
    expect(reset.code, reset.stderr).toBe(0)
    const ok = await belt(['ssh', 'node1', 'hostname'], {store})
    expect(ok.stdout.trim()).toBe('node1')
  })

  it('rm leaves nothing behind: no namespace, link, mount or process (dockerd and containerd included)', async () => {
    const r = await belt(['rm', '-y', 'node[1:3]'], {store})
    expect(r.code, r.stderr).toBe(0)
    const after = await systemSnapshot()
    expect(after).toEqual(before)
  })
})
