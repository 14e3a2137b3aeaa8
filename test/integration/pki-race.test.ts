import {execFile} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '../..')
const PROCS = 10
let tmp: string

beforeAll(async () => {
  // The racing processes import the compiled module: `npm test` builds first.
  expect(existsSync(path.join(root, 'dist/src/pki/ca.js')), 'run `npm run build` first').toBe(true)
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-pki-race-'))
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

interface Output {
  fingerprint: string
  clientCert: string
  serverCert: string
}

/** Starts PROCS fixture processes, releases them together once all are up, and returns their outputs. */
async function race(storeDir: string, keyType: string): Promise<Output[]> {
  const barrier = path.join(tmp, `barrier-${keyType}`)
  await mkdir(barrier)
  const procs = Array.from({length: PROCS}, (_, i) =>
    run(process.execPath, [path.join(root, 'test/fixtures/pki-race.mjs'), storeDir, String(i), keyType, barrier]),
  )
  // Wait for every process to be ready (or for one to fail early, which rejects below).
  const failed = Promise.all(procs).then(() => undefined)
  for (;;) {
    const ready = (await readdir(barrier)).filter((f) => f.startsWith('ready-')).length
    if (ready === PROCS) break
    const early = await Promise.race([failed.then(() => 'done' as const), sleep(10).then(() => 'waiting' as const)])
    if (early === 'done') break
  }
  await writeFile(path.join(barrier, 'go'), '')
  const outs = await Promise.all(procs)
  return outs.map((o) => JSON.parse(o.stdout) as Output)
}

describe('10 belt processes setting up TLS on one store at once', () => {
  it.each(['ecdsa-p256', 'rsa-2048'])('with %s: one CA, one client certificate, every server certificate signed by the CA on disk', async (keyType) => {
    const store = new Store(path.join(tmp, `store-${keyType}`))
    const outs = await race(store.dir, keyType)
    expect(outs).toHaveLength(PROCS)

    const caPem = await readFile(path.join(store.certsDir, 'ca.pem'), 'utf8')
    const ca = new X509Certificate(caPem)
    expect(ca.publicKey.asymmetricKeyType).toBe(keyType === 'rsa-2048' ? 'rsa' : 'ec')
    expect(new Set(outs.map((o) => o.fingerprint))).toEqual(new Set([ca.fingerprint256]))

    const clientPem = await readFile(path.join(store.certsDir, 'cert.pem'), 'utf8')
    expect(new Set(outs.map((o) => o.clientCert))).toEqual(new Set([clientPem]))
    expect(new X509Certificate(clientPem).verify(ca.publicKey)).toBe(true)

    outs.forEach((o, i) => {
      const cert = new X509Certificate(o.serverCert)
      expect(cert.verify(ca.publicKey), `server certificate of process ${i}`).toBe(true)
      expect(cert.checkIssued(ca)).toBe(true)
      expect(cert.checkIP(`10.0.0.${i + 1}`)).toBe(`10.0.0.${i + 1}`)
    })
    // Every serial is distinct.
    expect(new Set(outs.map((o) => new X509Certificate(o.serverCert).serialNumber)).size).toBe(PROCS)

    // Nothing half-done left behind: exactly the four files, no temp files, no locks.
    expect((await readdir(store.certsDir)).sort()).toEqual(['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem'])
    expect(await readdir(path.join(store.dir, 'locks'))).toEqual([])
  })
})
