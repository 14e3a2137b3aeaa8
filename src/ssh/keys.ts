import {createHash} from 'node:crypto'
import {createRequire} from 'node:module'
import type {utils as SshUtils} from 'ssh2'

/** An SSH key pair in OpenSSH formats. The private key is a secret: 0600 on disk, never logged. */
export interface SshKeyPair {
  privateKey: string
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string
  /** `SHA256:...`, as `ssh-keygen -l` prints it. */
  fingerprint: string
}

/** A new ed25519 key pair (fast, small, accepted by every current sshd and cloud API). */
export function generateSshKeyPair(comment: string): SshKeyPair {
  // ssh2's key generator only (its index loads the whole package), on the rare call that needs it.
  const {generateKeyPairSync} = createRequire(import.meta.url)('ssh2/lib/keygen.js') as Pick<typeof SshUtils, 'generateKeyPairSync'>
  const kp = generateKeyPairSync('ed25519', {comment})
  const publicKey = kp.public.trim()
  return {privateKey: kp.private, publicKey, fingerprint: fingerprintOf(publicKey)}
}

/** The key blob of an OpenSSH public key line (`type base64 [comment]`). Throws when malformed. */
export function publicKeyBlob(line: string): Buffer {
  const [type, b64] = line.trim().split(/\s+/)
  if (!type || !b64) throw new Error('not an OpenSSH public key line')
  const blob = Buffer.from(b64, 'base64')
  if (blobType(blob) !== type) throw new Error(`public key says ${type} but its blob is ${blobType(blob) ?? 'unreadable'}`)
  return blob
}

/** The algorithm name inside a key blob (its first length-prefixed string), or undefined. */
export function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined
  const n = blob.readUInt32BE(0)
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined
  return blob.subarray(4, 4 + n).toString('latin1')
}

/** `type base64` for a key blob: how host keys are pinned in the store. */
export function blobToLine(blob: Buffer): string {
  return `${blobType(blob) ?? 'unknown'} ${blob.toString('base64')}`
}

/** `SHA256:<base64 without padding>` of a key blob or OpenSSH public key line. */
export function fingerprintOf(key: string | Buffer): string {
  const blob = typeof key === 'string' ? publicKeyBlob(key) : key
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}
