/**
 * Client-side pacing for one DigitalOcean token. The API limits a token to 5,000 requests per hour
 * (a sliding window: each request counts for one hour) and 250 per minute (burst); the headers
 * report the hourly budget only (`ratelimit-remaining`, and `ratelimit-reset`, the epoch second at
 * which the oldest counted request expires). So the gate:
 *  - keeps its own sliding window of the requests it sent, at most `perMinute` per 60 s, so a batch
 *    never trips the burst limit by itself. A request is dated when its answer arrives (the server
 *    counted it at some moment between send and answer, so the answer's time is never earlier), and
 *    counts as current while in flight: a slow answer can make the gate wait longer than needed,
 *    never shorter;
 *  - holds requests back while the hourly `remaining` it last saw, minus what it sent since, is at
 *    or below `reserve`, until `reset` (then lets one through to learn the new figures);
 *  - after a 429, pauses every request until the time the server named (Retry-After or reset).
 * Requests pass one at a time, in arrival order, so the time spent waiting is counted once.
 */

/** Sleeps `ms`; rejects with the signal's reason when it is aborted. */
import {sleep as realSleep, type Sleep} from '../sleep.js'

export {realSleep, type Sleep}


export interface RateGateOptions {
  /** Requests this client sends per minute at most (the API's burst limit is 250). */
  perMinute: number
  /** Hourly requests kept in reserve (for other processes, retries and clean-up). */
  reserve?: number
  /** Added to every computed wait: the server's clock and latency are not ours. */
  marginMs?: number
  /** Longest single wait the gate accepts before failing the request (the hourly window is 1 h). */
  maxWaitMs?: number
  now?: () => number
  sleep?: Sleep
  /** Told of every wait before it starts: how long, and why. */
  onWait?: (ms: number, reason: WaitReason) => void
}

/** Why a request waits: a 429's pause, the per-minute window, answers still in flight, the hourly budget. */
export type WaitReason = 'paused' | 'burst' | 'inflight' | 'hourly'

export interface RateGateStats {
  /** Milliseconds requests were held back (pacing, low budget, 429 pauses); counted once, not per request. */
  waitedMs: number
  /** How many times the gate held requests back. */
  waits: number
}

export class RateGate {
  readonly stats: RateGateStats = {waitedMs: 0, waits: 0}
  /** Answer times of finished requests within the last minute, ascending. */
  private readonly done: number[] = []
  private inFlight = 0
  private tail: Promise<unknown> = Promise.resolve()
  private pausedUntil = 0
  /** Hourly figures from the last response that carried them. */
  private remaining: number | undefined
  private resetAt = 0
  private sentSinceObserved = 0
  private readonly now: () => number
  private readonly sleep: Sleep
  private readonly reserve: number
  private readonly marginMs: number
  private readonly maxWaitMs: number

  constructor(private readonly opts: RateGateOptions) {
    if (!(opts.perMinute >= 1)) throw new RangeError(`perMinute must be >= 1, got ${opts.perMinute}`)
    this.now = opts.now ?? Date.now
    this.sleep = opts.sleep ?? realSleep
    this.reserve = opts.reserve ?? 10
    this.marginMs = opts.marginMs ?? 250
    this.maxWaitMs = opts.maxWaitMs ?? 3_700_000
  }

  /**
   * Resolves when one request may be sent now, with the function to call once its answer (or
   * failure) arrived. Until then the request counts as sent this instant.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const turn = this.tail.then(() => this.waitTurn(signal))
    // A failed turn (abort) must not block the ones queued behind it.
    this.tail = turn.catch(() => undefined)
    return turn
  }

  /** How long the next request would wait now, and why (for tests and logs). */
  nextWait(): {ms: number; reason: 'none' | WaitReason} {
    const t = this.now()
    let expired = 0
    while (expired < this.done.length && this.done[expired]! <= t - 60_000) expired++
    if (expired > 0) this.done.splice(0, expired)
    let ms = 0
    let reason: 'none' | WaitReason = 'none'
    const wait = (w: number, why: typeof reason) => {
      if (w > ms) {
        ms = w
        reason = why
      }
    }
    if (this.pausedUntil > t) wait(this.pausedUntil - t, 'paused')
    const over = this.done.length + this.inFlight - this.opts.perMinute
    if (over >= 0) {
      // The window must lose `over + 1` requests; in-flight ones only leave after their answer.
      if (over < this.done.length) wait(this.done[over]! + 60_000 + this.marginMs - t, 'burst')
      else wait(100, 'inflight')
    }
    if (this.remaining !== undefined && this.remaining - this.sentSinceObserved <= this.reserve) wait(this.resetAt + this.marginMs - t, 'hourly')
    return {ms: Math.max(0, Math.ceil(ms)), reason}
  }

  private async waitTurn(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted()
      const {ms, reason} = this.nextWait()
      if (ms <= 0) break
      if (ms > this.maxWaitMs) throw new Error(`DigitalOcean rate limit: the next request could only go in ${Math.round(ms / 1000)} s (${reason})`)
      this.stats.waits++
      this.opts.onWait?.(ms, reason as WaitReason)
      await this.sleep(ms, signal)
      this.stats.waitedMs += ms
      if (reason === 'hourly') {
        // The oldest request expired: one slot is free. Send one request; its headers tell the rest.
        this.remaining = this.reserve + 1
        this.sentSinceObserved = 0
      }
    }
    this.inFlight++
    this.sentSinceObserved++
    let released = false
    return () => {
      if (released) return
      released = true
      this.inFlight--
      const t = this.now()
      let i = this.done.length
      while (i > 0 && this.done[i - 1]! > t) i--
      this.done.splice(i, 0, t)
    }
  }

  /** Reads `ratelimit-remaining` / `ratelimit-reset` from a response. */
  observe(headers: {get(name: string): string | null}): void {
    const remaining = Number.parseInt(headers.get('ratelimit-remaining') ?? '', 10)
    const reset = Number.parseInt(headers.get('ratelimit-reset') ?? '', 10)
    if (Number.isFinite(remaining)) {
      this.remaining = remaining
      this.sentSinceObserved = 0
    }
    if (Number.isFinite(reset)) this.resetAt = reset * 1000
  }

  /** After a 429: nobody sends before `untilMs` (epoch ms). */
  pauseUntil(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs)
  }
}
