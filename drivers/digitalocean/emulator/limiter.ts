/**
 * The API's rate limit as documented: each request counts for one hour (5,000 per hour by default)
 * and for one minute (250 per minute, the burst limit). `ratelimit-reset` is the epoch second at
 * which the oldest request of the hour expires.
 */

export interface RateLimit {
  perHour: number
  perMinute: number
}

export const REAL_RATE_LIMIT: RateLimit = {perHour: 5000, perMinute: 250}

/**
 * Parses `5000/h,250/min` (either part may be given alone: the other follows the API's ratio,
 * burst = 5% of the hourly limit). Units: s, min/m, h. Returns an error message on bad input.
 */
export function parseRateLimit(text: string): RateLimit | string {
  let perHour: number | undefined
  let perMinute: number | undefined
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)\s*\/\s*(s|sec|m|min|h|hour)$/i.exec(part)
    if (!m) return `'${part}' is not N/h, N/min or N/s`
    const n = Number(m[1])
    const unit = m[2]!.toLowerCase()
    if (n < 1) return `'${part}': the limit must be at least 1`
    if (unit === 'h' || unit === 'hour') perHour = n
    else if (unit === 's' || unit === 'sec') perMinute = n * 60
    else perMinute = n
  }
  if (perHour === undefined && perMinute === undefined) return 'no limit given'
  perHour ??= perMinute! * 20
  perMinute ??= Math.max(1, Math.round(perHour * 0.05))
  return {perHour, perMinute}
}

export interface LimitVerdict {
  ok: boolean
  /** Figures for the ratelimit-* headers. */
  limit: number
  remaining: number
  reset: number
  /** Seconds to wait (burst limit only: the `retry-after` header). */
  retryAfter?: number
}

/** Sliding windows per token. Requests refused with 429 are not counted. */
export class SlidingWindowLimiter {
  private readonly hour = new Map<string, number[]>()
  private readonly minute = new Map<string, number[]>()

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {}

  private window(map: Map<string, number[]>, key: string, span: number, t: number): number[] {
    let w = map.get(key)
    if (!w) map.set(key, (w = []))
    let drop = 0
    while (drop < w.length && w[drop]! <= t - span) drop++
    if (drop > 0) w.splice(0, drop)
    return w
  }

  /** Counts a request of `key` if it is within the limits. */
  take(key: string): LimitVerdict {
    const t = this.now()
    const h = this.window(this.hour, key, 3_600_000, t)
    const m = this.window(this.minute, key, 60_000, t)
    const reset = (w: number[]) => Math.ceil(((w[0] ?? t) + (w.length > 0 ? 3_600_000 : 0)) / 1000)
    if (h.length >= this.limit.perHour) return {ok: false, limit: this.limit.perHour, remaining: 0, reset: reset(h)}
    if (m.length >= this.limit.perMinute)
      return {ok: false, limit: this.limit.perHour, remaining: 0, reset: reset(h), retryAfter: Math.max(1, Math.ceil((m[0]! + 60_000 - t) / 1000))}
    h.push(t)
    m.push(t)
    return {ok: true, limit: this.limit.perHour, remaining: this.limit.perHour - h.length, reset: reset(h)}
  }

  /** Current figures without counting (for 401 answers). */
  peek(key: string): LimitVerdict {
    const t = this.now()
    const h = this.window(this.hour, key, 3_600_000, t)
    return {ok: true, limit: this.limit.perHour, remaining: Math.max(0, this.limit.perHour - h.length), reset: Math.ceil(((h[0] ?? t) + (h.length > 0 ? 3_600_000 : 0)) / 1000)}
  }
}

/** A small fixed-window counter for endpoints with their own limit (10 key listings per 60 s). */
export class EndpointLimiter {
  private readonly hits = new Map<string, number[]>()
  constructor(
    private readonly max: number,
    private readonly spanMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait, or 0 when the request may go (and is counted). */
  take(key: string): number {
    const t = this.now()
    const w = (this.hits.get(key) ?? []).filter((x) => x > t - this.spanMs)
    this.hits.set(key, w)
    if (w.length >= this.max) return Math.max(1, Math.ceil((w[0]! + this.spanMs - t) / 1000))
    w.push(t)
    return 0
  }
}
