import {createHash} from 'node:crypto'

/** An OpenSSH one-line public key, split. */
export interface OpenSshKey {
  readonly type: string
  /** The key blob (base64-decoded second field). */
  readonly blob: Buffer
  readonly comment?: string
}

/** Parses `type base64 [comment]`; undefined when it is not an OpenSSH public key line. */
export function parseOpenSshKey(line: string): OpenSshKey | undefined {
  const [type, b64, ...rest] = line.trim().split(/\s+/)
  if (!type || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return undefined
  const blob = Buffer.from(b64, 'base64')
  // The blob starts with the key type as an SSH string: a corrupted paste fails here, not at AWS.
  if (blob.length < 4) return undefined
  const n = blob.readUInt32BE(0)
  if (blob.subarray(4, 4 + n).toString('latin1') !== type) return undefined
  return {type, blob, comment: rest.length ? rest.join(' ') : undefined}
}

/**
 * The fingerprint EC2 shows for an imported key: for ED25519 the base64 SHA-256 digest of the key
 * blob (OpenSSH's default since 6.8, with padding, without the `SHA256:` prefix); for RSA the MD5
 * digest of the blob as colon-separated hex (RFC 4716 section 4).
 */
export function ec2ImportedFingerprint(key: OpenSshKey): string {
  if (key.type === 'ssh-rsa') {
    const hex = createHash('md5').update(key.blob).digest('hex')
    return hex.match(/../g)!.join(':')
  }
  return createHash('sha256').update(key.blob).digest('base64')
}

/** Compares fingerprints the way they are written in the wild: `SHA256:` prefix and padding are cosmetic. */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string) => {
    const v = s.trim().replace(/^(SHA256|MD5):/i, '').replace(/=+$/, '')
    return v.includes(':') ? v.toLowerCase() : v // hex is case-insensitive, base64 is not
  }
  return norm(a) === norm(b)
}

/** True when two OpenSSH public key lines hold the same key (comments ignored). */
export function sameKey(a: string, b: string): boolean {
  const ka = parseOpenSshKey(a)
  const kb = parseOpenSshKey(b)
  return Boolean(ka && kb && ka.type === kb.type && ka.blob.equals(kb.blob))
}
