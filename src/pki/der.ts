/**
 * The few DER (X.690) encodings Belt's certificates need (its CA, server and client certificates,
 * one fixed profile each), and a reader that splits an element into its children. Why not
 * @peculiar/x509: it builds every extension by serialising and parsing it again through asn1js,
 * and parses the certificate it has just made; measured on this 2-core machine that was 16 to 26
 * ms of CPU per server certificate, about a fifth of Belt's CPU per host in a `create --swarm`, and
 * loading it costs about 0.2 s more. Encoding is a handful of tag-length-value writes; OpenSSL
 * (Node's X509Certificate, `openssl verify -x509_strict`) and Go (dockerd, the docker CLI) read
 * what comes out, in the tests. @peculiar/x509 only lists SANs and EKUs for `inspect`.
 */

/** Tag, DER length, content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length
  let len: number[]
  if (n < 0x80) len = [n]
  else {
    const bytes: number[] = []
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
    len = [0x80 | bytes.length, ...bytes]
  }
  return Buffer.concat([Buffer.from([tag, ...len]), content])
}

export const sequence = (...items: Uint8Array[]) => tlv(0x30, Buffer.concat(items))
export const set = (...items: Uint8Array[]) => tlv(0x31, Buffer.concat(items))
/** Context-specific, constructed: `[n] EXPLICIT`. */
export const explicit = (n: number, content: Uint8Array) => tlv(0xa0 | n, content)
/** Context-specific, primitive: `[n] IMPLICIT` of a primitive type. */
export const implicit = (n: number, content: Uint8Array) => tlv(0x80 | n, content)
export const octetString = (b: Uint8Array) => tlv(0x04, b)
export const utf8String = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'))
export const NULL = Buffer.from([0x05, 0x00])
export const TRUE = Buffer.from([0x01, 0x01, 0xff])

/** A non-negative INTEGER from its big-endian magnitude (a 0x00 is prefixed when the top bit is set). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++
  const m = magnitude.subarray(i)
  return tlv(0x02, m.length && m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m)
}
export const smallInteger = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new Error(`small INTEGER out of range: ${n}`)
  return tlv(0x02, Buffer.from([n]))
}

/** A BIT STRING with no unused bits (keys, signatures). */
export const bitString = (b: Uint8Array) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]))

/**
 * A named-bit BIT STRING (RFC 5280 key usage): bit 0 is the top bit of the first byte; DER drops
 * trailing zero bits and counts them as unused.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return tlv(0x03, Buffer.from([0]))
  const top = Math.max(...bits)
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1)
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7)
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (top & 7)]), bytes]))
}

export function objectIdentifier(oid: string): Buffer {
  const arcs = oid.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`bad OID ${oid}`)
    return Number(a)
  })
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39)) throw new Error(`bad OID ${oid}`)
  const out: number[] = []
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    const chunk: number[] = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const iso = new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString() // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') // YYYYMMDDHHMMSS
  const year = d.getUTCFullYear()
  if (year < 1950 || year > 9999) throw new Error(`date out of range for a certificate: ${iso}`)
  return year < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii')) : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'))
}

/** One element read from DER: its tag, its whole encoding, and where its content lies in it. */
export interface DerElement {
  tag: number
  raw: Buffer
  content: Buffer
}

/** The element at `offset` of `der`; throws on a truncated or indefinite-length encoding. */
export function readElement(der: Buffer, offset = 0): DerElement {
  if (offset + 2 > der.length) throw new Error('truncated DER')
  const tag = der[offset]!
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not supported')
  let len = der[offset + 1]!
  let head = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4) throw new Error('unsupported DER length')
    if (offset + 2 + n > der.length) throw new Error('truncated DER')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + der[offset + 2 + i]!
    head += n
  }
  const end = offset + head + len
  if (end > der.length) throw new Error('truncated DER')
  return {tag, raw: der.subarray(offset, end), content: der.subarray(offset + head, end)}
}

/** The children of a constructed element. */
export function children(el: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let off = 0; off < el.content.length; ) {
    const child = readElement(el.content, off)
    out.push(child)
    off += child.raw.length
  }
  return out
}
