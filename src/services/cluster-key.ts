import {promises as fs} from 'node:fs'
import path from 'node:path'
import {environmentError} from '../errors.js'
import {generateSshKeyPair, fingerprintOf} from '../ssh/keys.js'
import {ensurePrivateDir, writeFileAtomic} from '../store/atomic.js'
import type {Store} from '../store/store.js'

export interface ClusterKey {
  /** OpenSSH private key; lives only in `<store>/keys/<cluster>/id_ed25519` (0600) and in memory. */
  privateKey: string
  publicKey: string
  fingerprint: string
  file: string
}

/** The cluster's SSH key pair, created once per cluster even with several belt processes at once. */
export async function ensureClusterKey(store: Store, cluster: string): Promise<ClusterKey> {
  const dir = store.keysDir(cluster)
  const file = path.join(dir, 'id_ed25519')
  const existing = await readClusterKey(file)
  if (existing) return existing
  return store.locks.with(`cluster-key-${cluster}`, async () => {
    const again = await readClusterKey(file)
    if (again) return again
    await ensurePrivateDir(path.dirname(dir))
    await ensurePrivateDir(dir)
    const kp = generateSshKeyPair(`belt-${cluster}`)
    // Public key first: a private key without its .pub is never mistaken for a complete pair.
    await writeFileAtomic(`${file}.pub`, kp.publicKey + '\n', 0o644)
    await writeFileAtomic(file, kp.privateKey, 0o600)
    return {privateKey: kp.privateKey, publicKey: kp.publicKey, fingerprint: kp.fingerprint, file}
  })
}

/** Reads an existing key pair, or undefined when none exists yet. */
export async function readClusterKey(file: string): Promise<ClusterKey | undefined> {
  let privateKey: string
  let publicKey: string
  try {
    privateKey = await fs.readFile(file, 'utf8')
    publicKey = (await fs.readFile(`${file}.pub`, 'utf8')).trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  try {
    return {privateKey, publicKey, fingerprint: fingerprintOf(publicKey), file}
  } catch (e) {
    throw environmentError(`the cluster SSH key ${file}.pub is unreadable`, 'E_KEY_CORRUPT', `restore it from ${file}, or remove both files if no host uses them`, e)
  }
}
