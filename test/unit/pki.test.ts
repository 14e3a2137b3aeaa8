// @peculiar/x509 needs the Reflect metadata polyfill loaded before it (src/pki/x509.ts does the same).
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import {createPrivateKey, createPublicKey, sign, verify, webcrypto, X509Certificate} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'
import {ExitCode, UserError} from '../../src/errors.js'
import {ensurePrivateDir} from '../../src/store/atomic.js'
import {
  BACKDATE_MS,
  certInfo,
  certPaths,
  checkServerCert,
  coversAddresses,
  ensureCa,
  ensureClientCert,
  expiresWithin,
  generateCa,
  issueClientCert,
  issueServerCert,
  loadCa,
  rotateCa,
  rotateClientCert,
  serverSans,
  signedBy,
  signedBySync,
  type Ca,
  type KeyPair,
  type KeyType,
} from '../../src/pki/ca.js'
import {certValidity} from '../../src/pki/x509.js'
import {Store} from '../../src/store/store.js'

const DAY = 24 * 60 * 60 * 1000
const HOST = {hostName: 'ip-10-0-0-5', machineName: 'node1', addresses: ['203.0.113.5', '10.0.0.5']}

/** Runs `fn` and returns what it threw (failing the test when it did not throw). */
async function thrown(fn: () => Promise<unknown>): Promise<UserError> {
  try {
    await fn()
  } catch (e) {
    expect(e).toBeInstanceOf(UserError)
    return e as UserError
  }
  throw new Error('expected a UserError, nothing was thrown')
}

/** Key usage bits and basic constraints, read with @peculiar/x509 (Node does not expose them). */
function constraints(pem: string): {ca: boolean | undefined; keyUsage: number | undefined; keyUsageCritical: boolean | undefined} {
  const c = new x509.X509Certificate(pem)
  const ku = c.getExtension(x509.KeyUsagesExtension)
  return {ca: c.getExtension(x509.BasicConstraintsExtension)?.ca, keyUsage: ku?.usages, keyUsageCritical: ku?.critical}
}

/** Signs with the private key and verifies with the certificate's public key: the pair belongs together. */
function pairWorks(pair: KeyPair): boolean {
  const data = Buffer.from('belt')
  const key = createPrivateKey(pair.keyPem)
  const sig = sign('sha256', data, key)
  return verify('sha256', data, new X509Certificate(pair.certPem).publicKey, sig)
}

interface Handshake {
  /** The client read the server's greeting: both sides accepted each other. */
  ok: boolean
  clientError?: string
  serverError?: string
}

/**
 * A mutual-TLS exchange over loopback with node:tls, as dockerd runs it: the server requires a
 * client certificate signed by the CA. The server greets every accepted client with "hello".
 */
async function handshake(server: KeyPair, caPem: string, client: KeyPair | undefined, servername?: string): Promise<Handshake> {
  let serverError: string | undefined
  const srv = tls.createServer({cert: server.certPem, key: server.keyPem, ca: caPem, requestCert: true, rejectUnauthorized: true}, (s) => {
    s.end('hello')
  })
  srv.on('tlsClientError', (e) => {
    serverError = (e as NodeJS.ErrnoException).code ?? e.message
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const {port} = srv.address() as AddressInfo
  try {
    return await new Promise<Handshake>((resolve) => {
      let data = ''
      let clientError: string | undefined
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        ca: caPem,
        ...(client ? {cert: client.certPem, key: client.keyPem} : {}),
        ...(servername ? {servername} : {}),
      })
      sock.setEncoding('utf8')
      sock.on('data', (d: string) => (data += d))
      sock.on('error', (e: NodeJS.ErrnoException) => (clientError = e.code ?? e.message))
      sock.on('close', () => resolve({ok: data === 'hello', clientError, serverError}))
    })
  } finally {
    await new Promise((r) => srv.close(r))
  }
}

describe('serverSans', () => {
  it('has every address, the host and machine names, localhost and 127.0.0.1, once each', () => {
    const sans = serverSans({hostName: 'Node1.', machineName: 'node1', addresses: ['203.0.113.5', '10.0.0.5', '203.0.113.5', '127.0.0.1', '2001:db8:0:0::1', 'edge.example.com']})
    expect(sans.ips).toEqual(['203.0.113.5', '10.0.0.5', '127.0.0.1', '2001:db8::1'])
    expect(sans.dns).toEqual(['edge.example.com', 'node1', 'localhost'])
  })

  it('skips an unknown (empty) host name', () => {
    expect(serverSans({hostName: '', machineName: 'node1', addresses: []}).dns).toEqual(['node1', 'localhost'])
  })

  it('refuses a name that is neither an IP nor a DNS name, with a UserError', () => {
    expect(() => serverSans({hostName: 'bad name', machineName: 'node1', addresses: []})).toThrow(UserError)
    expect(() => serverSans({hostName: 'h', machineName: 'node1', addresses: ['1.2.3.4, 5.6.7.8']})).toThrow(/neither an IP address nor a DNS name/)
  })
})

describe.each<{keyType: KeyType; nodeType: string}>([
  {keyType: 'ecdsa-p256', nodeType: 'ec'},
  {keyType: 'rsa-2048', nodeType: 'rsa'},
])('certificates with $keyType', ({keyType, nodeType}) => {
  let ca: Ca
  let server: KeyPair
  let client: KeyPair
  let foreign: Ca
  let issuedAt: number

  beforeAll(async () => {
    issuedAt = Date.now()
    ca = await generateCa({keyType})
    server = await issueServerCert(ca, HOST)
    client = await issueClientCert(ca)
    foreign = await generateCa({keyType})
  })

  it('makes a self-signed CA of the right key type, CA:TRUE, keyCertSign, 10 years', () => {
    const c = new X509Certificate(ca.certPem)
    expect(c.ca).toBe(true)
    expect(c.checkIssued(c)).toBe(true)
    expect(c.verify(c.publicKey)).toBe(true)
    expect(c.publicKey.asymmetricKeyType).toBe(nodeType)
    expect(ca.keyType).toBe(keyType)
    const k = constraints(ca.certPem)
    expect(k.ca).toBe(true)
    expect(k.keyUsage! & x509.KeyUsageFlags.keyCertSign).toBeTruthy()
    expect(new Date(c.validTo).getTime() - issuedAt).toBeGreaterThan(3649 * DAY)
    expect(ca.fingerprint).toBe(c.fingerprint256)
  })

  it('issues a server certificate that Node verifies against the CA, with every SAN', () => {
    const c = new X509Certificate(server.certPem)
    const caCert = new X509Certificate(ca.certPem)
    expect(c.verify(caCert.publicKey)).toBe(true)
    expect(c.checkIssued(caCert)).toBe(true)
    for (const ip of ['203.0.113.5', '10.0.0.5', '127.0.0.1']) expect(c.checkIP(ip)).toBe(ip)
    for (const name of ['ip-10-0-0-5', 'node1', 'localhost']) expect(c.checkHost(name, {subject: 'never'})).toBe(name)
    expect(c.checkIP('203.0.113.6')).toBeUndefined()
    expect(c.checkHost('node2', {subject: 'never'})).toBeUndefined()
    const info = certInfo(server.certPem)
    // What a record keeps, read natively (certValidity) or through asn1js (certInfo): the same.
    expect(certValidity(server.certPem)).toEqual({notAfter: info.notAfter, fingerprint: info.fingerprint})
    expect(info.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    expect(info.ipAddresses).toEqual(['203.0.113.5', '10.0.0.5', '127.0.0.1'])
    expect(info.dnsNames).toEqual(['ip-10-0-0-5', 'node1', 'localhost'])
    expect(info.issuer).toBe(ca.subject)
    expect(info.subject).toMatch(/CN=node1/)
  })

  it('gives the server certificate serverAuth only, the key usages of its key type, CA:FALSE', () => {
    const c = new X509Certificate(server.certPem)
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1'])
    expect(c.ca).toBe(false)
    expect(c.publicKey.asymmetricKeyType).toBe(nodeType)
    if (nodeType === 'ec') expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    else expect(c.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048)
    const k = constraints(server.certPem)
    expect(k.ca).toBe(false)
    expect(k.keyUsageCritical).toBe(true)
    const expected = x509.KeyUsageFlags.digitalSignature | (keyType === 'rsa-2048' ? x509.KeyUsageFlags.keyEncipherment : 0)
    expect(k.keyUsage).toBe(expected)
    expect(certInfo(server.certPem)).toMatchObject({keyType, isCa: false, extKeyUsage: ['serverAuth']})
    expect(pairWorks(server)).toBe(true)
    expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it('gives the client certificate clientAuth only and no SANs', () => {
    const c = new X509Certificate(client.certPem)
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2'])
    expect(c.subjectAltName).toBeUndefined()
    expect(c.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect(pairWorks(client)).toBe(true)
  })

  it('back-dates notBefore by an hour and ends 3 years later by default', () => {
    const info = certInfo(server.certPem)
    // X.509 times have a one-second resolution; allow for it and for the time beforeAll took.
    expect(info.notBefore.getTime()).toBeLessThanOrEqual(issuedAt - BACKDATE_MS + 60_000)
    expect(info.notBefore.getTime()).toBeGreaterThanOrEqual(issuedAt - BACKDATE_MS - 1000)
    const days = (info.notAfter.getTime() - issuedAt) / DAY
    expect(days).toBeGreaterThan(1094.9)
    expect(days).toBeLessThan(1095.1)
  })

  it('uses a random positive 16-byte serial', async () => {
    const other = await issueServerCert(ca, HOST)
    const a = certInfo(server.certPem).serialNumber
    const b = certInfo(other.certPem).serialNumber
    expect(a).toMatch(/^[0-7][0-9A-F]{31}$/)
    expect(a).not.toBe(b)
  })

  it('honours validityDays, and never outlives the CA', async () => {
    const short = await issueServerCert(ca, {...HOST, validityDays: 10})
    const days = (certInfo(short.certPem).notAfter.getTime() - Date.now()) / DAY
    expect(days).toBeGreaterThan(9.9)
    expect(days).toBeLessThanOrEqual(10)
    const shortCa = await generateCa({keyType, validityDays: 5})
    const capped = await issueServerCert(shortCa, HOST)
    expect(certInfo(capped.certPem).notAfter.getTime()).toBeLessThanOrEqual(shortCa.notAfter.getTime())
  })

  it('signedBy is true for its CA and false for a foreign CA or garbage', async () => {
    expect(await signedBy(server.certPem, ca.certPem)).toBe(true)
    expect(await signedBy(client.certPem, ca.certPem)).toBe(true)
    expect(await signedBy(server.certPem, foreign.certPem)).toBe(false)
    expect(signedBySync('not a certificate', ca.certPem)).toBe(false)
    // Independent check: OpenSSL (through Node) agrees that the foreign CA did not sign it.
    expect(new X509Certificate(server.certPem).verify(new X509Certificate(foreign.certPem).publicKey)).toBe(false)
  })

  it('expiresWithin compares notAfter with now + days', async () => {
    const short = await issueServerCert(ca, {...HOST, validityDays: 10})
    expect(expiresWithin(short.certPem, 30)).toBe(true)
    expect(expiresWithin(short.certPem, 5)).toBe(false)
    expect(expiresWithin(server.certPem, 30)).toBe(false)
    expect(expiresWithin(server.certPem, 30, new Date(Date.now() + 1080 * DAY))).toBe(true)
  })

  it('coversAddresses and checkServerCert say whether a certificate on a host can stay', async () => {
    expect(coversAddresses(server.certPem, ['10.0.0.5', '203.0.113.5'], ['node1'])).toBe(true)
    expect(coversAddresses(server.certPem, ['10.0.0.6'], ['node1'])).toBe(false)
    expect(coversAddresses(server.certPem, ['10.0.0.5'], ['node2'])).toBe(false)
    expect(checkServerCert(server.certPem, ca.certPem, {addresses: HOST.addresses, names: ['node1']})).toEqual({ok: true, problems: []})
    const moved = checkServerCert(server.certPem, foreign.certPem, {addresses: ['10.0.0.9'], names: ['node1']})
    expect(moved.ok).toBe(false)
    expect(moved.problems).toEqual(['not signed by this CA', 'does not cover 10.0.0.9'])
    expect(checkServerCert(client.certPem, ca.certPem, {addresses: []}).problems).toContain('not a server certificate (no serverAuth)')
    const short = await issueServerCert(ca, {...HOST, validityDays: 10})
    expect(checkServerCert(short.certPem, ca.certPem, {addresses: HOST.addresses}).problems).toEqual(['expires within 30 days'])
    expect(checkServerCert(undefined, ca.certPem, {addresses: []}).ok).toBe(false)
    expect(checkServerCert('garbage', ca.certPem, {addresses: []}).problems).toEqual(['not a PEM certificate'])
  })

  it('a real mutual-TLS handshake succeeds with the client certificate, by IP and by name', async () => {
    expect(await handshake(server, ca.certPem, client)).toMatchObject({ok: true, clientError: undefined, serverError: undefined})
    expect((await handshake(server, ca.certPem, client, 'node1')).ok).toBe(true)
  })

  it('the server refuses a client without a certificate, or with one from a foreign CA', async () => {
    const none = await handshake(server, ca.certPem, undefined)
    expect(none.ok).toBe(false)
    expect(none.serverError).toBeDefined()
    const stranger = await handshake(server, ca.certPem, await issueClientCert(foreign))
    expect(stranger.ok).toBe(false)
    expect(stranger.serverError).toBeDefined()
  })

  it('the client refuses a server certificate for another name', async () => {
    const r = await handshake(server, ca.certPem, client, 'node2')
    expect(r.ok).toBe(false)
    expect(r.clientError).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
  })
})

describe('mixed chains', () => {
  it('an ECDSA CA can issue an RSA server certificate when asked, and the handshake works', async () => {
    const ca = await generateCa()
    const server = await issueServerCert(ca, {...HOST, keyType: 'rsa-2048'})
    expect(certInfo(server.certPem).keyType).toBe('rsa-2048')
    expect((await handshake(server, ca.certPem, await issueClientCert(ca))).ok).toBe(true)
  })

  it('rejects an unknown key type and an out-of-range validity with a UserError', async () => {
    const ca = await generateCa()
    expect((await thrown(() => issueServerCert(ca, {...HOST, keyType: 'dsa' as KeyType}))).code).toBe('E_KEY_TYPE')
    expect((await thrown(() => issueServerCert(ca, {...HOST, validityDays: 0}))).code).toBe('E_CERT_VALIDITY')
  })

  it('a copy of a Ca cannot sign (the key is not part of the object)', async () => {
    const ca = await generateCa()
    expect(JSON.stringify(ca)).not.toMatch(/PRIVATE KEY/)
    await expect(issueServerCert({...ca}, HOST)).rejects.toThrow(/cannot sign/)
  })
})

describe('the store CA and client certificate', () => {
  let dir: string
  let store: Store
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'belt-pki-'))
    store = new Store(path.join(dir, 'store'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('creates the CA once, with a private directory and key, and returns the same one after', async () => {
    const paths = certPaths(store)
    const ca = await ensureCa(store)
    expect(ca.keyType).toBe('ecdsa-p256')
    expect(ca.certFile).toBe(paths.caCert)
    expect((await stat(paths.dir)).mode & 0o777).toBe(0o700)
    expect((await stat(paths.caKey)).mode & 0o777).toBe(0o600)
    expect((await stat(paths.caCert)).mode & 0o777).toBe(0o644)
    expect(await readFile(paths.caCert, 'utf8')).toBe(ca.certPem)
    // An existing CA keeps its key type whatever a later call asks for.
    const again = await ensureCa(store, {keyType: 'rsa-2048'})
    expect(again.fingerprint).toBe(ca.fingerprint)
    expect(again.keyType).toBe('ecdsa-p256')
    // No temp files or locks left behind.
    expect((await readdir(paths.dir)).sort()).toEqual(['ca-key.pem', 'ca.pem'])
    expect(await readdir(path.join(store.dir, 'locks'))).toEqual([])
  })

  it('makes one CA when called many times at once in one process', async () => {
    const cas = await Promise.all(Array.from({length: 6}, () => ensureCa(store)))
    expect(new Set(cas.map((c) => c.fingerprint)).size).toBe(1)
  })

  it('creates the CA with the key type and validity asked for', async () => {
    const ca = await ensureCa(store, {keyType: 'rsa-2048', validityDays: 100})
    expect(ca.keyType).toBe('rsa-2048')
    expect(new X509Certificate(ca.certPem).publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(Math.round((ca.notAfter.getTime() - Date.now()) / DAY)).toBe(100)
  })

  it('writes a client certificate usable as DOCKER_CERT_PATH, once', async () => {
    const ca = await ensureCa(store)
    const bundle = await ensureClientCert(store, ca)
    const paths = certPaths(store)
    expect(bundle.dir).toBe(paths.dir)
    expect((await readdir(bundle.dir)).sort()).toEqual(['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem'])
    expect(await readFile(path.join(bundle.dir, 'ca.pem'), 'utf8')).toBe(bundle.ca)
    expect(await readFile(path.join(bundle.dir, 'cert.pem'), 'utf8')).toBe(bundle.cert)
    expect(await readFile(path.join(bundle.dir, 'key.pem'), 'utf8')).toBe(bundle.key)
    expect((await stat(bundle.keyFile)).mode & 0o777).toBe(0o600)
    expect(new X509Certificate(bundle.cert).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2'])
    expect(new X509Certificate(bundle.cert).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect((await ensureClientCert(store, ca)).cert).toBe(bundle.cert)
    // The bundle drives a handshake with a server certificate from the same CA.
    const server = await issueServerCert(ca, HOST)
    expect((await handshake(server, bundle.ca, {certPem: bundle.cert, keyPem: bundle.key})).ok).toBe(true)
  })

  it('a corrupted ca.pem is a UserError naming the file, and nothing is regenerated', async () => {
    const paths = certPaths(store)
    await ensureCa(store)
    await writeFile(paths.caCert, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
    const keyBefore = await readFile(paths.caKey, 'utf8')
    const e = await thrown(() => ensureCa(store))
    expect(e.code).toBe('E_CA_CORRUPT')
    expect(e.exit).toBe(ExitCode.environment)
    expect(e.message).toContain(paths.caCert)
    expect(e.hint).toMatch(/regenerate-certs --ca/)
    expect(await readFile(paths.caCert, 'utf8')).toMatch(/not base64/)
    expect(await readFile(paths.caKey, 'utf8')).toBe(keyBefore)
    expect((await thrown(() => loadCa(store))).code).toBe('E_CA_CORRUPT')
  })

  it('a CA key that does not match, or is missing, is a UserError naming the file', async () => {
    const paths = certPaths(store)
    await ensureCa(store)
    const other = new Store(path.join(dir, 'other'))
    await ensureCa(other)
    await writeFile(paths.caKey, await readFile(certPaths(other).caKey))
    const mismatch = await thrown(() => ensureCa(store))
    expect(mismatch.code).toBe('E_CA_MISMATCH')
    expect(mismatch.message).toContain(paths.caKey)
    await writeFile(paths.caKey, 'garbage')
    expect((await thrown(() => ensureCa(store))).message).toContain(paths.caKey)
    await rm(paths.caKey)
    const missing = await thrown(() => ensureCa(store))
    expect(missing.code).toBe('E_CA_KEY_MISSING')
    expect(missing.message).toContain(paths.caKey)
  })

  it('a key left without its certificate (an interrupted creation) is replaced by a complete pair', async () => {
    const paths = certPaths(store)
    await store.init()
    await ensurePrivateDir(paths.dir)
    await writeFile(paths.caKey, 'half-written leftovers', {mode: 0o600})
    const ca = await ensureCa(store)
    expect(await readFile(paths.caKey, 'utf8')).toMatch(/BEGIN PRIVATE KEY/)
    expect((await loadCa(store))?.fingerprint).toBe(ca.fingerprint)
  })

  it('loadCa returns undefined for a store without a CA and creates nothing', async () => {
    expect(await loadCa(store)).toBeUndefined()
    expect(existsSync(store.dir)).toBe(false)
  })

  it('client certificate problems are UserErrors pointing at regenerate-certs --client-certs', async () => {
    const paths = certPaths(store)
    const ca = await ensureCa(store)
    await ensureClientCert(store, ca)
    // Signed by another CA (e.g. a cert.pem copied from another store).
    const stranger = await issueClientCert(await generateCa())
    await writeFile(paths.clientCert, stranger.certPem)
    await writeFile(paths.clientKey, stranger.keyPem)
    const foreign = await thrown(() => ensureClientCert(store, ca))
    expect(foreign.code).toBe('E_CLIENT_CERT_FOREIGN')
    expect(foreign.message).toContain(paths.clientCert)
    expect(foreign.hint).toMatch(/regenerate-certs --client-certs/)
    await writeFile(paths.clientCert, 'garbage')
    expect((await thrown(() => ensureClientCert(store, ca))).code).toBe('E_CLIENT_CERT_CORRUPT')
    const fixed = await rotateClientCert(store, ca)
    expect(signedBySync(fixed.cert, ca.certPem)).toBe(true)
    expect((await ensureClientCert(store, ca)).cert).toBe(fixed.cert)
    await writeFile(paths.clientKey, stranger.keyPem)
    expect((await thrown(() => ensureClientCert(store, ca))).code).toBe('E_CLIENT_CERT_MISMATCH')
  })

  it('rotateCa makes a new CA and client certificate and keeps the old pair in previous/', async () => {
    const paths = certPaths(store)
    const old = await ensureCa(store, {keyType: 'rsa-2048'})
    const oldClient = await ensureClientCert(store, old)
    const r = await rotateCa(store)
    expect(r.ca.fingerprint).not.toBe(old.fingerprint)
    expect(r.ca.keyType).toBe('rsa-2048') // the old CA's key type is kept unless asked otherwise
    expect(r.previousFingerprint).toBe(old.fingerprint)
    expect(await readFile(path.join(paths.previousDir, 'ca.pem'), 'utf8')).toBe(old.certPem)
    expect(await readFile(path.join(paths.previousDir, 'cert.pem'), 'utf8')).toBe(oldClient.cert)
    expect((await stat(paths.previousDir)).mode & 0o777).toBe(0o700)
    expect((await stat(path.join(paths.previousDir, 'ca-key.pem'))).mode & 0o777).toBe(0o600)
    expect(signedBySync(r.client.cert, r.ca.certPem)).toBe(true)
    expect((await ensureCa(store)).fingerprint).toBe(r.ca.fingerprint)
    expect((await ensureClientCert(store, r.ca)).cert).toBe(r.client.cert)
    // A process still holding the old CA cannot issue a client certificate from it.
    expect((await thrown(() => ensureClientCert(store, old))).code).toBe('E_CA_CHANGED')
  })

  it('rotateCa repairs a corrupt CA and can change the key type', async () => {
    const paths = certPaths(store)
    await ensureCa(store)
    await writeFile(paths.caCert, 'garbage')
    const r = await rotateCa(store, {keyType: 'rsa-2048'})
    expect(r.previousFingerprint).toBeUndefined()
    expect(r.ca.keyType).toBe('rsa-2048')
    expect((await ensureCa(store)).fingerprint).toBe(r.ca.fingerprint)
  })

  /** A CA made by another tool (no SKI, SEC1 key), written into the store by hand. */
  async function handMadeCa(notBefore: Date, notAfter: Date): Promise<void> {
    const paths = certPaths(store)
    const keys = (await webcrypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=imported CA',
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: {name: 'ECDSA', hash: 'SHA-256'},
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    })
    await store.init()
    await ensurePrivateDir(paths.dir)
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
    await writeFile(paths.caKey, createPrivateKey({key: der, format: 'der', type: 'pkcs8'}).export({type: 'sec1', format: 'pem'}), {mode: 0o600})
    await writeFile(paths.caCert, cert.toString('pem'))
  }

  it('uses a CA made elsewhere (SEC1 key, no SKI): its server certificates verify', async () => {
    await handMadeCa(new Date(Date.now() - DAY), new Date(Date.now() + 100 * DAY))
    const ca = await ensureCa(store)
    expect(ca.subject).toBe('CN=imported CA')
    const server = await issueServerCert(ca, HOST)
    expect(new X509Certificate(server.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect((await handshake(server, ca.certPem, await issueClientCert(ca))).ok).toBe(true)
  })

  it('an expired CA stops ensureCa with the fix, but loadCa still returns it for reporting', async () => {
    await handMadeCa(new Date(Date.now() - 20 * DAY), new Date(Date.now() - 10 * DAY))
    const e = await thrown(() => ensureCa(store))
    expect(e.code).toBe('E_CA_EXPIRED')
    expect(e.hint).toMatch(/regenerate-certs --ca/)
    const loaded = await loadCa(store)
    expect(loaded?.notAfter.getTime()).toBeLessThan(Date.now())
    expect((await thrown(() => issueServerCert(loaded!, HOST))).code).toBe('E_CA_EXPIRED')
  })
})
