import type {Instance} from '@aws-sdk/client-ec2'
import {isThrottling} from './client.js'
import type {Ec2Calls} from './calls.js'

/**
 * What a waiter makes of an instance (undefined when DescribeInstances does not list it, which
 * happens right after RunInstances as well as after it was purged): a value ends the wait, an
 * Error fails it, undefined keeps waiting.
 */
export type Decide<T> = (instance: Instance | undefined) => T | Error | undefined

interface Waiter {
  id: string
  decide: Decide<unknown>
  deadline: number
  timeoutMs: number
  nextAt: number
  interval: number
  what: string
  resolve(v: unknown): void
  reject(e: unknown): void
}

/** Instance ids per DescribeInstances filter (EC2 accepts up to 200 filter values). */
const IDS_PER_CALL = 100

/**
 * Waits on instance states for every concurrent caller of one client with as few DescribeInstances
 * calls as possible: each poll describes all the ids that are due (100 per call, by the
 * `instance-id` filter, which unlike InstanceIds does not fail for ids EC2 does not list yet).
 * Every waiter backs off on its own (x1.5 per poll) and is bounded by its deadline.
 */
export class InstanceWatcher {
  private readonly waiters = new Set<Waiter>()
  private timer: NodeJS.Timeout | undefined
  private polling = false

  constructor(private readonly calls: Ec2Calls) {}

  /** Resolves with `decide`'s first value for instance `id`; rejects on its Error, at `timeoutMs`, or on abort. */
  wait<T>(id: string, decide: Decide<T>, timeoutMs: number, what: string, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'))
      const {pollMinMs} = this.calls.timing
      const w: Waiter = {
        id,
        decide,
        what,
        deadline: Date.now() + timeoutMs,
        timeoutMs,
        nextAt: Date.now() + Math.min(pollMinMs, 250),
        interval: pollMinMs,
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(v as T)
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      const onAbort = () => {
        this.waiters.delete(w)
        reject(signal!.reason ?? new Error('aborted'))
      }
      signal?.addEventListener('abort', onAbort, {once: true})
      this.waiters.add(w)
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.polling || this.waiters.size === 0) return
    const next = Math.min(...[...this.waiters].map((w) => w.nextAt))
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.poll(), Math.max(0, next - Date.now()))
  }

  private async poll(): Promise<void> {
    this.timer = undefined
    this.polling = true
    try {
      // Waiters due within the next 200 ms ride along: one call instead of several a moment apart.
      const now = Date.now()
      const due = [...this.waiters].filter((w) => w.nextAt <= now + 200)
      const ids = [...new Set(due.map((w) => w.id))]
      for (let i = 0; i < ids.length; i += IDS_PER_CALL) {
        const chunk = ids.slice(i, i + IDS_PER_CALL)
        const chunkWaiters = due.filter((w) => chunk.includes(w.id))
        let found: Map<string, Instance>
        try {
          found = await this.describe(chunk)
        } catch (e) {
          for (const w of chunkWaiters) this.afterPoll(w, e)
          continue
        }
        for (const w of chunkWaiters) {
          let outcome: unknown
          try {
            outcome = w.decide(found.get(w.id))
          } catch (e) {
            outcome = e instanceof Error ? e : new Error(String(e))
          }
          if (outcome instanceof Error) {
            this.waiters.delete(w)
            w.reject(outcome)
          } else if (outcome !== undefined) {
            this.waiters.delete(w)
            w.resolve(outcome)
          } else this.afterPoll(w)
        }
      }
    } finally {
      this.polling = false
      this.schedule()
    }
  }

  /** Keeps waiting with a longer interval, or fails the waiter at its deadline or on a non-retryable error. */
  private afterPoll(w: Waiter, error?: unknown): void {
    const fault = (error as {$fault?: string} | undefined)?.$fault
    if (error !== undefined && fault === 'client' && !isThrottling(error)) {
      this.waiters.delete(w)
      w.reject(error)
      return
    }
    if (Date.now() >= w.deadline) {
      this.waiters.delete(w)
      const cause = error instanceof Error ? `; last error: ${error.message}` : ''
      w.reject(new Error(`${w.id} did not become ${w.what} within ${Math.round(w.timeoutMs / 1000)} s${cause}`, {cause: error}))
      return
    }
    w.interval = Math.min(this.calls.timing.pollMaxMs, Math.round(w.interval * 1.5))
    w.nextAt = Math.min(w.deadline, Date.now() + w.interval)
  }

  private async describe(ids: readonly string[]): Promise<Map<string, Instance>> {
    const found = new Map<string, Instance>()
    for (const i of await this.calls.describeInstances([{Name: 'instance-id', Values: [...ids]}])) if (i.InstanceId) found.set(i.InstanceId, i)
    return found
  }
}
