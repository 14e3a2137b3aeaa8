import {X509Certificate} from 'node:crypto'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'
import {belt} from '../helpers/cli.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

// Docker Machine's race: parallel creates on a fresh store each made a CA, and hosts ended up
// signed by different ones. Ten belt processes at once must end with one CA that signed them all.
const SUBNET = ['--local-subnet', '10.222.0.0/16']
const N = 10
let tmp: string
let store: string
let before: SystemSnapshot

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-ca-race-'))
  store = path.join(tmp, 'store')
  before = await systemSnapshot()
})
afterAll(async () => {
  await belt(['rm', '-y', '--force', 'race*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

/** The certificate the engine at `host:2376` presents, after a handshake that trusts only `ca`. */
function serverCert(host: string, ca: string, cert: string, key: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({host, port: 2376, ca, cert, key, servername: undefined, rejectUnauthorized: true}, () => {
      const raw = s.getPeerX509Certificate()
      s.end()
      raw ? resolve(raw) : reject(new Error('no peer certificate'))
    })
    s.on('error', reject)
  })
}

describe('ten belt create processes at once on one fresh store', () => {
  it('end with one CA, and every engine certificate signed by it', async () => {
    const results = await Promise.all(Array.from({length: N}, (_, i) => belt(['create', '--driver', 'local', ...SUBNET, `race${i + 1}`], {store})))
    for (const r of results) expect(r.code, r.stderr).toBe(0)

    const certFiles = (await readdir(path.join(store, 'certs'))).filter((f) => f.endsWith('.pem')).sort()
    expect(certFiles).toEqual(['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem'])
    const ca = await readFile(path.join(store, 'certs', 'ca.pem'), 'utf8')
    const cert = await readFile(path.join(store, 'certs', 'cert.pem'), 'utf8')
    const key = await readFile(path.join(store, 'certs', 'key.pem'), 'utf8')
    const caX = new X509Certificate(ca)
    expect(new X509Certificate(cert).verify(caX.publicKey)).toBe(true)

    const {records} = await new Store(store).list()
    expect(records.map((r) => r.phase)).toEqual(Array(N).fill('bootstrapped'))
    for (const r of records) {
      // The handshake itself proves the chain (only this CA is trusted); check the issuer too.
      const presented = await serverCert(r.machine!.address, ca, cert, key)
      expect(presented.verify(caX.publicKey)).toBe(true)
      expect(presented.checkIP(r.machine!.address)).toBe(r.machine!.address)
      expect(presented.fingerprint256).toBe(r.engine?.certFingerprint)
    }
  })

  it('rm removes them all and leaves the machine as it was', async () => {
    const r = await belt(['rm', '-y', 'race*'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await systemSnapshot()).toEqual(before)
  })
})
