import {promises as fs} from 'node:fs'
import path from 'node:path'
import {randomBytes} from 'node:crypto'
import {environmentError, notFoundError} from '../errors.js'
import {ensurePrivateDir, writeFileAtomic} from './atomic.js'
import type {Store} from './store.js'
import type {PhaseTimes} from './types.js'

/** Bumped when the on-disk shape of a run changes. */
export const RUN_SCHEMA_VERSION = 1

/** One host's way through a batch: phase timestamps (ISO-8601) and how it ended. */
export interface RunHost {
  name: string
  times: PhaseTimes
  ok: boolean
  /** The phase that failed and why, when it failed. */
  failedPhase?: string
  error?: string
  /** `docker swarm join` answered "Timeout was reached before node joined" (still joining, verified after). */
  joinTimedOut?: boolean
  role?: 'manager' | 'worker'
}

/**
 * The experiment log of one batch (`belt create`, `belt swarm init`, ...), written to
 * `<store>/runs/<id>.json` when the batch ends, for `belt report`.
 */
export interface Run {
  schemaVersion: number
  /** `20261123T063000Z-ab12`: sorts by time. */
  id: string
  /** The command line, without secrets (`belt create --driver local --count 50 --swarm`). */
  command: string
  driver?: string
  startedAt: string
  finishedAt: string
  /** Settings that shape the figures: concurrency, managers, ... */
  settings: Record<string, string | number | boolean>
  hosts: RunHost[]
}

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`
}

const runsDir = (store: Store) => path.join(store.dir, 'runs')

export async function saveRun(store: Store, run: Run): Promise<string> {
  await store.init()
  await ensurePrivateDir(runsDir(store))
  const file = path.join(runsDir(store), `${run.id}.json`)
  await writeFileAtomic(file, JSON.stringify(run, null, 2) + '\n', 0o600)
  return file
}

/** Run ids, oldest first. */
export async function listRuns(store: Store): Promise<string[]> {
  const names = await fs.readdir(runsDir(store)).catch(() => [] as string[])
  return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).sort()
}

/** A run by id (or the newest when `id` is undefined). */
export async function loadRun(store: Store, id?: string): Promise<Run> {
  const ids = await listRuns(store)
  const chosen = id ?? ids.at(-1)
  if (!chosen || !ids.includes(chosen))
    throw notFoundError(id ? `no run ${id} in ${runsDir(store)}` : `no run recorded in ${runsDir(store)} yet`, 'E_RUN_NOT_FOUND', id ? 'list them with: belt report --list' : 'runs are recorded by belt create and belt swarm init')
  const file = path.join(runsDir(store), `${chosen}.json`)
  try {
    const run = JSON.parse(await fs.readFile(file, 'utf8')) as Run
    if (run.schemaVersion !== RUN_SCHEMA_VERSION || !Array.isArray(run.hosts)) throw new Error(`schema version ${run.schemaVersion}`)
    return run
  } catch (e) {
    throw environmentError(`run file ${file} is unreadable: ${(e as Error).message}`, 'E_RUN_CORRUPT', 'move it out of the runs directory')
  }
}
