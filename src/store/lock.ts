import {promises as fs} from 'node:fs'
import path from 'node:path'
import {environmentError} from '../errors.js'

/**
 * Cross-process locks on files in a directory (proper-lockfile: an atomic mkdir with a heartbeat,
 * taken over when stale), plus an in-process queue per name so that tasks of one `belt` process
 * wait their turn without polling the file system against each other.
 */
export class Locks {
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(
    private readonly dir: string,
    private readonly opts: {timeoutMs?: number} = {},
  ) {}

  /** Runs `fn` holding the lock `name`. Rejects with a UserError when the lock is not free in time. */
  async with<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve()
    const run = prev.catch(() => undefined).then(() => this.withFileLock(name, fn))
    const tail = run.catch(() => undefined)
    this.queues.set(name, tail)
    try {
      return await run
    } finally {
      if (this.queues.get(name) === tail) this.queues.delete(name)
    }
  }

  /** The lock directory, made once per process (a batch takes thousands of locks). */
  private dirMade?: Promise<unknown>

  private async withFileLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await (this.dirMade ??= fs.mkdir(this.dir, {recursive: true, mode: 0o700}).catch((e: unknown) => {
      this.dirMade = undefined
      throw e
    }))
    const target = path.join(this.dir, name.replace(/[^a-zA-Z0-9._-]/g, '_'))
    const timeoutMs = this.opts.timeoutMs ?? 60_000
    let release: (() => Promise<void>) | undefined
    const deadline = Date.now() + timeoutMs
    let remade = false
    for (;;) {
      try {
        // Loaded at the first lock: commands that only read records (ip, env, ls) never pay for it.
        const {default: lockfile} = await import('proper-lockfile')
        release = await lockfile.lock(target, {realpath: false, stale: 15_000, update: 5_000})
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !remade) {
          // The lock directory went away since it was made (the store was cleaned): make it again, once.
          remade = true
          await (this.dirMade = fs.mkdir(this.dir, {recursive: true, mode: 0o700}))
          continue
        }
        if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e
        if (Date.now() > deadline)
          throw environmentError(
            `the store lock ${target}.lock is held by another belt process (waited ${Math.round(timeoutMs / 1000)} s)`,
            'E_STORE_LOCKED',
            'wait for the other belt command to finish; if none is running, the lock is taken over after 15 s',
          )
        await new Promise((r) => setTimeout(r, 15 + Math.random() * 35))
      }
    }
    try {
      return await fn()
    } finally {
      await release().catch(() => undefined)
    }
  }
}
