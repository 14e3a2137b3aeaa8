import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {writeFileAtomic, ensurePrivateDir} from './atomic.js'
import type {Store} from './store.js'

/** Bumped when the on-disk shape of a batch changes. */
export const BATCH_SCHEMA_VERSION = 1

/**
 * One `belt create` batch, written before any of its hosts is touched and closed when it ends, so
 * that the same command run again can tell "finish that batch" from "add more hosts":
 * `belt create --count 4` after an interrupted `belt create --count 4` finishes the four hosts it
 * chose instead of choosing four more.
 */
export interface CreateBatch {
  schemaVersion: number
  /** What the operator asked for, in the form that identifies "the same command". */
  selection: {count: number; prefix: string} | {names: string[]}
  cluster: string
  driver: string
  /** The hosts the batch chose, in order. */
  names: string[]
  /**
   * `running` while a process works on it (or when that process was killed); `incomplete` when it
   * ended interrupted or with failed hosts; `complete` when every host reached the batch's goal.
   */
  state: 'running' | 'incomplete' | 'complete'
  pid: number
  startedAt: string
  updatedAt: string
}

/** The key of "the same command": cluster, driver and selection (the names sorted). */
export function batchKey(b: Pick<CreateBatch, 'cluster' | 'driver' | 'selection'>): string {
  const sel = 'count' in b.selection ? `count:${b.selection.count}:prefix:${b.selection.prefix}` : `names:${[...b.selection.names].sort().join(',')}`
  return createHash('sha256').update(`${b.cluster}\0${b.driver}\0${sel}`).digest('hex').slice(0, 24)
}

const batchesDir = (store: Store) => path.join(store.dir, 'batches')
const batchFile = (store: Store, key: string) => path.join(batchesDir(store), `${key}.json`)

/** The batch with this key, or undefined (also for an unreadable file: it only ever helps resume). */
export async function loadBatch(store: Store, key: string): Promise<CreateBatch | undefined> {
  try {
    const b = JSON.parse(await fs.readFile(batchFile(store, key), 'utf8')) as CreateBatch
    if (b.schemaVersion !== BATCH_SCHEMA_VERSION || !Array.isArray(b.names)) return undefined
    return b
  } catch {
    return undefined
  }
}

/** Writes a batch atomically (0600). */
export async function saveBatch(store: Store, b: CreateBatch): Promise<void> {
  await ensurePrivateDir(batchesDir(store))
  b.updatedAt = new Date().toISOString()
  await writeFileAtomic(batchFile(store, batchKey(b)), JSON.stringify(b, null, 2) + '\n', 0o600)
}

/** Every unfinished batch of a cluster whose process is gone, newest first (for hints). */
export async function unfinishedBatches(store: Store, cluster: string): Promise<CreateBatch[]> {
  const files = await fs.readdir(batchesDir(store)).catch(() => [] as string[])
  const out: CreateBatch[] = []
  for (const f of files) {
    if (!f.endsWith('.json')) continue
    const b = await loadBatch(store, f.slice(0, -5))
    if (b && b.cluster === cluster && b.state !== 'complete' && !pidAlive(b.pid)) out.push(b)
  }
  return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt))
}

/** True when a process with this PID is alive on this machine (and is not this process). */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid || pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
