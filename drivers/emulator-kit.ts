/**
 * What the cloud emulators share: seeded fault draws, and the DriverContext their backing driver
 * (the `local` driver, or a simulated one) runs with.
 */
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {DriverContext, JournalEntry} from './driver.js'

/** mulberry32: a small seeded PRNG, so that a fault run can be repeated exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** In-process locks by name: one emulator process owns its backing hosts. */
function inProcessLocks(): DriverContext['withLock'] {
  const queues = new Map<string, Promise<unknown>>()
  return <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const run = (queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn)
    queues.set(name, run.catch(() => undefined))
    return run
  }
}

/**
 * A DriverContext for an emulator's backing driver: its own private directory, in-process locks,
 * and a journal appended to `<stateDir>/journal.jsonl` so hosts a crashed emulator left can be found.
 */
export async function backingContext(stateDir: string, log: (message: string) => void, signal?: AbortSignal): Promise<DriverContext> {
  await fs.mkdir(stateDir, {recursive: true, mode: 0o700})
  return {
    stateDir,
    signal,
    log,
    withLock: inProcessLocks(),
    async journal(entry: JournalEntry): Promise<void> {
      await fs.appendFile(path.join(stateDir, 'journal.jsonl'), JSON.stringify({...entry, at: new Date().toISOString()}) + '\n', {mode: 0o600})
    },
  }
}

/** A context that keeps its journal in memory: for tests and rehearsals with simulated hosts. */
export function memoryContext(log: (message: string) => void = () => undefined, stateDir = '/nonexistent/belt-memory-context'): DriverContext & {entries: JournalEntry[]} {
  const entries: JournalEntry[] = []
  return {
    stateDir,
    entries,
    log,
    withLock: inProcessLocks(),
    async journal(entry: JournalEntry): Promise<void> {
      entries.push(entry)
    },
  }
}

/**
 * Resolves at the first SIGINT or SIGTERM (or when `signal` aborts) and keeps its handlers
 * installed until `done()` is called after teardown. A signal during teardown is ignored (the
 * teardown removes hosts; cutting it short would leave them). Why not `process.once`: a library's
 * exit hook (signal-exit, loaded by proper-lockfile) re-sends the signal to the process when it
 * finds itself the only listener left, which killed emulators at the start of their teardown and
 * left every backing host behind.
 */
export async function waitForStop(signal?: AbortSignal): Promise<{done(): void}> {
  let resolve!: () => void
  const stopped = new Promise<void>((r) => (resolve = r))
  const stop = () => resolve()
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  signal?.addEventListener('abort', stop, {once: true})
  if (signal?.aborted) stop()
  await stopped
  return {
    done() {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      signal?.removeEventListener('abort', stop)
    },
  }
}
