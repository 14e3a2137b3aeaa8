/**
 * The DigitalOcean client's pacing, 429 handling, retries and pagination, against a scripted fetch
 * that fails on any call it was not told to expect, with a fake clock: sleeps advance the clock and
 * are recorded, so decisions are asserted exactly and no test waits on a timer.
 */
import {describe, expect, it} from 'vitest'
import {DoApiError, DoClient, pathTemplate} from '../../drivers/digitalocean/client.js'
import {RateGate} from '../../drivers/digitalocean/rate-gate.js'

const T0 = 1_700_000_000_000
const TOKEN = 'dop_v1_secret_token_value'

class Clock {
  t = T0
  sleeps: number[] = []
  now = () => this.t
  sleep = async (ms: number) => {
    this.sleeps.push(ms)
    this.t += ms
  }
}

interface Step {
  method: string
  /** Path plus query, as sent (e.g. `/v2/droplets?per_page=200&page=1`). */
  url: string
  status?: number
  body?: unknown
  headers?: Record<string, string>
  /** Throw this instead of answering. */
  error?: Error
}

/** A fetch that answers `steps` in order and fails the test on anything else. */
function scripted(steps: Step[]) {
  const seen: {method: string; url: string; auth: string | null; body?: string}[] = []
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input))
    const method = init?.method ?? 'GET'
    const headers = new Headers(init?.headers)
    seen.push({method, url: url.toString(), auth: headers.get('authorization'), body: init?.body as string | undefined})
    const step = steps.shift()
    const got = `${method} ${url.pathname}${url.search}`
    if (!step) throw new Error(`unexpected call ${got}`)
    if (`${step.method} ${step.url}` !== got) throw new Error(`expected ${step.method} ${step.url}, got ${got}`)
    if (step.error) throw step.error
    const status = step.status ?? 200
    return new Response(status === 204 ? null : JSON.stringify(step.body ?? {}), {status, headers: {'content-type': 'application/json', ...step.headers}})
  }) as typeof globalThis.fetch
  return {fetch, seen, left: () => steps.length}
}

function client(steps: Step[], opts: Partial<ConstructorParameters<typeof DoClient>[0]> = {}) {
  const clock = new Clock()
  const s = scripted(steps)
  const c = new DoClient({apiUrl: 'https://api.example.test', token: TOKEN, fetch: s.fetch, now: clock.now, sleep: clock.sleep, random: () => 0.5, ...opts})
  return {c, clock, s}
}

const hdr = (remaining: number, reset: number, extra: Record<string, string> = {}) => ({
  'ratelimit-limit': '5000',
  'ratelimit-remaining': String(remaining),
  'ratelimit-reset': String(reset),
  ...extra,
})
const tooMany = {id: 'too_many_requests', message: 'API Rate limit exceeded.'}

describe('RateGate', () => {
  it('lets perMinute requests through, then holds the next until the oldest leaves the 60 s window', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 3, marginMs: 250, now: clock.now, sleep: clock.sleep})
    ;(await gate.acquire())()
    clock.t += 1000
    ;(await gate.acquire())()
    ;(await gate.acquire())()
    expect(clock.sleeps).toEqual([])
    ;(await gate.acquire())()
    expect(clock.sleeps).toEqual([60_000 + 250 - 1000])
    expect(gate.stats).toEqual({waitedMs: 59_250, waits: 1})
  })

  it('dates a request by its answer: a slow answer moves its expiry later; in-flight requests count', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 2, marginMs: 0, now: clock.now, sleep: clock.sleep})
    const slow = await gate.acquire() // sent at T0, answered at T0 + 3 s
    ;(await gate.acquire())() // sent and answered at T0
    clock.t += 3000
    slow()
    // The window holds T0 and T0+3s: the next request waits for the T0 one to expire.
    ;(await gate.acquire())()
    expect(clock.sleeps).toEqual([57_000])
    // Now T0+3s and T0+60s are in the window: the next waits until T0+63s, not T0+60s.
    ;(await gate.acquire())()
    expect(clock.sleeps).toEqual([57_000, 3000])
  })

  it('while the window is full of requests still in flight, waits for answers', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 1, marginMs: 0, now: clock.now, sleep: clock.sleep})
    const first = await gate.acquire()
    expect(gate.nextWait()).toEqual({ms: 100, reason: 'inflight'})
    first()
    expect(gate.nextWait()).toEqual({ms: 60_000, reason: 'burst'})
  })

  it('queues concurrent callers in order and counts the wait once', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 1, marginMs: 0, now: clock.now, sleep: clock.sleep})
    const order: number[] = []
    await Promise.all(
      [1, 2, 3].map((i) =>
        gate.acquire().then((answered) => {
          order.push(i)
          answered()
        }),
      ),
    )
    expect(order).toEqual([1, 2, 3])
    expect(clock.sleeps).toEqual([60_000, 60_000])
    expect(gate.stats.waitedMs).toBe(120_000)
  })

  it('holds requests when the hourly budget is down to the reserve, until ratelimit-reset, then sends one to learn more', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 250, reserve: 10, marginMs: 250, now: clock.now, sleep: clock.sleep})
    gate.observe(new Headers(hdr(12, T0 / 1000 + 30)))
    ;(await gate.acquire())() // 11 left
    ;(await gate.acquire())() // 10 left: at the reserve
    expect(clock.sleeps).toEqual([])
    ;(await gate.acquire())()
    expect(clock.sleeps).toEqual([30_250])
    expect(gate.nextWait().reason).toBe('none')
  })

  it('a pause after a 429 holds every request until its time', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 250, now: clock.now, sleep: clock.sleep})
    gate.pauseUntil(T0 + 5000)
    await gate.acquire()
    expect(clock.sleeps).toEqual([5000])
  })

  it('refuses a wait longer than maxWaitMs instead of hanging', async () => {
    const clock = new Clock()
    const gate = new RateGate({perMinute: 250, maxWaitMs: 1000, now: clock.now, sleep: clock.sleep})
    gate.pauseUntil(T0 + 5000)
    await expect(gate.acquire()).rejects.toThrow(/only go in 5 s/)
    expect(clock.sleeps).toEqual([])
  })
})

describe('DoClient', () => {
  it('sends the bearer token, JSON and a per-request timeout signal; counts requests by kind', async () => {
    const {c, s} = client([{method: 'GET', url: '/v2/droplets/42', body: {droplet: {id: 42}}, headers: hdr(4999, T0 / 1000 + 3600)}])
    expect(await c.get('/v2/droplets/42')).toEqual({droplet: {id: 42}})
    expect(s.seen[0]!.auth).toBe(`Bearer ${TOKEN}`)
    expect(c.stats.requests).toEqual({'GET /v2/droplets/{id}': 1})
    expect(s.left()).toBe(0)
  })

  it('on 429 waits Retry-After plus jitter, pausing the whole token, then retries (even a POST)', async () => {
    const {c, clock} = client([
      {method: 'POST', url: '/v2/droplets', status: 429, body: tooMany, headers: hdr(0, T0 / 1000 + 3000, {'retry-after': '2'})},
      {method: 'POST', url: '/v2/droplets', status: 202, body: {droplet: {id: 1}}, headers: hdr(4998, T0 / 1000 + 3600)},
    ])
    const r = await c.request({method: 'POST', path: '/v2/droplets', body: {name: 'a'}})
    expect(r.status).toBe(202)
    // 2 s from Retry-After + 500 ms jitter (random 0.5 of 1 s); the far ratelimit-reset of a burst 429 is ignored.
    expect(clock.sleeps).toEqual([2500])
    expect(c.stats.rateLimited).toBe(1)
    expect(c.stats.rateLimitWaitMs).toBe(2500)
    expect(c.stats.requests['POST /v2/droplets']).toBe(2)
  })

  it('tells a long wait for the hourly budget once, with how long and until when', async () => {
    const reset = T0 / 1000 + 1800
    const {c, clock} = client([
      {method: 'GET', url: '/v2/account', body: {account: {}}, headers: hdr(11, reset)},
      {method: 'GET', url: '/v2/account', body: {account: {}}, headers: hdr(10, reset)},
      {method: 'GET', url: '/v2/account', body: {account: {}}, headers: hdr(4999, reset + 3600)},
    ])
    const told: string[] = []
    c.announce = (m) => told.push(m)
    for (let i = 0; i < 3; i++) await c.get('/v2/account')
    expect(clock.sleeps).toEqual([1_800_250])
    // T0 is 22:13:20 UTC; the wait ends 1,800.25 s later.
    expect(told).toEqual([
      "DigitalOcean API: this token's hourly request budget is spent; requests wait 31 min, until 22:43:20 UTC (Ctrl-C stops safely and the same command resumes)",
    ])
  })

  it("tells a 429's pause from 5 s on, and the per-minute window from 15 s on, each at most once a minute", async () => {
    const {c, clock} = client(
      [
        {method: 'GET', url: '/v2/account', status: 429, body: tooMany, headers: hdr(0, T0 / 1000 + 3000, {'retry-after': '2'})},
        {method: 'GET', url: '/v2/account', status: 429, body: tooMany, headers: hdr(0, T0 / 1000 + 3000, {'retry-after': '30'})},
        {method: 'GET', url: '/v2/account', body: {}},
        {method: 'GET', url: '/v2/account', body: {}},
        {method: 'GET', url: '/v2/account', body: {}},
        {method: 'GET', url: '/v2/account', body: {}},
      ],
      {perMinute: 4},
    )
    const told: string[] = []
    c.announce = (m) => told.push(m)
    await c.get('/v2/account') // 429 (2.5 s, not told), 429 (30.5 s, told), 200
    await c.get('/v2/account') // the 4th request within the minute: no wait
    await c.get('/v2/account') // the 5th: waits for the window (told)
    await c.get('/v2/account') // waits again within the same minute (not told)
    expect(clock.sleeps).toEqual([2500, 30_500, 27_250, 2500])
    expect(told).toEqual([
      'DigitalOcean API: rate limited (429); every request of this token waits 31 s, until 22:13:53 UTC',
      'DigitalOcean API: 4 requests sent in the last minute; the next waits 28 s',
    ])
  })

  it('on 429 without Retry-After waits until ratelimit-reset', async () => {
    const {c, clock} = client([
      {method: 'GET', url: '/v2/account', status: 429, body: tooMany, headers: hdr(0, T0 / 1000 + 40)},
      {method: 'GET', url: '/v2/account', body: {account: {}}, headers: hdr(1, T0 / 1000 + 80)},
    ])
    await c.get('/v2/account')
    // Paused until reset + jitter (40.5 s); the hourly figures (0 left) agree.
    expect(clock.sleeps).toEqual([40_500])
  })

  it('on 429 with no hint backs off exponentially, and gives up after maxRateLimitRetries with the 429', async () => {
    const steps: Step[] = Array.from({length: 4}, () => ({method: 'GET', url: '/v2/account', status: 429, body: tooMany}))
    const {c, clock} = client(steps, {maxRateLimitRetries: 3})
    const err = await c.get('/v2/account').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DoApiError)
    expect(err).toMatchObject({status: 429, apiId: 'too_many_requests'})
    expect(clock.sleeps).toEqual([1500, 2500, 4500])
    expect(c.stats.rateLimited).toBe(4)
  })

  it('retries a GET after 503 and a network error, with full-jitter backoff', async () => {
    const {c, clock} = client([
      {method: 'GET', url: '/v2/droplets/7', status: 503, body: {id: 'server_error', message: 'x'}},
      {method: 'GET', url: '/v2/droplets/7', error: new TypeError('fetch failed')},
      {method: 'GET', url: '/v2/droplets/7', body: {droplet: {id: 7}}},
    ])
    expect(await c.get('/v2/droplets/7')).toEqual({droplet: {id: 7}})
    expect(clock.sleeps).toEqual([250, 500])
    expect(c.stats.transientRetries).toBe(2)
    expect(c.stats.statuses).toEqual({0: 1, 200: 1, 503: 1})
  })

  it('retries a DELETE after a timeout', async () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError')
    const {c} = client([
      {method: 'DELETE', url: '/v2/droplets/7', error: timeout},
      {method: 'DELETE', url: '/v2/droplets/7', status: 204},
    ])
    expect((await c.request({method: 'DELETE', path: '/v2/droplets/7'})).status).toBe(204)
  })

  it('never retries a create after a 5xx or no answer: the error says it is ambiguous', async () => {
    const {c, s} = client([{method: 'POST', url: '/v2/droplets', status: 500, body: {id: 'server_error', message: 'Server Error'}}])
    const err = await c.request({method: 'POST', path: '/v2/droplets', body: {}}).catch((e: unknown) => e)
    expect(err).toMatchObject({status: 500, ambiguous: true})
    expect(s.left()).toBe(0)
    const {c: c2} = client([{method: 'POST', url: '/v2/firewalls', error: new TypeError('fetch failed')}])
    await expect(c2.request({method: 'POST', path: '/v2/firewalls', body: {}})).rejects.toMatchObject({status: 0, apiId: 'network', ambiguous: true})
  })

  it('gives up a retry-safe request after maxTransientRetries with the last error', async () => {
    const {c, clock} = client(
      Array.from({length: 3}, () => ({method: 'GET', url: '/v2/regions', status: 502, body: {id: 'bad_gateway', message: 'Bad Gateway'}})),
      {maxTransientRetries: 2},
    )
    await expect(c.get('/v2/regions')).rejects.toMatchObject({status: 502, ambiguous: false})
    expect(clock.sleeps).toEqual([250, 500])
  })

  it('does not retry 4xx answers, and keeps the API error id, message and request id; never the token', async () => {
    const {c} = client([{method: 'GET', url: '/v2/account', status: 401, body: {id: 'Unauthorized', message: 'Unable to authenticate you', request_id: 'r-1'}}])
    const err = (await c.get('/v2/account').catch((e: unknown) => e)) as DoApiError
    expect(err).toMatchObject({status: 401, apiId: 'Unauthorized', requestId: 'r-1'})
    expect(err.message).toBe('DigitalOcean API GET /v2/account: 401 Unable to authenticate you')
    expect(JSON.stringify({...err, message: err.message})).not.toContain(TOKEN)
  })

  it('lists every page: per_page=200, then the query of links.pages.next on its own base URL', async () => {
    const page = (n: number, count: number) => Array.from({length: count}, (_, i) => ({id: n * 1000 + i}))
    const {c, s} = client([
      {method: 'GET', url: '/v2/droplets?tag_name=t&per_page=200&page=1', body: {droplets: page(1, 200), links: {pages: {next: 'https://elsewhere.example/v2/droplets?page=2&per_page=200&tag_name=t', last: 'x'}}, meta: {total: 450}}},
      {method: 'GET', url: '/v2/droplets?tag_name=t&per_page=200&page=2', body: {droplets: page(2, 200), links: {pages: {next: 'https://elsewhere.example/v2/droplets?page=3&per_page=200&tag_name=t'}}, meta: {total: 450}}},
      {method: 'GET', url: '/v2/droplets?tag_name=t&per_page=200&page=3', body: {droplets: page(3, 50), links: {pages: {first: 'x', prev: 'y'}}, meta: {total: 450}}},
    ])
    const all = await c.listAll<{id: number}>('/v2/droplets', 'droplets', {tag_name: 't'})
    expect(all).toHaveLength(450)
    expect(new Set(all.map((d) => d.id)).size).toBe(450)
    // The token went to our API only, never to the host a link named.
    for (const call of s.seen) expect(new URL(call.url).host).toBe('api.example.test')
  })

  it('stops listing at meta.total even when a server keeps offering a next page', async () => {
    const {c} = client([
      {method: 'GET', url: '/v2/firewalls?per_page=200&page=1', body: {firewalls: [{id: 'a'}], links: {pages: {next: '/v2/firewalls?page=2'}}, meta: {total: 1}}},
    ])
    expect(await c.listAll('/v2/firewalls', 'firewalls')).toEqual([{id: 'a'}])
  })

  it('names request kinds by template', () => {
    expect(pathTemplate('/v2/droplets/123/actions/456')).toBe('/v2/droplets/{id}/actions/{id}')
    expect(pathTemplate('/v2/account/keys/3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa')).toBe('/v2/account/keys/{id}')
    expect(pathTemplate('/v2/firewalls/bb4b2611-3d72-467b-8602-280330ecd65c/tags')).toBe('/v2/firewalls/{id}/tags')
    expect(pathTemplate('/v2/tags/belt-cluster-x')).toBe('/v2/tags/{id}')
    expect(pathTemplate('/v2/images/ubuntu-24-04-x64')).toBe('/v2/images/ubuntu-24-04-x64')
  })
})
