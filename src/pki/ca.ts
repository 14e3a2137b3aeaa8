/**
 * The store's certificate authority and client certificate, on disk in `<store>/certs/`, laid out
 * so the directory works as DOCKER_CERT_PATH as it is:
 *
 *   certs/            0700
 *     ca.pem          0644  the CA certificate every engine trusts
 *     ca-key.pem      0600  its key
 *     cert.pem        0644  the client certificate belt and the docker CLI present
 *     key.pem         0600  its key
 *
 * One CA per store, made exactly once even when several `belt` processes start at the same moment
 * (docker-machine's unguarded check-then-create let two processes sign hosts with different CAs):
 * every read and write of these files happens under the store's cross-process `certs` lock, and a
 * pair is replaced in three atomic steps (remove the certificate, write the key, write the
 * certificate), so "the certificate exists" means "the pair is complete". A key without its
 * certificate is what an interrupted creation or rotation leaves behind: no certificate was issued
 * from it, or the operator asked for it to be replaced, so it is replaced. Anything else that is
 * wrong (a certificate that does not parse, a key that does not match) stops with a UserError naming
 * the file: regenerating the CA is always an explicit {@link rotateCa}, because every host trusts it.
 *
 * Server certificates are issued in memory (re-exported from x509.ts) and never written here.
 */
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {environmentError} from '../errors.js'
import {ensurePrivateDir, fsyncDir, writeFileAtomic} from '../store/atomic.js'
import type {Store} from '../store/store.js'
import {certPaths, type CertPaths} from './paths.js'
import {caFromPem, certInfo, certValidity, generateCaPair, issueClientCert, keyMatchesCert, signedBySync, type Ca, type CaOptions, type ClientCertOptions, type KeyType} from './x509.js'

export {certPaths, type CertPaths} from './paths.js'
export {
  BACKDATE_MS,
  DEFAULT_KEY_TYPE,
  DEFAULT_VALIDITY_DAYS,
  KEY_TYPES,
  caFromPem,
  certInfo,
  checkServerCert,
  coversAddresses,
  expiresWithin,
  generateCa,
  issueClientCert,
  issueServerCert,
  keyMatchesCert,
  serverSans,
  signedBy,
  signedBySync,
  type Ca,
  type CaOptions,
  type CertInfo,
  type ClientCertOptions,
  type KeyPair,
  type KeyType,
  type ServerCertCheck,
  type ServerCertOptions,
} from './x509.js'

/** The lock that guards every file in `certs/`. */
const LOCK = 'certs'

/**
 * The client side of mutual TLS with the store's engines. Its `ca`, `cert` and `key` are what
 * `node:tls`/`https` options and the bootstrapper's `ClientTls` take; `dir` is DOCKER_CERT_PATH.
 */
export interface ClientBundle {
  dir: string
  ca: string
  cert: string
  key: string
  certFile: string
  keyFile: string
}

/**
 * Returns the store's CA, creating it on first use (with `opts`; an existing CA keeps its key type
 * and validity, change them with {@link rotateCa}). Safe to call from many processes at once: one
 * CA results. Rejects with a UserError naming the file when the CA on disk is corrupt, mismatched,
 * of an unsupported key type or expired.
 */
export async function ensureCa(store: Store, opts: CaOptions = {}): Promise<Ca> {
  const paths = await prepare(store)
  return store.locks.with(LOCK, async () => {
    // Re-checked under the lock: another process may have created it while we waited.
    const existing = await readCa(paths)
    if (existing) {
      assertNotExpired(existing)
      return existing
    }
    return writeNewCa(paths, opts)
  })
}

/**
 * The store's CA when there is one, without creating anything (for `ls`, `inspect`, `env`). An
 * expired CA is returned (callers report it); a corrupt one rejects like {@link ensureCa}.
 */
export async function loadCa(store: Store): Promise<Ca | undefined> {
  const paths = certPaths(store)
  // No lock (which would create the store directory) when there is plainly nothing to read.
  if (!(await exists(paths.caCert))) return undefined
  return store.locks.with(LOCK, () => readCa(paths))
}

/**
 * Returns the store's client certificate, signed by `ca`, creating it on first use. Race-safe like
 * {@link ensureCa}. Rejects with a UserError when `ca` is no longer the CA on disk (rotated by
 * another process meanwhile), or when the client certificate on disk is corrupt, mismatched, signed
 * by another CA or expired: `belt regenerate-certs --client-certs` is the fix, never a silent one.
 */
export async function ensureClientCert(store: Store, ca: Ca, opts: ClientCertOptions = {}): Promise<ClientBundle> {
  const paths = await prepare(store)
  return store.locks.with(LOCK, async () => {
    await assertCurrentCa(paths, ca)
    const existing = await readClient(paths, ca)
    return existing ?? writeNewClient(paths, ca, opts)
  })
}

/**
 * Replaces the client certificate and key (for `belt regenerate-certs --client-certs`). Engines keep
 * working: they trust the CA, not a particular client certificate.
 */
export async function rotateClientCert(store: Store, ca: Ca, opts: ClientCertOptions = {}): Promise<ClientBundle> {
  const paths = await prepare(store)
  return store.locks.with(LOCK, async () => {
    await assertCurrentCa(paths, ca)
    return writeNewClient(paths, ca, opts)
  })
}

/** What {@link rotateCa} did. */
export interface CaRotation {
  ca: Ca
  /** A new client certificate: the old one was signed by the old CA and no new engine accepts it. */
  client: ClientBundle
  /** The replaced CA's fingerprint, when it was readable. */
  previousFingerprint?: string
  /** Where the replaced files were copied (0700), when there were any. */
  previousDir?: string
}

/**
 * Makes a new CA and a new client certificate (for `belt regenerate-certs --ca`), replacing
 * whatever is there, corrupt or not; the old files are first copied to `certs/previous/` so an
 * interrupted rotation can be undone by hand. Every host then needs a new server certificate: the
 * caller pushes them over SSH. Key type: `opts.keyType`, else the old CA's, else the default.
 */
export async function rotateCa(store: Store, opts: CaOptions = {}): Promise<CaRotation> {
  const paths = await prepare(store)
  return store.locks.with(LOCK, async () => {
    const old = await readText(paths.caCert)
    let previousFingerprint: string | undefined
    let oldKeyType: KeyType | undefined
    if (old !== undefined) {
      try {
        const info = certInfo(old)
        previousFingerprint = info.fingerprint
        if (info.keyType !== 'other') oldKeyType = info.keyType
      } catch {
        // A corrupt CA is exactly what rotation repairs; it is still backed up below.
      }
    }
    const previousDir = await backup(paths)
    const ca = await writeNewCa(paths, {...opts, keyType: opts.keyType ?? oldKeyType})
    const client = await writeNewClient(paths, ca, {})
    return {ca, client, ...(previousFingerprint ? {previousFingerprint} : {}), ...(previousDir ? {previousDir} : {})}
  })
}

async function prepare(store: Store): Promise<CertPaths> {
  await store.init()
  const paths = certPaths(store)
  await ensurePrivateDir(paths.dir)
  return paths
}

async function readCa(paths: CertPaths): Promise<Ca | undefined> {
  const certPem = await readText(paths.caCert)
  if (certPem === undefined) return undefined
  const keyPem = await readText(paths.caKey)
  if (keyPem === undefined)
    throw environmentError(
      `the CA key ${paths.caKey} is missing (its certificate ${paths.caCert} is there)`,
      'E_CA_KEY_MISSING',
      `restore ${paths.caKey} from a backup, or run \`belt regenerate-certs --ca\` to make a new CA (every host then needs new certificates)`,
    )
  return caFromPem(certPem, keyPem, {cert: paths.caCert, key: paths.caKey})
}

async function writeNewCa(paths: CertPaths, opts: CaOptions): Promise<Ca> {
  const {ca, keyPem} = await generateCaPair(opts)
  await writePair(paths.caCert, ca.certPem, paths.caKey, keyPem)
  return caFromPem(ca.certPem, keyPem, {cert: paths.caCert, key: paths.caKey})
}

async function readClient(paths: CertPaths, ca: Ca): Promise<ClientBundle | undefined> {
  const cert = await readText(paths.clientCert)
  if (cert === undefined) return undefined
  const fix = 'run `belt regenerate-certs --client-certs` to issue a new client certificate'
  const key = await readText(paths.clientKey)
  if (key === undefined) throw environmentError(`the client key ${paths.clientKey} is missing (its certificate ${paths.clientCert} is there)`, 'E_CLIENT_KEY_MISSING', fix)
  let info
  try {
    info = certValidity(cert, `the client certificate ${paths.clientCert}`)
  } catch (e) {
    throw environmentError(`the client certificate ${paths.clientCert} is unreadable`, 'E_CLIENT_CERT_CORRUPT', fix, e)
  }
  let keyMatches: boolean
  try {
    keyMatches = keyMatchesCert(cert, key)
  } catch (e) {
    throw environmentError(`the client key ${paths.clientKey} is unreadable: ${(e as Error).message}`, 'E_CLIENT_CERT_CORRUPT', fix, e)
  }
  if (!keyMatches) throw environmentError(`the client key ${paths.clientKey} does not belong to the certificate ${paths.clientCert}`, 'E_CLIENT_CERT_MISMATCH', fix)
  if (!signedBySync(cert, ca.certPem))
    throw environmentError(`the client certificate ${paths.clientCert} was not signed by the CA ${paths.caCert}`, 'E_CLIENT_CERT_FOREIGN', fix)
  if (info.notAfter.getTime() <= Date.now())
    throw environmentError(`the client certificate ${paths.clientCert} expired on ${info.notAfter.toISOString()}`, 'E_CLIENT_CERT_EXPIRED', fix)
  return bundle(paths, ca, cert, key)
}

async function writeNewClient(paths: CertPaths, ca: Ca, opts: ClientCertOptions): Promise<ClientBundle> {
  const {certPem, keyPem} = await issueClientCert(ca, opts)
  await writePair(paths.clientCert, certPem, paths.clientKey, keyPem)
  return bundle(paths, ca, certPem, keyPem)
}

/**
 * Replaces a certificate and its key so that a reader never sees a mismatched pair, even if the
 * process dies half-way: the old certificate goes first (a pair without its certificate counts as
 * absent and is simply made again), then the key, then the certificate, each write atomic.
 */
async function writePair(certFile: string, certPem: string, keyFile: string, keyPem: string): Promise<void> {
  await fs.rm(certFile, {force: true})
  await fsyncDir(path.dirname(certFile))
  await writeFileAtomic(keyFile, keyPem, 0o600)
  await writeFileAtomic(certFile, certPem, 0o644)
}

function bundle(paths: CertPaths, ca: Ca, cert: string, key: string): ClientBundle {
  return {dir: paths.dir, ca: ca.certPem, cert, key, certFile: paths.clientCert, keyFile: paths.clientKey}
}

/** A client certificate must be signed by the CA on disk, not by one another process just replaced. */
async function assertCurrentCa(paths: CertPaths, ca: Ca): Promise<void> {
  const onDisk = await readText(paths.caCert)
  let same = false
  if (onDisk !== undefined) {
    try {
      same = certValidity(onDisk).fingerprint === ca.fingerprint
    } catch {
      same = false
    }
  }
  if (!same)
    throw environmentError(
      `the CA in ${paths.dir} is not the one this command loaded (another belt process rotated it?)`,
      'E_CA_CHANGED',
      'run the command again',
    )
}

function assertNotExpired(ca: Ca): void {
  if (ca.notAfter.getTime() <= Date.now())
    throw environmentError(
      `the CA ${ca.certFile ?? ca.subject} expired on ${ca.notAfter.toISOString()}`,
      'E_CA_EXPIRED',
      'run `belt regenerate-certs --ca` to make a new CA and new certificates for every host',
    )
}

/** Copies the current files to `previous/` before a rotation replaces them; returns that dir, or undefined when there was nothing. */
async function backup(paths: CertPaths): Promise<string | undefined> {
  const files = [paths.caCert, paths.caKey, paths.clientCert, paths.clientKey]
  const contents = await Promise.all(files.map(async (f) => [f, await readText(f)] as const))
  const present = contents.filter((c): c is readonly [string, string] => c[1] !== undefined)
  if (!present.length) return undefined
  await ensurePrivateDir(paths.previousDir)
  for (const [f, text] of present) await writeFileAtomic(path.join(paths.previousDir, path.basename(f)), text, 0o600)
  return paths.previousDir
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw environmentError(`cannot read ${file}: ${(e as Error).message}`, 'E_CERT_UNREADABLE', 'check the permissions of the store directory', e)
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file)
    return true
  } catch {
    return false
  }
}
