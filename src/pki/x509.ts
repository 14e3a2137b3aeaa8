/**
 * Certificates in memory: key generation, a CA, server and client certificates, and the checks
 * `regenerate-certs`, `ls` and `inspect` need. Nothing here touches the disk (src/pki/ca.ts keeps
 * the store's CA and client certificate; server keys only ever live in memory and on their host).
 *
 * Keys come from Node's crypto; certificates (the CA's and the leaves') are encoded by ./der.ts
 * and signed by Node's `crypto.sign` (SHA-256; ECDSA in DER, RSA PKCS#1 v1.5, the one every TLS
 * stack verifies): under a millisecond of CPU each, where @peculiar/x509 took 16 to 26 ms a
 * certificate. ECDSA P-256 is the default because RSA-2048 key generation dominates a 300-host
 * batch (about 100 ms per key against well under 1 ms); RSA-2048 stays available for clients that
 * cannot verify ECDSA. Reading and checking goes through Node's own `crypto.X509Certificate`
 * (OpenSSL), which is synchronous and so fits the bootstrapper's synchronous `keepServerCert` hook;
 * only {@link certInfo}'s SAN and EKU lists come from @peculiar/x509, loaded when first needed.
 */
import type * as X509 from '@peculiar/x509'
import {createHash, createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, KeyObject, randomBytes, sign, webcrypto, X509Certificate as NodeX509} from 'node:crypto'
import {createRequire} from 'node:module'
import net from 'node:net'
import {promisify} from 'node:util'
import * as der from './der.js'
import {environmentError, usageError, UserError} from '../errors.js'

/**
 * @peculiar/x509, loaded on first use: only {@link certInfo} (inspect, regenerate-certs) reads
 * certificates with it; making and loading CAs and certificates does without it, so a `create`
 * never loads it and its dependencies (asn1js, tsyringe: about 0.2 s of CPU).
 */
let peculiarModule: typeof X509 | undefined
function peculiar(): typeof X509 {
  if (!peculiarModule) {
    const require = createRequire(import.meta.url)
    // It resolves its ASN.1 parsers through tsyringe, which throws at load time unless the Reflect
    // metadata API exists: this must be loaded first.
    require('reflect-metadata')
    peculiarModule = require('@peculiar/x509') as typeof X509
    peculiarModule.cryptoProvider.set(webcrypto)
  }
  return peculiarModule
}

/** Key algorithms Belt generates. The CA's type is also the default for the certificates it issues. */
export type KeyType = 'ecdsa-p256' | 'rsa-2048'
export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048']
/** ECDSA P-256: accepted by dockerd and the docker CLI, and fast enough to issue 300 certificates in about a second. */
export const DEFAULT_KEY_TYPE: KeyType = 'ecdsa-p256'

/** Default validity in days. The CA outlives the certificates it signs, which are reissued by `regenerate-certs`. */
export const DEFAULT_VALIDITY_DAYS = {ca: 3650, server: 1095, client: 1095} as const

/** How far notBefore is set in the past, so a host whose clock lags still accepts a fresh certificate. */
export const BACKDATE_MS = 60 * 60 * 1000

const DAY_MS = 24 * 60 * 60 * 1000
const MAX_VALIDITY_DAYS = 36_500

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface KeyPair {
  certPem: string
  keyPem: string
}

/**
 * A certificate authority that can sign. The private key is held out of reach (not a field), so a
 * Ca can be logged or serialised without leaking it; only {@link generateCa}, {@link caFromPem} and
 * the store functions in ca.ts make one.
 */
export interface Ca {
  readonly certPem: string
  readonly keyType: KeyType
  /** SHA-256 of the DER certificate, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256`). */
  readonly fingerprint: string
  readonly subject: string
  readonly notAfter: Date
  /** Where the certificate is stored, when it came from a store. */
  readonly certFile?: string
}

interface Signer {
  keyObject: KeyObject
  /** The CA certificate's subject Name, as its DER bytes: the issuer of every leaf. */
  subjectDer: Buffer
  /** The AlgorithmIdentifier of the CA's signatures, DER. */
  signatureAlgorithm: Buffer
  /** The CA's key identifier, for the leaves' authorityKeyIdentifier. */
  authorityKeyId: Buffer
}
// Kept beside the Ca rather than in it, so spreading or printing a Ca never carries the key.
const signers = new WeakMap<Ca, Signer>()

/** Options for a new CA. */
export interface CaOptions {
  keyType?: KeyType
  validityDays?: number
  /** Subject CN; default `belt CA <8 random hex>`, so two stores' CAs are told apart in `openssl x509 -text`. */
  commonName?: string
}

/** Options for {@link issueServerCert}. */
export interface ServerCertOptions {
  /** The name the host calls itself (hostname), a DNS SAN. */
  hostName: string
  /** Belt's name for the host, a DNS SAN and the subject CN. */
  machineName: string
  /** Public and private addresses: IPs become IP SANs; anything else (a DNS name) a DNS SAN. */
  addresses: readonly string[]
  validityDays?: number
  /** Default: the CA's key type. */
  keyType?: KeyType
}

/** Options for {@link issueClientCert}. */
export interface ClientCertOptions {
  validityDays?: number
  /** Default: the CA's key type. */
  keyType?: KeyType
  commonName?: string
}

/** Makes a new CA in memory. */
export async function generateCa(opts: CaOptions = {}): Promise<Ca> {
  return (await generateCaPair(opts)).ca
}

/**
 * Makes a new CA and returns its private key as PEM too, for the store to write. Internal to the
 * pki module (ca.ts); everyone else gets a {@link Ca}, which does not expose the key.
 */
export async function generateCaPair(opts: CaOptions = {}): Promise<{ca: Ca; keyPem: string}> {
  const keyType = checkKeyType(opts.keyType ?? DEFAULT_KEY_TYPE)
  const days = checkValidity(opts.validityDays ?? DEFAULT_VALIDITY_DAYS.ca)
  const keys = await generateKeyObjects(keyType)
  const now = Date.now()
  const spki = keys.publicKey.export({type: 'spki', format: 'der'})
  const name = nameDer(opts.commonName ?? `belt CA ${randomBytes(4).toString('hex')}`)
  const certPem = encodeCertificate({
    signatureAlgorithm: signatureAlgorithmOf(keyType),
    issuer: name,
    subject: name,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + days * DAY_MS),
    spki,
    extensions: [
      // pathLen 0: this CA signs hosts and clients only, never another CA.
      extension(OID.basicConstraints, true, der.sequence(der.TRUE, der.smallInteger(0))),
      // digitalSignature (0), keyCertSign (5), cRLSign (6).
      extension(OID.keyUsage, true, der.namedBits([0, 5, 6])),
      extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdOf(spki))),
    ],
    signingKey: keys.privateKey,
  })
  const keyPem = keys.privateKey.export({type: 'pkcs8', format: 'pem'}) as string
  return {ca: makeCa(certPem, keys.privateKey, keyType), keyPem}
}

/**
 * Rebuilds a CA from its PEM certificate and key (PKCS#8, PKCS#1 or SEC1). Every problem is a
 * UserError naming the file given in `files` and saying how to fix it; a broken CA is never
 * replaced silently, because every host trusts exactly this one.
 */
export async function caFromPem(certPem: string, keyPem: string, files: {cert: string; key: string}): Promise<Ca> {
  const fix = `restore ${files.cert} and ${files.key} from a backup, or run \`belt regenerate-certs --ca\` to make a new CA (every host then needs new certificates)`
  let nodeCert: NodeX509
  try {
    nodeCert = new NodeX509(certPem)
  } catch (e) {
    throw environmentError(`the CA certificate ${files.cert} is unreadable: ${(e as Error).message}`, 'E_CA_CORRUPT', fix, e)
  }
  if (!nodeCert.ca) throw environmentError(`${files.cert} is not a CA certificate (no basicConstraints CA:TRUE)`, 'E_CA_CORRUPT', fix)
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (e) {
    throw environmentError(`the CA key ${files.key} is unreadable: ${(e as Error).message}`, 'E_CA_CORRUPT', fix, e)
  }
  if (!samePublicKey(nodeCert.publicKey, key))
    throw environmentError(`the CA key ${files.key} does not belong to the certificate ${files.cert}`, 'E_CA_MISMATCH', fix)
  const keyType = keyTypeOf(key)
  if (!keyType)
    throw environmentError(`the CA key ${files.key} is ${describeKey(key)}; belt signs with ECDSA P-256 or RSA (2048 bits or more)`, 'E_CA_KEY_UNSUPPORTED', fix)
  return makeCa(certPem, key, keyType, files.cert)
}

/**
 * Issues a server certificate for a Docker engine, in memory: the key is returned to be uploaded to
 * the host and must never be written to the operator's disk.
 *
 * SANs: every address (IPs as IP SANs), the host name, the machine name, `localhost` and
 * `127.0.0.1`, deduplicated. EKU serverAuth; key usage digitalSignature (+ keyEncipherment for RSA,
 * which RSA key exchange needs). notBefore is back-dated by {@link BACKDATE_MS}; notAfter never
 * passes the CA's. Rejects with a UserError for an invalid name or an expired CA.
 */
export async function issueServerCert(ca: Ca, opts: ServerCertOptions): Promise<KeyPair> {
  const sans = serverSans(opts)
  return issueLeaf(ca, {
    commonName: checkName(opts.machineName, 'machine name'),
    usage: EKU.serverAuth,
    sans,
    validityDays: opts.validityDays ?? DEFAULT_VALIDITY_DAYS.server,
    keyType: opts.keyType,
  })
}

/** Issues a client certificate (EKU clientAuth, no SANs), in memory. */
export async function issueClientCert(ca: Ca, opts: ClientCertOptions = {}): Promise<KeyPair> {
  return issueLeaf(ca, {
    commonName: opts.commonName ?? 'belt client',
    usage: EKU.clientAuth,
    sans: {dns: [], ips: []},
    validityDays: opts.validityDays ?? DEFAULT_VALIDITY_DAYS.client,
    keyType: opts.keyType,
  })
}

/** The SANs {@link issueServerCert} puts in a certificate: DNS names lower-cased, IPs canonical, no duplicates. */
export function serverSans(opts: Pick<ServerCertOptions, 'hostName' | 'machineName' | 'addresses'>): {dns: string[]; ips: string[]} {
  const dns = new Set<string>()
  const ips = new Set<string>()
  for (const a of [...opts.addresses, '127.0.0.1']) {
    const ip = canonicalIp(a)
    if (ip) ips.add(ip)
    else dns.add(checkName(a, 'address'))
  }
  for (const [n, what] of [
    [opts.hostName, 'host name'],
    [opts.machineName, 'machine name'],
  ] as const) {
    // A host name may be unknown before the first SSH session; the machine name is always there.
    if (n === '' && what === 'host name') continue
    dns.add(checkName(n, what))
  }
  dns.add('localhost')
  return {dns: [...dns], ips: [...ips]}
}

/** What `inspect` and `regenerate-certs` show of a certificate. */
export interface CertInfo {
  subject: string
  issuer: string
  /** Upper-case hex, as OpenSSL prints it. */
  serialNumber: string
  notBefore: Date
  notAfter: Date
  /** SHA-256, colon-separated upper-case hex. */
  fingerprint: string
  dnsNames: string[]
  ipAddresses: string[]
  isCa: boolean
  /** 'other' for keys Belt does not generate (e.g. a P-384 or RSA-4096 certificate made elsewhere). */
  keyType: KeyType | 'other'
  /** Extended key usages by name (serverAuth, clientAuth) or OID. */
  extKeyUsage: string[]
}

/**
 * Reads a PEM certificate (the first one when there are several). Throws a UserError naming
 * `source` (a file or host) when it is not a certificate.
 */
/**
 * A certificate's expiry and SHA-256 fingerprint (as {@link certInfo} has them), read by Node's
 * native X.509 parser alone: what a host's record keeps after each bootstrap, without the asn1js
 * parse of certInfo (about 15 ms a certificate here).
 */
export function certValidity(pem: string, source = 'the certificate'): Pick<CertInfo, 'notAfter' | 'fingerprint'> {
  const node = parseNode(pem, source)
  return {notAfter: node.validToDate, fingerprint: node.fingerprint256}
}

export function certInfo(pem: string, source = 'the certificate'): CertInfo {
  const node = parseNode(pem, source)
  const x509 = peculiar()
  let cert: X509.X509Certificate
  try {
    cert = new x509.X509Certificate(pem)
  } catch (e) {
    throw invalidCert(source, e)
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)
  const ekuNames = new Map<string, string>(Object.entries(x509.ExtendedKeyUsage).map(([name, oid]) => [oid, name]))
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: node.serialNumber,
    notBefore: node.validFromDate,
    notAfter: node.validToDate,
    fingerprint: node.fingerprint256,
    dnsNames: sanValues(san, 'dns'),
    ipAddresses: sanValues(san, 'ip'),
    isCa: node.ca,
    keyType: keyTypeOf(node.publicKey) ?? 'other',
    extKeyUsage: eku ? Array.from(eku.usages, (u) => ekuNames.get(String(u)) ?? String(u)) : [],
  }
}

/**
 * True when `caPem`'s key signed `certPem` and its subject is the certificate's issuer. False too
 * when `certPem` is not a certificate at all (a garbled file on a host is simply not ours); throws
 * a UserError when `caPem` is unreadable.
 */
export async function signedBy(certPem: string, caPem: string): Promise<boolean> {
  return signedBySync(certPem, caPem)
}

/** Synchronous {@link signedBy}, for synchronous hooks such as the bootstrapper's `keepServerCert`. */
export function signedBySync(certPem: string, caPem: string): boolean {
  const ca = parseNode(caPem, 'the CA certificate')
  let cert: NodeX509
  try {
    cert = new NodeX509(certPem)
  } catch {
    return false
  }
  return cert.checkIssued(ca) && cert.verify(ca.publicKey)
}

/**
 * True when the certificate's SANs cover every address (IP SANs; a non-IP address as a DNS SAN)
 * and every name (DNS SANs). The subject CN is ignored, as modern TLS clients ignore it.
 */
export function coversAddresses(certPem: string, addresses: readonly string[], names: readonly string[] = []): boolean {
  return missingSans(parseNode(certPem, 'the certificate'), addresses, names).length === 0
}

/** True when the certificate expires less than `days` days after `now` (or has expired). */
export function expiresWithin(certPem: string, days: number, now: Date = new Date()): boolean {
  const cert = parseNode(certPem, 'the certificate')
  return cert.validToDate.getTime() - now.getTime() < days * DAY_MS
}

/**
 * True when `keyPem` is the private key of `certPem`'s public key. Throws when either does not
 * parse (the caller names the file).
 */
export function keyMatchesCert(certPem: string, keyPem: string): boolean {
  return samePublicKey(new NodeX509(certPem).publicKey, createPrivateKey(keyPem))
}

/** Why a server certificate on a host can or cannot be kept. */
export interface ServerCertCheck {
  ok: boolean
  /** One short phrase per problem, empty when ok. */
  problems: string[]
}

/**
 * Whether a server certificate found on a host can stay: it parses, this CA signed it, it is for
 * servers, its SANs cover the host's addresses and names, and it is valid for at least
 * `minValidDays` more days (default 30, the `ls` warning threshold). Synchronous on purpose: the
 * bootstrapper's `keepServerCert` hook is.
 */
export function checkServerCert(
  certPem: string | undefined,
  caPem: string,
  want: {addresses: readonly string[]; names?: readonly string[]; minValidDays?: number; now?: Date},
): ServerCertCheck {
  if (certPem === undefined || certPem.trim() === '') return {ok: false, problems: ['no certificate']}
  let cert: NodeX509
  try {
    cert = new NodeX509(certPem)
  } catch {
    return {ok: false, problems: ['not a PEM certificate']}
  }
  const problems: string[] = []
  if (!signedBySync(certPem, caPem)) problems.push('not signed by this CA')
  const eku = cert.keyUsage
  if (eku && !eku.includes(EKU.serverAuth)) problems.push('not a server certificate (no serverAuth)')
  const missing = missingSans(cert, want.addresses, want.names ?? [])
  if (missing.length) problems.push(`does not cover ${missing.join(', ')}`)
  const now = want.now ?? new Date()
  const left = cert.validToDate.getTime() - now.getTime()
  const min = want.minValidDays ?? 30
  if (left <= 0) problems.push('expired')
  else if (left < min * DAY_MS) problems.push(`expires within ${min} days`)
  if (cert.validFromDate.getTime() > now.getTime()) problems.push('not valid yet')
  return {ok: problems.length === 0, problems}
}

/** The signing material behind a Ca, for ca.ts; throws a bug error for a Ca not made by this module. */
function signerOf(ca: Ca): Signer {
  const s = signers.get(ca)
  if (!s) throw new Error('this Ca was not made by generateCa, caFromPem or ensureCa (a copy of one cannot sign)')
  return s
}

const EKU = {serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2'} as const

interface LeafParams {
  commonName: string
  usage: (typeof EKU)[keyof typeof EKU]
  sans: {dns: string[]; ips: string[]}
  validityDays: number
  keyType?: KeyType
}

async function issueLeaf(ca: Ca, p: LeafParams): Promise<KeyPair> {
  const signer = signerOf(ca)
  const keyType = checkKeyType(p.keyType ?? ca.keyType)
  const days = checkValidity(p.validityDays)
  const now = Date.now()
  if (ca.notAfter.getTime() <= now)
    throw environmentError(
      `the CA ${ca.certFile ?? ca.subject} expired on ${ca.notAfter.toISOString()}`,
      'E_CA_EXPIRED',
      'run `belt regenerate-certs --ca` to make a new CA and new certificates for every host',
    )
  const keys = await generateKeyObjects(keyType)
  const spki = keys.publicKey.export({type: 'spki', format: 'der'})
  const rsa = keyType.startsWith('rsa')
  const extensions = [
    extension(OID.basicConstraints, true, der.sequence()),
    // digitalSignature (0), and keyEncipherment (2) for RSA, which RSA key exchange needs.
    extension(OID.keyUsage, true, der.namedBits(rsa ? [0, 2] : [0])),
    extension(OID.extKeyUsage, false, der.sequence(der.objectIdentifier(p.usage))),
    extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdOf(spki))),
    extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, signer.authorityKeyId))),
  ]
  const names = [...p.sans.dns.map((n) => der.implicit(2, Buffer.from(n, 'ascii'))), ...p.sans.ips.map((ip) => der.implicit(7, ipBytes(ip)))]
  if (names.length) extensions.push(extension(OID.subjectAltName, false, der.sequence(...names)))
  const certPem = encodeCertificate({
    signatureAlgorithm: signer.signatureAlgorithm,
    // The CA's subject bytes as they are in its certificate: Go builds chains by comparing them.
    issuer: signer.subjectDer,
    subject: nameDer(p.commonName),
    notBefore: new Date(now - BACKDATE_MS),
    // A certificate that outlives its CA would only fail later and more obscurely.
    notAfter: new Date(Math.min(now + days * DAY_MS, ca.notAfter.getTime())),
    spki,
    extensions,
    signingKey: signer.keyObject,
  })
  return {certPem, keyPem: keys.privateKey.export({type: 'pkcs8', format: 'pem'}) as string}
}

/** An X.509 v3 certificate, DER-encoded, signed with SHA-256, as PEM. */
function encodeCertificate(c: {
  signatureAlgorithm: Buffer
  issuer: Buffer
  subject: Buffer
  notBefore: Date
  notAfter: Date
  spki: Buffer
  extensions: Buffer[]
  signingKey: KeyObject
}): string {
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(randomSerial()),
    c.signatureAlgorithm,
    c.issuer,
    der.sequence(der.time(c.notBefore), der.time(c.notAfter)),
    c.subject,
    c.spki,
    der.explicit(3, der.sequence(...c.extensions)),
  )
  // ECDSA signatures in DER (Node's default), RSA with PKCS#1 v1.5 padding (its default).
  const signature = sign('sha256', tbs, c.signingKey)
  const certDer = der.sequence(tbs, c.signatureAlgorithm, der.bitString(signature))
  return `-----BEGIN CERTIFICATE-----\n${certDer.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`
}

/** An Extension: its OID, `critical` only when true (DER leaves out a default), its value's DER. */
const extension = (oid: string, critical: boolean, value: Buffer) => der.sequence(der.objectIdentifier(oid), ...(critical ? [der.TRUE] : []), der.octetString(value))

/** The Name `CN=<cn>, O=belt`. */
const nameDer = (cn: string) =>
  der.sequence(der.set(der.sequence(der.objectIdentifier(OID.commonName), der.utf8String(cn))), der.set(der.sequence(der.objectIdentifier(OID.organization), der.utf8String('belt'))))

const signatureAlgorithmOf = (keyType: KeyType) =>
  keyType === 'ecdsa-p256' ? der.sequence(der.objectIdentifier(OID.ecdsaWithSha256)) : der.sequence(der.objectIdentifier(OID.sha256WithRsa), der.NULL)

/** The value (inner DER) of a certificate's extension `oid`, or undefined. */
function extensionValue(certDer: Buffer, oid: string): Buffer | undefined {
  const tbs = der.children(der.readElement(certDer))[0]!
  const wrapper = der.children(tbs).find((e) => e.tag === 0xa3)
  if (!wrapper) return undefined
  const want = der.objectIdentifier(oid)
  for (const ext of der.children(der.children(wrapper)[0]!)) {
    const parts = der.children(ext)
    if (parts[0]?.raw.equals(want)) return parts.at(-1)!.content
  }
  return undefined
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const

/** RFC 5280 4.2.1.2 method (1): the SHA-1 of the subjectPublicKey bits of an SPKI. */
function keyIdOf(spki: Buffer): Buffer {
  const bits = der.children(der.readElement(spki))[1]
  if (!bits || bits.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo')
  return createHash('sha1').update(bits.content.subarray(1)).digest()
}

/**
 * An IP SAN's octets: 4 for IPv4, 16 for IPv6, from `ip` as {@link canonicalIp} gives it (the URL
 * serialiser's compressed hex form: no zone, no dotted IPv4 tail).
 */
function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number))
  if (!net.isIPv6(ip) || ip.includes('.')) throw new Error(`not a canonical IP address: ${ip}`)
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined]
  const h = head ? head.split(':') : []
  const t = tail === undefined ? [] : tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/** A key pair through Node's own crypto (P-256 in well under a millisecond). */
async function generateKeyObjects(keyType: KeyType): Promise<{publicKey: KeyObject; privateKey: KeyObject}> {
  if (keyType === 'ecdsa-p256') return generateKeyPairSync('ec', {namedCurve: 'prime256v1'})
  return promisify(generateKeyPair)('rsa', {modulusLength: 2048, publicExponent: 0x10001})
}

function makeCa(certPem: string, privateKey: KeyObject, keyType: KeyType, certFile?: string): Ca {
  const node = new NodeX509(certPem)
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, ...
  const fields = der.children(der.children(der.readElement(node.raw))[0]!)
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]
  if (!subject || subject.tag !== 0x30) throw new Error('the CA certificate has no subject Name where X.509 puts it')
  const ski = extensionValue(node.raw, OID.subjectKeyIdentifier)
  const ca: Ca = Object.freeze({
    certPem,
    keyType,
    fingerprint: node.fingerprint256,
    subject: node.subject.split('\n').join(', '),
    notAfter: node.validToDate,
    ...(certFile === undefined ? {} : {certFile}),
  })
  signers.set(ca, {
    keyObject: privateKey,
    subjectDer: Buffer.from(subject.raw),
    signatureAlgorithm: signatureAlgorithmOf(keyType),
    // A CA made elsewhere may lack an SKI: derive the key id from its public key, as RFC 5280 suggests.
    authorityKeyId: ski ? der.readElement(ski).content : keyIdOf(node.publicKey.export({type: 'spki', format: 'der'})),
  })
  return ca
}

/** 16 random bytes, top bit clear (positive) and second bit set (no leading zero byte to strip). */
function randomSerial(): Buffer {
  const b = randomBytes(16)
  b[0] = (b[0]! & 0x7f) | 0x40
  return b
}

function keyTypeOf(key: KeyObject): KeyType | undefined {
  const d = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  // An RSA CA of another size (e.g. one imported from docker-machine) signs the same way.
  if (key.asymmetricKeyType === 'rsa' && (d?.modulusLength ?? 0) >= 2048) return 'rsa-2048'
  return undefined
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails
  return [key.asymmetricKeyType, d?.namedCurve, d?.modulusLength && `${d.modulusLength} bits`].filter(Boolean).join(' ')
}

function samePublicKey(certKey: KeyObject, privateKey: KeyObject): boolean {
  const a = certKey.export({type: 'spki', format: 'der'})
  const b = createPublicKey(privateKey).export({type: 'spki', format: 'der'})
  return a.equals(b)
}

function sanValues(san: X509.SubjectAlternativeNameExtension | null, type: 'dns' | 'ip'): string[] {
  return san ? Array.from(san.names.items.filter((n) => n.type === type), (n) => n.value) : []
}

function parseNode(pem: string, source: string): NodeX509 {
  try {
    return new NodeX509(pem)
  } catch (e) {
    throw invalidCert(source, e)
  }
}

function invalidCert(source: string, cause: unknown): UserError {
  return environmentError(`${source} is not a readable PEM certificate: ${(cause as Error).message}`, 'E_CERT_INVALID', undefined, cause)
}

function missingSans(cert: NodeX509, addresses: readonly string[], names: readonly string[]): string[] {
  const missing: string[] = []
  for (const a of addresses) {
    const ip = canonicalIp(a)
    if (ip ? cert.checkIP(ip) === undefined : cert.checkHost(a, {subject: 'never'}) === undefined) missing.push(a)
  }
  for (const n of names) if (cert.checkHost(n, {subject: 'never'}) === undefined) missing.push(n)
  return missing
}

/** The canonical text of an IP (IPv6 compressed, zone dropped), or undefined when `s` is not an IP. */
function canonicalIp(s: string): string | undefined {
  const bare = s.trim().replace(/^\[(.*)\]$/, '$1')
  const noZone = bare.includes(':') ? bare.replace(/%.*$/, '') : bare
  const v = net.isIP(noZone)
  if (v === 4) return noZone
  if (v === 6) return new URL(`http://[${noZone}]/`).hostname.slice(1, -1)
  return undefined
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/

/** A DNS SAN: lower-cased, trailing dot dropped; anything else is refused rather than written into a certificate. */
function checkName(name: string, what: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, '')
  if (!DNS_NAME.test(n))
    throw usageError(`the ${what} ${JSON.stringify(name)} cannot go into a certificate: it is neither an IP address nor a DNS name`, 'E_CERT_NAME_INVALID')
  return n
}

function checkKeyType(t: string): KeyType {
  if (!(KEY_TYPES as readonly string[]).includes(t)) throw usageError(`unknown key type ${JSON.stringify(t)}`, 'E_KEY_TYPE', `use one of ${KEY_TYPES.join(', ')}`)
  return t as KeyType
}

function checkValidity(days: number): number {
  if (!Number.isFinite(days) || days <= 0 || days > MAX_VALIDITY_DAYS)
    throw usageError(`a certificate validity of ${days} days is out of range`, 'E_CERT_VALIDITY', `give a number of days between 1 and ${MAX_VALIDITY_DAYS}`)
  return days
}
