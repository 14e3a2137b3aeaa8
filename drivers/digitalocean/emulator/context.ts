import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {DriverContext, JournalEntry} from '../../driver.js'

/**
 * A DriverContext for the emulator's backing driver: its own private directory, an in-process lock
 * per name (one emulator process owns its backing hosts), and a journal appended to
 * `<stateDir>/journal.jsonl` so hosts a crashed emulator left can be found.
 */
export async function backingContext(stateDir: string, log: (message: string) => void, signal?: AbortSignal): Promise<DriverContext> {
  await fs.mkdir(stateDir, {recursive: true, mode: 0o700})
  const queues = new Map<string, Promise<unknown>>()
  return {
    stateDir,
    signal,
    log,
    withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const run = (queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn)
      queues.set(name, run.catch(() => undefined))
      return run
    },
    async journal(entry: JournalEntry): Promise<void> {
      await fs.appendFile(path.join(stateDir, 'journal.jsonl'), JSON.stringify({...entry, at: new Date().toISOString()}) + '\n', {mode: 0o600})
    },
  }
}

/** A context that keeps its journal in memory: for tests and the rehearsal. */
export function memoryContext(log: (message: string) => void = () => undefined): DriverContext & {entries: JournalEntry[]} {
  const queues = new Map<string, Promise<unknown>>()
  const entries: JournalEntry[] = []
  return {
    stateDir: '/nonexistent/belt-memory-context',
    entries,
    log,
    withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const run = (queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn)
      queues.set(name, run.catch(() => undefined))
      return run
    },
    async journal(entry: JournalEntry): Promise<void> {
      entries.push(entry)
    },
  }
}
