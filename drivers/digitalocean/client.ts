/**
 * A thin typed client for DigitalOcean API v2 over node:https (./transport.ts says why not fetch).
 * Everything about talking to the API lives here, once: the bearer token, a timeout on every
 * request, pacing and 429 handling (through {@link RateGate}), retries of transient failures where
 * a retry cannot do anything twice, pagination, and counters for the rehearsal.
 *
 * Why not a wrapper package: do-wrapper is unmaintained and hard-codes the URL; dots-wrapper takes an
 * endpoint but hides the response headers this client paces on, and retries nothing.
 *
 * What is retried:
 *  - 429: always (the API refused the request before doing anything), after the wait the server
 *    names (Retry-After, else ratelimit-reset), with jitter, pausing every request of the token.
 *  - network errors, timeouts and 500/502/503/504: only when the call is `retrySafe` (GET, DELETE,
 *    and actions whose effect is a target state). A POST that creates something may have been done
 *    before the failure; the caller reconciles instead (lists by name/tag, then creates what is
 *    missing): see {@link DoApiError.ambiguous}.
 * The token is never put in an error, a log line or the stats.
 */
import {createHash} from 'node:crypto'
import {MAX_PER_PAGE, type DoError, type DoPage} from './types.js'
import {RateGate, realSleep, type Sleep, type WaitReason} from './rate-gate.js'
import {nodeFetch, type HttpAnswer, type HttpFetch} from './transport.js'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface DoRequest {
  method: HttpMethod
  /** Path below the API root, e.g. `/v2/droplets/123`. */
  path: string
  query?: Readonly<Record<string, string | number | undefined>>
  body?: unknown
  /** May the request be sent again after a network error, timeout or 5xx? Default: GET and DELETE. */
  retrySafe?: boolean
  /** Stops waits for the rate gate and for backoff; also cuts off the request in flight unless `letFinish`. */
  signal?: AbortSignal
  /**
   * Once sent, the request is not cut off by `signal`: it may create a resource whose id must be
   * recorded (the operator's first Ctrl-C lets in-flight creates return). Waits before sending
   * still stop at once, which is safe: nothing was sent, or a 429 said nothing was made.
   */
  letFinish?: boolean
}

export interface DoResponse<T> {
  status: number
  body: T
}

/** A response the API answered with an error status, or a request that got no answer. */
export class DoApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when no response arrived (network error, timeout). */
    readonly status: number,
    /** The API's error id (`not_found`, `unprocessable_entity`, ...), or `network`/`timeout`. */
    readonly apiId: string,
    readonly requestId?: string,
    /** True when the request may or may not have been carried out (no answer, or 5xx to a POST). */
    readonly ambiguous = false,
    options?: {cause?: unknown},
  ) {
    super(message, options)
    this.name = 'DoApiError'
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof DoApiError && e.status === 404

export interface DoClientStats {
  /** Requests sent, by `METHOD /path-template` (ids replaced by `{id}`), retries included. */
  requests: Record<string, number>
  /** Responses by HTTP status (0: no response). */
  statuses: Record<string, number>
  /** 429 answers received. */
  rateLimited: number
  /** Requests sent again after a transient failure (network, timeout, 5xx). */
  transientRetries: number
  /** Milliseconds requests were held back by the rate limit (pacing and 429 pauses), counted once. */
  rateLimitWaitMs: number
  /** Milliseconds spent in backoff before transient retries (summed over requests). */
  backoffWaitMs: number
}

export interface DoClientOptions {
  apiUrl: string
  token: string
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number
  /** Client-side burst pacing (default the API's 250 per minute). */
  perMinute?: number
  /** Attempts after a 429 before giving up (default 8). */
  maxRateLimitRetries?: number
  /** Attempts after a transient failure of a retry-safe request (default 4). */
  maxTransientRetries?: number
  fetch?: HttpFetch
  now?: () => number
  sleep?: Sleep
  /** Uniform [0,1): jitter source (tests pass a constant). */
  random?: () => number
  userAgent?: string
}

const TRANSIENT = new Set([500, 502, 503, 504])

/** `/v2/droplets/123/actions/9` -> `/v2/droplets/{id}/actions/{id}` (fingerprints too). */
export function pathTemplate(path: string): string {
  const segs = path.split('/')
  return segs
    .map((seg, i) =>
      /^\d+$/.test(seg) || /^[0-9a-f]{2}(:[0-9a-f]{2}){15}$/i.test(seg) || /^[0-9a-f-]{36}$/i.test(seg) || (i > 0 && segs[i - 1] === 'tags' && segs[i - 2] === 'v2')
        ? '{id}'
        : seg,
    )
    .join('/')
}

export class DoClient {
  readonly stats: DoClientStats = {requests: {}, statuses: {}, rateLimited: 0, transientRetries: 0, rateLimitWaitMs: 0, backoffWaitMs: 0}
  readonly gate: RateGate
  private readonly base: URL
  private readonly fetchFn: HttpFetch
  private readonly now: () => number
  private readonly sleep: Sleep
  private readonly random: () => number

  constructor(private readonly opts: DoClientOptions) {
    this.base = new URL(opts.apiUrl.endsWith('/') ? opts.apiUrl : opts.apiUrl + '/')
    this.fetchFn = opts.fetch ?? nodeFetch
    this.now = opts.now ?? Date.now
    this.sleep = opts.sleep ?? realSleep
    this.random = opts.random ?? Math.random
    this.gate = new RateGate({perMinute: opts.perMinute ?? 250, now: this.now, sleep: this.sleep, onWait: (ms, why) => this.announceWait(ms, why)})
  }

  /**
   * Where long waits are told (the latest command's progress lines; the client is shared by every
   * host of a token). A wait of minutes for the hourly budget is never silent.
   */
  announce?: (message: string) => void
  private lastAnnounced = new Map<WaitReason, number>()

  /**
   * Says why requests stop for a while: the hourly budget or a 429's pause from 5 s on, the
   * per-minute window from 15 s on; each reason at most once a minute (a batch waits often).
   */
  private announceWait(ms: number, why: WaitReason): void {
    if (!this.announce || ms < (why === 'hourly' || why === 'paused' ? 5000 : 15_000)) return
    const t = this.now()
    if (t - (this.lastAnnounced.get(why) ?? -Infinity) < 60_000) return
    this.lastAnnounced.set(why, t)
    const wait = ms < 90_000 ? `${Math.ceil(ms / 1000)} s` : `${Math.ceil(ms / 60_000)} min`
    const until = `${new Date(t + ms).toISOString().slice(11, 19)} UTC`
    const resume = 'Ctrl-C stops safely and the same command resumes'
    if (why === 'hourly') this.announce(`DigitalOcean API: this token's hourly request budget is spent; requests wait ${wait}, until ${until} (${resume})`)
    else if (why === 'paused') this.announce(`DigitalOcean API: rate limited (429); every request of this token waits ${wait}, until ${until}`)
    else this.announce(`DigitalOcean API: ${this.perMinute} requests sent in the last minute; the next waits ${wait}`)
  }

  /** Requests per minute this client sends at most (the gate's pace). */
  get perMinute(): number {
    return this.opts.perMinute ?? 250
  }

  /** The API's origin, for messages (never the token). */
  get origin(): string {
    return this.base.origin
  }

  /** Sends one request with pacing, 429 handling and safe retries. Rejects with {@link DoApiError}. */
  async request<T>(req: DoRequest): Promise<DoResponse<T>> {
    const retrySafe = req.retrySafe ?? (req.method === 'GET' || req.method === 'DELETE')
    const kind = `${req.method} ${pathTemplate(req.path)}`
    let limited = 0
    let transient = 0
    for (;;) {
      const answered = await this.gate.acquire(req.signal)
      // The gate lets one request through at a time, so its total is wall time held back, counted once.
      this.stats.rateLimitWaitMs = this.gate.stats.waitedMs
      this.stats.requests[kind] = (this.stats.requests[kind] ?? 0) + 1
      let res: HttpAnswer
      try {
        res = await this.send(req)
        answered()
      } catch (cause) {
        answered()
        this.count(0)
        if (!req.letFinish) req.signal?.throwIfAborted()
        const timeout = cause instanceof DOMException && cause.name === 'TimeoutError'
        const what = timeout ? `no answer within ${Math.round((this.opts.timeoutMs ?? 30_000) / 1000)} s` : `network error (${(cause as Error).message})`
        if (retrySafe && transient < (this.opts.maxTransientRetries ?? 4)) {
          await this.backoff(transient++, req.signal)
          continue
        }
        throw new DoApiError(`${req.method} ${req.path}: ${what}`, 0, timeout ? 'timeout' : 'network', undefined, req.method !== 'GET', {cause})
      }
      this.count(res.status)
      // A burst-limit 429 reports remaining 0 with a far reset but a short Retry-After: the hourly
      // figures of such an answer would stall the gate for up to an hour, so only Retry-After counts.
      if (!(res.status === 429 && res.headers.get('retry-after') !== null)) this.gate.observe(res.headers)
      if (res.status === 429) {
        this.stats.rateLimited++
        if (limited++ >= (this.opts.maxRateLimitRetries ?? 8)) throw await this.apiError(req, res, false)
        await res.body?.cancel().catch(() => undefined)
        this.gate.pauseUntil(this.retryAt(res.headers, limited))
        continue
      }
      if (TRANSIENT.has(res.status)) {
        if (retrySafe && transient < (this.opts.maxTransientRetries ?? 4)) {
          await res.body?.cancel().catch(() => undefined)
          await this.backoff(transient++, req.signal)
          continue
        }
        throw await this.apiError(req, res, req.method !== 'GET')
      }
      if (res.status >= 400) throw await this.apiError(req, res, false)
      const text = res.status === 204 ? '' : await res.text()
      return {status: res.status, body: (text ? JSON.parse(text) : undefined) as T}
    }
  }

  get<T>(path: string, query?: DoRequest['query'], signal?: AbortSignal): Promise<T> {
    return this.request<T>({method: 'GET', path, query, signal}).then((r) => r.body)
  }

  /**
   * Every item of a paginated list: `per_page=200`; when the first page is full and names a
   * `meta.total`, the other pages (`page=2..`) at once, else `links.pages.next` until there is none.
   * Only the query of `next` is used, on this client's own base URL: a link never sends the token
   * to another host. Bounded by `meta.total`, so a server that keeps answering `next` cannot loop.
   */
  async listAll<T>(path: string, key: string, query: Readonly<Record<string, string | number | undefined>> = {}, signal?: AbortSignal): Promise<T[]> {
    // The first page says how many there are: the other pages are asked for at once (each is one
    // request of the budget all the same), so 1,000 droplets take two round trips, not five.
    const first = await this.get<DoPage & Record<string, unknown>>(path, {...query, per_page: MAX_PER_PAGE, page: 1}, signal)
    const firstItems = (first[key] as T[] | undefined) ?? []
    const total = first.meta?.total
    if (typeof total === 'number' && firstItems.length === MAX_PER_PAGE && total > MAX_PER_PAGE && first.links?.pages?.next) {
      const pages = Math.ceil(total / MAX_PER_PAGE)
      const rest = await Promise.all(
        Array.from({length: pages - 1}, (_, i) => this.get<DoPage & Record<string, unknown>>(path, {...query, per_page: MAX_PER_PAGE, page: i + 2}, signal)),
      )
      const items = [...firstItems, ...rest.flatMap((b) => (b[key] as T[] | undefined) ?? [])]
      // Items may have moved between pages while they were read (creates, deletes): an id seen twice
      // is kept once; one that moved across a page boundary may be missed, as with sequential pages.
      const seen = new Set<unknown>()
      return items.filter((x) => {
        const id = (x as {id?: unknown}).id
        if (id === undefined) return true
        if (seen.has(id)) return false
        seen.add(id)
        return true
      })
    }
    return this.listSequential<T>(path, key, query, first, signal)
  }

  /** The items of `first` and the pages after it, page after page by `links.pages.next`. */
  private async listSequential<T>(path: string, key: string, query: Readonly<Record<string, string | number | undefined>>, first: DoPage & Record<string, unknown>, signal?: AbortSignal): Promise<T[]> {
    const items: T[] = []
    let q: Record<string, string | number | undefined> = {...query, per_page: MAX_PER_PAGE, page: 1}
    for (let pages = 0; ; pages++) {
      const body = pages === 0 ? first : await this.get<DoPage & Record<string, unknown>>(path, q, signal)
      const batch = (body[key] as T[] | undefined) ?? []
      items.push(...batch)
      const next = body.links?.pages?.next
      const total = body.meta?.total ?? items.length
      if (!next || batch.length === 0 || items.length >= total || pages > total / MAX_PER_PAGE + 2) break
      const nextQuery = Object.fromEntries(new URL(next, this.base).searchParams)
      q = {...query, per_page: MAX_PER_PAGE, ...nextQuery}
    }
    return items
  }

  private async send(req: DoRequest): Promise<HttpAnswer> {
    const url = new URL(req.path.replace(/^\//, ''), this.base)
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 30_000)
    const signal = req.signal && !req.letFinish ? AbortSignal.any([timeout, req.signal]) : timeout
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.opts.token}`,
      accept: 'application/json',
      'user-agent': this.opts.userAgent ?? 'belt (+https://github.com/belt-cli/belt)',
    }
    let body: string | undefined
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(req.body)
    }
    return this.fetchFn(url, {method: req.method, headers, body, signal})
  }

  private count(status: number): void {
    this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1
  }

  /** When to try again after the `attempt`-th 429: Retry-After, else ratelimit-reset, else backoff; plus jitter. */
  retryAt(headers: {get(name: string): string | null}, attempt: number): number {
    const now = this.now()
    const jitter = Math.floor(this.random() * 1000)
    const retryAfter = Number(headers.get('retry-after'))
    if (headers.get('retry-after') !== null && Number.isFinite(retryAfter) && retryAfter >= 0) return now + retryAfter * 1000 + jitter
    const reset = Number.parseInt(headers.get('ratelimit-reset') ?? '', 10)
    if (Number.isFinite(reset) && reset * 1000 > now) return reset * 1000 + jitter
    return now + Math.min(60_000, 1000 * 2 ** (attempt - 1)) + jitter
  }

  /** Full-jitter exponential backoff before the (n+1)-th transient retry: up to 0.5 s, 1 s, 2 s, 4 s ... */
  private async backoff(n: number, signal?: AbortSignal): Promise<void> {
    this.stats.transientRetries++
    const ms = Math.round(this.random() * Math.min(30_000, 500 * 2 ** n))
    this.stats.backoffWaitMs += ms
    await this.sleep(ms, signal)
  }

  private async apiError(req: DoRequest, res: HttpAnswer, ambiguous: boolean): Promise<DoApiError> {
    let body: Partial<DoError> = {}
    try {
      body = (await res.json()) as DoError
    } catch {
      // a body that is not JSON: keep the status
    }
    const id = typeof body.id === 'string' ? body.id : `http_${res.status}`
    const msg = typeof body.message === 'string' ? body.message : res.statusText
    return new DoApiError(`DigitalOcean API ${req.method} ${pathTemplate(req.path)}: ${res.status} ${msg}`, res.status, id, body.request_id, ambiguous)
  }
}

/**
 * One client per API URL and token in this process, so every driver object, host and batch of one
 * token shares one rate budget and one set of counters. Keyed by a hash: the map holds no token text
 * as a key (the client itself holds it to send it).
 */
const clients = new Map<string, DoClient>()

export function sharedClient(opts: DoClientOptions): DoClient {
  const key = createHash('sha256').update(`${opts.apiUrl}\0${opts.token}`).digest('hex')
  let c = clients.get(key)
  if (!c) {
    c = new DoClient(opts)
    clients.set(key, c)
  }
  return c
}

/** Every shared client's counters, for the rehearsal (no token in them). */
export function sharedClientStats(): DoClientStats[] {
  return [...clients.values()].map((c) => c.stats)
}
