import {seededRandom} from '../../emulator-kit.js'
/**
 * A local DigitalOcean API v2 emulator (node:http on 127.0.0.1) for the subset Belt uses: account,
 * SSH keys, regions, sizes, images, droplets (single and multi create, list with tag filter and
 * pagination, delete by id and by tag), droplet actions, firewalls and tags. Status codes, bodies,
 * the error shape `{id, message, request_id}`, the ratelimit-* headers and links/meta follow the
 * published OpenAPI document; the integration tests validate every exchange against it.
 *
 * Each droplet is backed by a host from another driver (`backing`): the emulator calls
 * `backing.create` with the droplet's name and the public key named by `ssh_keys`, and the host's
 * address becomes the droplet's public IPv4. Rehearsal knobs: boot delay, rate limit, and fault
 * rates (429, 5xx, droplets that never become active), drawn from a seeded generator.
 *
 * The bearer token is never logged; exchanges handed to `onExchange` carry it redacted.
 */
import {createHash, randomUUID} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import pLimit from 'p-limit'
import type {Backing, DriverContext, DriverOptions, Machine} from '../../driver.js'
import type {DoAction, DoDroplet, DoFirewall, DoFirewallTarget, DoSshKey, DoTag} from '../types.js'
import {MAX_PER_PAGE, MULTI_CREATE_MAX} from '../types.js'
import {IMAGES, REGIONS, SIZES, defaultVpc} from './catalog.js'
import {EndpointLimiter, REAL_RATE_LIMIT, SlidingWindowLimiter, type LimitVerdict, type RateLimit} from './limiter.js'

export interface EmulatorFaults {
  /** Fraction of requests answered 429 (with retry-after: 1) before they are processed. */
  rate429?: number
  /** Fraction of requests answered 500/503; for writes, half of them after the work was done (a lost answer). */
  rate5xx?: number
  /** Fraction of new droplets that stay 'new' forever. */
  neverActive?: number
  /**
   * Scripted faults for tests, asked for each authenticated request: 'before' answers 503 without
   * doing the work, 'after' does the work and answers 500 (a lost answer).
   */
  inject?: (method: string, path: string) => 'before' | 'after' | undefined
}

export interface EmulatorOptions {
  /** TCP port on 127.0.0.1 (0: any free port). */
  port?: number
  /** The driver that makes each droplet's machine, with its options and context. */
  backing: Backing
  backingOptions?: DriverOptions
  backingContext: DriverContext
  /** Cluster name given to the backing driver for every droplet (default `do-emulator`). */
  backingCluster?: string
  /** Backing creates in flight at once (default 16). */
  backingConcurrency?: number
  /** Time from create to 'active' (at least; the backing host must be up too). Default 1000 ms. */
  bootDelayMs?: number
  /** Time a power action takes (default 300 ms). */
  actionDelayMs?: number
  rateLimit?: RateLimit
  faults?: EmulatorFaults
  /** Seed of the fault and jitter generator (default 1). */
  seed?: number
  /** Tokens answered 401 (any other non-empty token is accepted). */
  rejectTokens?: readonly string[]
  /** Account droplet limit (default 1000). */
  dropletLimit?: number
  now?: () => number
  /** Called with every request/response pair, after the response was sent. */
  onExchange?: (exchange: Exchange) => void
  log?: (line: string) => void
}

/** One request and its response, as sent on the wire (authorization redacted). */
export interface Exchange {
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string>
  body: unknown
  status: number
  responseHeaders: Record<string, string>
  responseBody: unknown
}

export interface EmulatorStats {
  requests: number
  /** Requests by `METHOD /template`. */
  byRoute: Record<string, number>
  /** 429s for exceeding the rate limit. */
  limited: number
  /** Injected faults. */
  faults429: number
  faults5xx: number
  /** Of those 5xx, how many were sent after the work was done. */
  lostAnswers: number
  dropletsCreated: number
  neverActive: number
}

export interface EmulatorHandle {
  readonly url: string
  readonly port: number
  readonly stats: EmulatorStats
  /** Current droplets, keys, firewalls and tags (copies). */
  droplets(): DoDroplet[]
  sshKeys(): DoSshKey[]
  firewalls(): DoFirewall[]
  tags(): string[]
  /** Resolves when no backing work (boots, actions, removals) is in flight. */
  idle(): Promise<void>
  /** Stops listening, removes every backing host left, then the backing cluster. */
  close(): Promise<void>
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message)
  }
}

const unprocessable = (message: string) => new HttpError(422, 'unprocessable_entity', message)
const notFound = () => new HttpError(404, 'not_found', 'The resource you were accessing could not be found.')


/** Parses an OpenSSH public key line: the blob's first field must name the same key type. */
function parsePublicKey(line: string): {type: string; blob: Buffer} | undefined {
  const [type, b64] = line.trim().split(/\s+/)
  if (!type || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return undefined
  const blob = Buffer.from(b64, 'base64')
  if (blob.length < 4) return undefined
  const n = blob.readUInt32BE(0)
  if (n + 4 > blob.length || blob.subarray(4, 4 + n).toString() !== type) return undefined
  if (!['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'].includes(type)) return undefined
  return {type, blob}
}

const md5Fingerprint = (blob: Buffer) =>
  createHash('md5')
    .update(blob)
    .digest('hex')
    .match(/../g)!
    .join(':')

const NAME = /^[a-zA-Z0-9]?[a-z0-9A-Z.-]*[a-z0-9A-Z]$/
const TAG = /^[a-zA-Z0-9_\-:]+$/
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const PAGE_KEYS = new Set(['page', 'per_page'])

interface EmuDroplet {
  d: DoDroplet
  sshKey: string
  machine?: Machine
  /** The boot in flight (backing create + delay); removal waits for it. */
  booting?: Promise<void>
  deleted: boolean
  busy: boolean
}

type Result = {status: number; body?: unknown}
interface Call {
  params: string[]
  query: URLSearchParams
  body: Record<string, unknown>
  path: string
}
type Handler = (c: Call) => Result | Promise<Result>

export async function startEmulator(opts: EmulatorOptions): Promise<EmulatorHandle> {
  const emu = new Emulator(opts)
  await emu.listen(opts.port ?? 0)
  return emu.handle()
}

class Emulator {
  private readonly droplets = new Map<number, EmuDroplet>()
  private readonly keys = new Map<number, DoSshKey>()
  private readonly firewalls = new Map<string, DoFirewall>()
  private readonly tagNames = new Set<string>()
  private readonly actions = new Map<number, DoAction>()
  private nextDroplet = 412_000_001
  private nextKey = 41_000_001
  private nextAction = 2_000_000_001
  private readonly tasks = new Set<Promise<unknown>>()
  private readonly server: http.Server
  private base = ''
  private readonly rand: () => number
  private readonly limiter: SlidingWindowLimiter
  private readonly keyListLimiter: EndpointLimiter
  private readonly rejected: Set<string>
  private readonly backingLimit: ReturnType<typeof pLimit>
  private readonly now: () => number
  private readonly log: (line: string) => void
  private readonly routes: [method: string, pattern: RegExp, template: string, handler: Handler][]
  readonly stats: EmulatorStats = {requests: 0, byRoute: {}, limited: 0, faults429: 0, faults5xx: 0, lostAnswers: 0, dropletsCreated: 0, neverActive: 0}
  private readonly accountUuid = randomUUID()

  constructor(private readonly opts: EmulatorOptions) {
    this.now = opts.now ?? Date.now
    this.rand = seededRandom(opts.seed ?? 1)
    this.limiter = new SlidingWindowLimiter(opts.rateLimit ?? REAL_RATE_LIMIT, this.now)
    this.keyListLimiter = new EndpointLimiter(10, 60_000, this.now)
    this.rejected = new Set(opts.rejectTokens ?? [])
    this.backingLimit = pLimit(opts.backingConcurrency ?? 16)
    this.log = opts.log ?? (() => undefined)
    this.server = http.createServer((req, res) =>
      this.serve(req, res).catch((e: Error) => {
        // A client that went away mid-request: nothing to answer.
        this.log(`request ${req.method} ${req.url?.split('?')[0]} failed: ${e.message}`)
        res.destroy()
      }),
    )
    const id = '(\\d+)'
    const any = '([^/]+)'
    this.routes = [
      ['GET', /^\/v2\/account$/, '/v2/account', () => this.account()],
      ['GET', /^\/v2\/account\/keys$/, '/v2/account/keys', (c) => this.page(c, 'ssh_keys', [...this.keys.values()])],
      ['POST', /^\/v2\/account\/keys$/, '/v2/account/keys', (c) => this.createKey(c)],
      ['GET', new RegExp(`^/v2/account/keys/${any}$`), '/v2/account/keys/{ssh_key_identifier}', (c) => ({status: 200, body: {ssh_key: this.key(c.params[0]!)}})],
      ['DELETE', new RegExp(`^/v2/account/keys/${any}$`), '/v2/account/keys/{ssh_key_identifier}', (c) => this.deleteKey(c.params[0]!)],
      ['GET', /^\/v2\/regions$/, '/v2/regions', (c) => this.page(c, 'regions', [...REGIONS])],
      ['GET', /^\/v2\/sizes$/, '/v2/sizes', (c) => this.page(c, 'sizes', [...SIZES])],
      ['GET', /^\/v2\/images$/, '/v2/images', (c) => this.page(c, 'images', IMAGES.filter(() => c.query.get('type') !== 'application' && c.query.get('private') !== 'true'))],
      ['GET', new RegExp(`^/v2/images/${any}$`), '/v2/images/{image_id}', (c) => ({status: 200, body: {image: this.image(c.params[0]!)}})],
      ['GET', /^\/v2\/droplets$/, '/v2/droplets', (c) => this.listDroplets(c)],
      ['POST', /^\/v2\/droplets$/, '/v2/droplets', (c) => this.createDroplets(c)],
      ['DELETE', /^\/v2\/droplets$/, '/v2/droplets', (c) => this.deleteByTag(c)],
      ['GET', new RegExp(`^/v2/droplets/${id}$`), '/v2/droplets/{droplet_id}', (c) => ({status: 200, body: {droplet: this.droplet(c.params[0]!).d}})],
      ['DELETE', new RegExp(`^/v2/droplets/${id}$`), '/v2/droplets/{droplet_id}', (c) => this.deleteDroplet(c.params[0]!)],
      ['GET', new RegExp(`^/v2/droplets/${id}/actions$`), '/v2/droplets/{droplet_id}/actions', (c) => this.listActions(c)],
      ['POST', new RegExp(`^/v2/droplets/${id}/actions$`), '/v2/droplets/{droplet_id}/actions', (c) => this.dropletAction(c)],
      ['GET', new RegExp(`^/v2/droplets/${id}/actions/${id}$`), '/v2/droplets/{droplet_id}/actions/{action_id}', (c) => this.getAction(c.params[1]!, c.params[0])],
      ['GET', new RegExp(`^/v2/actions/${id}$`), '/v2/actions/{action_id}', (c) => this.getAction(c.params[0]!)],
      ['GET', /^\/v2\/firewalls$/, '/v2/firewalls', (c) => this.page(c, 'firewalls', [...this.firewalls.values()])],
      ['POST', /^\/v2\/firewalls$/, '/v2/firewalls', (c) => this.createFirewall(c)],
      ['GET', new RegExp(`^/v2/firewalls/${any}$`), '/v2/firewalls/{firewall_id}', (c) => ({status: 200, body: {firewall: this.firewall(c.params[0]!)}})],
      ['DELETE', new RegExp(`^/v2/firewalls/${any}$`), '/v2/firewalls/{firewall_id}', (c) => this.deleteFirewall(c.params[0]!)],
      ['POST', new RegExp(`^/v2/firewalls/${any}/rules$`), '/v2/firewalls/{firewall_id}/rules', (c) => this.firewallRules(c, true)],
      ['DELETE', new RegExp(`^/v2/firewalls/${any}/rules$`), '/v2/firewalls/{firewall_id}/rules', (c) => this.firewallRules(c, false)],
      ['POST', new RegExp(`^/v2/firewalls/${any}/tags$`), '/v2/firewalls/{firewall_id}/tags', (c) => this.firewallTags(c, true)],
      ['DELETE', new RegExp(`^/v2/firewalls/${any}/tags$`), '/v2/firewalls/{firewall_id}/tags', (c) => this.firewallTags(c, false)],
      ['GET', /^\/v2\/tags$/, '/v2/tags', (c) => this.page(c, 'tags', [...this.tagNames].map((t) => this.tagJson(t)))],
      ['POST', /^\/v2\/tags$/, '/v2/tags', (c) => this.createTag(c)],
      ['GET', new RegExp(`^/v2/tags/${any}$`), '/v2/tags/{tag_id}', (c) => this.getTag(c.params[0]!)],
      ['DELETE', new RegExp(`^/v2/tags/${any}$`), '/v2/tags/{tag_id}', (c) => this.deleteTag(c.params[0]!)],
    ]
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject)
        this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
        resolve()
      })
    })
  }

  handle(): EmulatorHandle {
    const self = this
    return {
      url: this.base,
      port: Number(new URL(this.base).port),
      stats: this.stats,
      droplets: () => [...this.droplets.values()].map((e) => structuredClone(e.d)),
      sshKeys: () => [...this.keys.values()].map((k) => ({...k})),
      firewalls: () => [...this.firewalls.values()].map((f) => structuredClone(f)),
      tags: () => [...this.tagNames].sort(),
      idle: () => self.idle(),
      close: () => self.close(),
    }
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch((e) => this.log(`background task failed: ${(e as Error).message}`)).finally(() => this.tasks.delete(t))
    this.tasks.add(t)
  }

  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks])
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    for (const e of this.droplets.values()) e.deleted = true
    await this.idle()
    const {backing, backingContext: ctx} = this.opts
    const left = [...this.droplets.values()].filter((e) => e.machine)
    this.droplets.clear()
    const removed = await Promise.allSettled(left.map((e) => this.backingLimit(() => backing.remove(e.machine!, this.opts.backingOptions ?? {}, ctx))))
    for (const [i, r] of removed.entries()) if (r.status === 'rejected') this.log(`backing host ${left[i]!.machine!.id} not removed: ${(r.reason as Error).message}`)
    await backing.removeCluster?.(this.opts.backingCluster ?? 'do-emulator', this.opts.backingOptions ?? {}, ctx).catch((err: Error) => this.log(`backing removeCluster: ${err.message}`))
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base)
    const method = (req.method ?? 'GET').toUpperCase()
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of req) {
      size += (c as Buffer).length
      if (size <= 1_048_576) chunks.push(c as Buffer)
    }
    const raw = Buffer.concat(chunks).toString('utf8')
    const requestId = randomUUID()
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = k === 'authorization' ? v.replace(/^(Bearer\s+).*$/i, '$1<redacted>') : v
    let parsed: unknown
    let verdict: LimitVerdict | undefined
    let retryAfter: number | undefined

    const send = (status: number, body?: unknown) => {
      const out: Record<string, string> = {'content-type': 'application/json; charset=utf-8'}
      if (verdict) {
        out['ratelimit-limit'] = String(verdict.limit)
        out['ratelimit-remaining'] = String(verdict.remaining)
        out['ratelimit-reset'] = String(verdict.reset)
      }
      if (retryAfter !== undefined) out['retry-after'] = String(retryAfter)
      const text = body === undefined ? '' : JSON.stringify(body)
      res.writeHead(status, out)
      res.end(text)
      this.opts.onExchange?.({
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body: parsed,
        status,
        responseHeaders: out,
        responseBody: body,
      })
    }
    const fail = (e: HttpError) => send(e.status, {id: e.id, message: e.message, request_id: requestId})

    // The emulator's own counters, for benchmarks: outside the API, not counted, not rate limited,
    // and only to loopback clients (the server listens on 127.0.0.1 only anyway).
    if (method === 'GET' && url.pathname === '/_emulator/stats' && /^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? ''))
      return send(200, {...this.stats, byRoute: {...this.stats.byRoute}, droplets: this.droplets.size})
    this.stats.requests++
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    const token = auth?.[1]
    const tokenKey = createHash('sha256').update(token ?? '').digest('hex')
    if (!token || this.rejected.has(token)) {
      verdict = this.limiter.peek(tokenKey)
      return fail(new HttpError(401, 'Unauthorized', 'Unable to authenticate you'))
    }
    verdict = this.limiter.take(tokenKey)
    if (!verdict.ok) {
      this.stats.limited++
      retryAfter = verdict.retryAfter
      return fail(new HttpError(429, 'too_many_requests', 'API Rate limit exceeded.'))
    }
    if (raw.trim()) {
      try {
        parsed = JSON.parse(raw)
      } catch {
        return fail(new HttpError(400, 'bad_request', 'unexpected end of JSON input or malformed JSON'))
      }
    }
    const route = this.routes.find(([m, re]) => m === method && re.test(url.pathname))
    const routeKey = `${method} ${route?.[2] ?? url.pathname}`
    this.stats.byRoute[routeKey] = (this.stats.byRoute[routeKey] ?? 0) + 1
    const fault429 = this.opts.faults?.rate429 ?? 0
    if (fault429 > 0 && this.rand() < fault429) {
      this.stats.faults429++
      retryAfter = 1
      verdict = {...verdict, remaining: 0}
      return fail(new HttpError(429, 'too_many_requests', 'API Rate limit exceeded.'))
    }
    if (!route) return fail(notFound())
    if (method === 'GET' && route[2] === '/v2/account/keys') {
      const wait = this.keyListLimiter.take(tokenKey)
      if (wait > 0) {
        this.stats.limited++
        retryAfter = wait
        return fail(new HttpError(429, 'too_many_requests', 'API Rate limit exceeded: at most 10 SSH key listings per 60 seconds.'))
      }
    }
    const fault5xx = this.opts.faults?.rate5xx ?? 0
    let loseAnswer = false
    const scripted = this.opts.faults?.inject?.(method, url.pathname)
    if (scripted === 'before') {
      this.stats.faults5xx++
      return fail(new HttpError(503, 'server_error', 'Service Unavailable'))
    }
    if (scripted === 'after') {
      this.stats.faults5xx++
      loseAnswer = true
    } else if (fault5xx > 0 && this.rand() < fault5xx) {
      this.stats.faults5xx++
      if (method === 'GET' || this.rand() < 0.5) return fail(new HttpError(this.rand() < 0.5 ? 500 : 503, 'server_error', 'Server Error'))
      loseAnswer = true
    }
    let result: Result
    try {
      const params = route[1].exec(url.pathname)!.slice(1).map(decodeURIComponent)
      const body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {}
      result = await route[3]({params, query: url.searchParams, body, path: url.pathname})
    } catch (e) {
      if (e instanceof HttpError) return fail(e)
      this.log(`internal error on ${method} ${url.pathname}: ${(e as Error).stack ?? e}`)
      return fail(new HttpError(500, 'server_error', 'Server Error'))
    }
    if (loseAnswer) {
      this.stats.lostAnswers++
      return fail(new HttpError(500, 'server_error', 'Server Error'))
    }
    send(result.status, result.body)
  }

  /** A page of `items` with links (absolute URLs, other query parameters kept) and meta. */
  private page<T>(c: Call, key: string, items: readonly T[]): Result {
    const perPage = Math.min(MAX_PER_PAGE, Math.max(1, Number.parseInt(c.query.get('per_page') ?? '20', 10) || 20))
    const page = Math.max(1, Number.parseInt(c.query.get('page') ?? '1', 10) || 1)
    const last = Math.max(1, Math.ceil(items.length / perPage))
    const link = (p: number) => {
      const q = new URLSearchParams([...c.query].filter(([k]) => !PAGE_KEYS.has(k)))
      q.set('page', String(p))
      q.set('per_page', String(perPage))
      return `${this.base}${c.path}?${q}`
    }
    const pages: Record<string, string> = {}
    if (page > 1) {
      pages.first = link(1)
      pages.prev = link(Math.min(page - 1, last))
    }
    if (page < last) {
      pages.next = link(page + 1)
      pages.last = link(last)
    }
    return {status: 200, body: {[key]: items.slice((page - 1) * perPage, page * perPage), links: Object.keys(pages).length > 0 ? {pages} : {}, meta: {total: items.length}}}
  }

  // ---- account, keys, catalogue --------------------------------------------------------------

  private account(): Result {
    return {
      status: 200,
      body: {
        account: {
          droplet_limit: this.opts.dropletLimit ?? 1000,
          floating_ip_limit: 3,
          email: 'emulator@belt.invalid',
          name: 'Belt emulator',
          uuid: this.accountUuid,
          email_verified: true,
          status: 'active',
          status_message: '',
        },
      },
    }
  }

  private key(idOrFp: string): DoSshKey {
    const k = /^\d+$/.test(idOrFp) ? this.keys.get(Number(idOrFp)) : [...this.keys.values()].find((x) => x.fingerprint === idOrFp)
    if (!k) throw notFound()
    return k
  }

  private createKey(c: Call): Result {
    const {name, public_key} = c.body
    if (typeof name !== 'string' || !name.trim()) throw unprocessable('name is required')
    const parsed = typeof public_key === 'string' ? parsePublicKey(public_key) : undefined
    if (!parsed) throw unprocessable('Key invalid, key should be of the format `type key [comment]`')
    const fingerprint = md5Fingerprint(parsed.blob)
    if ([...this.keys.values()].some((k) => k.fingerprint === fingerprint)) throw unprocessable('SSH Key is already in use on your account')
    const k: DoSshKey = {id: this.nextKey++, fingerprint, public_key: (public_key as string).trim(), name}
    this.keys.set(k.id, k)
    return {status: 201, body: {ssh_key: k}}
  }

  private deleteKey(idOrFp: string): Result {
    this.keys.delete(this.key(idOrFp).id)
    return {status: 204}
  }

  private image(idOrSlug: string) {
    const img = IMAGES.find((i) => i.slug === idOrSlug || String(i.id) === idOrSlug)
    if (!img) throw notFound()
    return img
  }

  // ---- droplets ------------------------------------------------------------------------------

  private droplet(id: string): EmuDroplet {
    const e = this.droplets.get(Number(id))
    if (!e) throw notFound()
    return e
  }

  private listDroplets(c: Call): Result {
    const tag = c.query.get('tag_name')
    const name = c.query.get('name')
    const list = [...this.droplets.values()].filter((e) => (!tag || e.d.tags.includes(tag)) && (!name || e.d.name === name)).map((e) => e.d)
    return this.page(c, 'droplets', list)
  }

  private createDroplets(c: Call): Result {
    const b = c.body
    const single = typeof b.name === 'string'
    if (single === Array.isArray(b.names)) throw unprocessable('give either name (a string) or names (an array of strings)')
    const names = single ? [b.name as string] : (b.names as unknown[])
    if (names.length === 0) throw unprocessable('names must not be empty')
    if (names.length > MULTI_CREATE_MAX) throw unprocessable(`You can only create up to ${MULTI_CREATE_MAX} droplets at once.`)
    for (const n of names) if (typeof n !== 'string' || n.length > 255 || !NAME.test(n)) throw unprocessable(`Name ${JSON.stringify(n)}: only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)`)
    const region = REGIONS.find((r) => r.slug === b.region)
    if (!region || !region.available) throw unprocessable(`Region ${JSON.stringify(b.region)} is not available.`)
    const size = SIZES.find((s) => s.slug === b.size)
    if (!size) throw unprocessable(`Size ${JSON.stringify(b.size)} is not a size.`)
    if (!size.regions.includes(region.slug)) throw unprocessable(`Size ${size.slug} is not available in ${region.slug}.`)
    const image = IMAGES.find((i) => i.slug === b.image || i.id === b.image || String(i.id) === b.image)
    if (!image) throw unprocessable(`You specified an invalid image for Droplet creation.`)
    const keys: DoSshKey[] = []
    for (const k of (b.ssh_keys as unknown[] | undefined) ?? []) {
      const found = [...this.keys.values()].find((x) => x.id === k || String(x.id) === k || x.fingerprint === k)
      if (!found) throw unprocessable(`ssh_keys: ${JSON.stringify(k)} is not a key of this account.`)
      keys.push(found)
    }
    const tags = ((b.tags as unknown[] | null | undefined) ?? []).map(String)
    for (const t of tags) if (!TAG.test(t) || t.length > 255) throw unprocessable(`Tag ${JSON.stringify(t)} is not a valid tag name.`)
    if (typeof b.user_data === 'string' && Buffer.byteLength(b.user_data) > 64 * 1024) throw unprocessable('user_data is limited to 64 KiB')
    if (this.droplets.size + names.length > (this.opts.dropletLimit ?? 1000))
      throw unprocessable(`creating this/these droplet(s) will exceed your droplet limit`)
    for (const t of tags) this.tagNames.add(t)

    const created: DoDroplet[] = []
    const actionLinks: {id: number; rel: string; href: string}[] = []
    for (const name of names as string[]) {
      const id = this.nextDroplet++
      const d: DoDroplet = {
        id,
        name,
        memory: size.memory,
        vcpus: size.vcpus,
        disk: size.disk,
        locked: false,
        status: 'new',
        kernel: null,
        created_at: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        features: ['droplet_agent', 'private_networking'],
        backup_ids: [],
        next_backup_window: null,
        snapshot_ids: [],
        image: {...image},
        volume_ids: [],
        size: {...size},
        size_slug: size.slug,
        networks: {v4: [], v6: []},
        region: {...region},
        tags: [...new Set(tags)],
        vpc_uuid: typeof b.vpc_uuid === 'string' ? b.vpc_uuid : defaultVpc(region.slug),
      }
      const e: EmuDroplet = {d, sshKey: keys[0]?.public_key ?? '', deleted: false, busy: false}
      this.droplets.set(id, e)
      this.stats.dropletsCreated++
      const action = this.newAction('create', e)
      actionLinks.push({id: action.id, rel: 'create', href: `${this.base}/v2/actions/${action.id}`})
      created.push(d)
      this.boot(e, action)
    }
    const links = {actions: actionLinks}
    return {status: 202, body: single ? {droplet: created[0], links} : {droplets: created, links}}
  }

  private newAction(type: string, e: EmuDroplet): DoAction {
    const a: DoAction = {
      id: this.nextAction++,
      status: 'in-progress',
      type,
      started_at: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      completed_at: null,
      resource_id: e.d.id,
      resource_type: 'droplet',
      region: {...e.d.region},
      region_slug: e.d.region.slug,
    }
    this.actions.set(a.id, a)
    return a
  }

  private finishAction(a: DoAction, ok: boolean): void {
    a.status = ok ? 'completed' : 'errored'
    a.completed_at = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z')
  }

  private setNetworks(e: EmuDroplet, m: Machine): void {
    const gw = (ip: string) => ip.replace(/\.\d+$/, '.1')
    const priv = m.privateAddress ?? m.address
    e.d.networks = {
      v4: [
        {ip_address: priv, netmask: '255.255.240.0', gateway: gw(priv), type: 'private'},
        {ip_address: m.address, netmask: '255.255.0.0', gateway: gw(m.address), type: 'public'},
      ],
      v6: [],
    }
  }

  /** Makes the droplet's backing host, then (after the boot delay) marks it active with its address. */
  private boot(e: EmuDroplet, action: DoAction): void {
    const neverActive = (this.opts.faults?.neverActive ?? 0) > 0 && this.rand() < this.opts.faults!.neverActive!
    const base = this.opts.bootDelayMs ?? 1000
    const delay = base * (0.8 + 0.4 * this.rand())
    if (neverActive) {
      this.stats.neverActive++
      this.log(`droplet ${e.d.id} (${e.d.name}) will never become active (fault)`)
      return
    }
    const {backing, backingContext: ctx} = this.opts
    const options = this.opts.backingOptions ?? {}
    e.booting = (async () => {
      const delayed = new Promise((r) => setTimeout(r, delay))
      let m: Machine | undefined
      try {
        m = await this.backingLimit(async () =>
          e.deleted
            ? undefined
            : backing.create({name: DNS_LABEL.test(e.d.name) ? e.d.name : `droplet-${e.d.id}`, cluster: {name: this.opts.backingCluster ?? 'do-emulator', sshPublicKey: e.sshKey}, options}, ctx),
        )
      } catch (err) {
        this.log(`droplet ${e.d.id} (${e.d.name}): the ${backing.name} backing could not create its host: ${(err as Error).message}`)
        this.finishAction(action, false)
        return
      }
      if (!m) return
      if (m.ssh.port !== 22) {
        this.log(`droplet ${e.d.id}: the ${backing.name} backing serves SSH on port ${m.ssh.port}, not 22; the droplet stays 'new'`)
        await backing.remove(m, options, ctx)
        this.finishAction(action, false)
        return
      }
      // From here on, whoever deletes the droplet removes this host (see destroy()).
      e.machine = m
      await delayed
      if (e.deleted) return
      this.setNetworks(e, m)
      e.d.status = 'active'
      this.finishAction(action, true)
    })()
    this.track(e.booting)
  }

  private deleteDroplet(id: string): Result {
    const e = this.droplet(id)
    this.destroy(e)
    return {status: 204}
  }

  /** Forgets the droplet now; removes its backing host once its boot settled. */
  private destroy(e: EmuDroplet): void {
    e.deleted = true
    this.droplets.delete(e.d.id)
    const {backing, backingContext: ctx} = this.opts
    this.track(
      (async () => {
        await e.booting?.catch(() => undefined)
        const m = e.machine
        e.machine = undefined
        if (m) await this.backingLimit(() => backing.remove(m, this.opts.backingOptions ?? {}, ctx))
      })(),
    )
  }

  private deleteByTag(c: Call): Result {
    const tag = c.query.get('tag_name')
    if (!tag) throw unprocessable('tag_name is required')
    if (!this.tagNames.has(tag)) throw notFound()
    for (const e of [...this.droplets.values()]) if (e.d.tags.includes(tag)) this.destroy(e)
    return {status: 204}
  }

  private listActions(c: Call): Result {
    const e = this.droplet(c.params[0]!)
    return this.page(c, 'actions', [...this.actions.values()].filter((a) => a.resource_id === e.d.id))
  }

  private getAction(actionId: string, dropletId?: string): Result {
    const a = this.actions.get(Number(actionId))
    if (!a || (dropletId !== undefined && String(a.resource_id) !== dropletId)) throw notFound()
    return {status: 200, body: {action: a}}
  }

  private dropletAction(c: Call): Result {
    const e = this.droplet(c.params[0]!)
    const type = c.body.type
    if (typeof type !== 'string') throw unprocessable('type is required')
    if (e.d.status === 'new') throw unprocessable('Droplet is still being created.')
    if (e.busy) throw unprocessable('Droplet already has a pending event.')
    const on = e.d.status === 'active'
    if (type === 'power_on' && on) throw unprocessable('Droplet is already powered on.')
    if ((type === 'power_off' || type === 'shutdown') && !on) throw unprocessable('Droplet is already powered off.')
    if (type === 'reboot' && !on) throw unprocessable('Droplet must be powered on to reboot.')
    if (!['power_on', 'power_off', 'shutdown', 'reboot', 'power_cycle'].includes(type))
      throw unprocessable(`the emulator implements power_on, power_off, shutdown, reboot and power_cycle, not ${type}`)
    const action = this.newAction(type, e)
    e.busy = true
    const {backing, backingContext: ctx} = this.opts
    const options = this.opts.backingOptions ?? {}
    this.track(
      (async () => {
        try {
          await new Promise((r) => setTimeout(r, this.opts.actionDelayMs ?? 300))
          const m = e.machine
          if (type === 'power_off' || type === 'shutdown') {
            if (m) await (type === 'shutdown' ? backing.stop : (backing.kill ?? backing.stop))?.call(backing, m, options, ctx)
            e.d.status = 'off'
          } else {
            let next = m
            if (m && type === 'power_on') next = (await backing.start?.call(backing, m, options, ctx)) ?? m
            if (m && (type === 'reboot' || type === 'power_cycle')) next = (await (backing.restart ?? backing.start)?.call(backing, m, options, ctx)) ?? m
            if (next) {
              e.machine = next
              this.setNetworks(e, next)
            }
            e.d.status = 'active'
          }
          this.finishAction(action, true)
        } catch (err) {
          this.log(`droplet ${e.d.id}: ${type} failed in the backing: ${(err as Error).message}`)
          this.finishAction(action, false)
        } finally {
          e.busy = false
        }
      })(),
    )
    return {status: 201, body: {action}}
  }

  // ---- firewalls and tags --------------------------------------------------------------------

  private firewall(id: string): DoFirewall {
    const f = this.firewalls.get(id)
    if (!f) throw notFound()
    return f
  }

  private checkTarget(t: unknown, where: string): DoFirewallTarget {
    if (!t || typeof t !== 'object') throw new HttpError(400, 'bad_request', `${where}: sources/destinations required`)
    const target = t as DoFirewallTarget
    for (const tag of target.tags ?? []) if (!this.tagNames.has(tag)) throw new HttpError(400, 'bad_request', `${where}: tag ${tag} does not exist`)
    for (const id of target.droplet_ids ?? []) if (!this.droplets.has(id)) throw new HttpError(400, 'bad_request', `${where}: droplet ${id} does not exist`)
    return target
  }

  private createFirewall(c: Call): Result {
    const b = c.body
    if (typeof b.name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9.-]+$/.test(b.name)) throw new HttpError(400, 'bad_request', 'name: must be letters, digits, dots and dashes')
    const inbound = (b.inbound_rules as DoFirewall['inbound_rules'] | null | undefined) ?? []
    const outbound = (b.outbound_rules as DoFirewall['outbound_rules'] | null | undefined) ?? []
    if (inbound.length === 0 && outbound.length === 0) throw new HttpError(400, 'bad_request', 'at least one inbound or outbound rule is required')
    for (const r of [...inbound, ...outbound]) {
      if (!['tcp', 'udp', 'icmp'].includes(r.protocol)) throw new HttpError(400, 'bad_request', `protocol ${r.protocol} is not tcp, udp or icmp`)
      if (r.protocol !== 'icmp' && !/^(0|\d{1,5}(-\d{1,5})?)$/.test(r.ports ?? '')) throw new HttpError(400, 'bad_request', `ports ${r.ports} is not a port, a range or 0`)
    }
    const tags = ((b.tags as string[] | null | undefined) ?? []).map(String)
    for (const t of tags) if (!this.tagNames.has(t)) throw new HttpError(400, 'bad_request', `tag ${t} does not exist`)
    const f: DoFirewall = {
      id: randomUUID(),
      name: b.name,
      status: 'succeeded',
      created_at: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      pending_changes: [],
      droplet_ids: ((b.droplet_ids as number[] | null | undefined) ?? []).map(Number),
      tags,
      inbound_rules: inbound.map((r, i) => ({protocol: r.protocol, ports: r.protocol === 'icmp' ? '0' : r.ports, sources: this.checkTarget(r.sources, `inbound_rules[${i}]`)})),
      outbound_rules: outbound.map((r, i) => ({protocol: r.protocol, ports: r.protocol === 'icmp' ? '0' : r.ports, destinations: this.checkTarget(r.destinations, `outbound_rules[${i}]`)})),
    }
    this.firewalls.set(f.id, f)
    return {status: 202, body: {firewall: f}}
  }

  private deleteFirewall(id: string): Result {
    this.firewalls.delete(this.firewall(id).id)
    return {status: 204}
  }

  /**
   * Adds or removes inbound/outbound rules (`firewalls_add_rules`, `firewalls_delete_rules`). As on
   * DigitalOcean, a rule is matched by protocol, ports and its exact target; adding a rule that is
   * there already leaves one copy, removing one that is not there is success.
   */
  private firewallRules(c: Call, add: boolean): Result {
    const f = this.firewall(c.params[0]!)
    const inbound = (c.body.inbound_rules as DoFirewall['inbound_rules'] | null | undefined) ?? []
    const outbound = (c.body.outbound_rules as DoFirewall['outbound_rules'] | null | undefined) ?? []
    if (inbound.length === 0 && outbound.length === 0) throw new HttpError(400, 'bad_request', 'at least one inbound or outbound rule is required')
    for (const r of [...inbound, ...outbound]) {
      if (!['tcp', 'udp', 'icmp'].includes(r.protocol)) throw new HttpError(400, 'bad_request', `protocol ${r.protocol} is not tcp, udp or icmp`)
      if (r.protocol !== 'icmp' && !/^(0|\d{1,5}(-\d{1,5})?)$/.test(r.ports ?? '')) throw new HttpError(400, 'bad_request', `ports ${r.ports} is not a port, a range or 0`)
    }
    const key = (r: {protocol: string; ports: string}, t: DoFirewallTarget) =>
      JSON.stringify([r.protocol, r.protocol === 'icmp' ? '0' : r.ports, [...(t.addresses ?? [])].sort(), [...(t.tags ?? [])].sort(), [...(t.droplet_ids ?? [])].sort()])
    const inRules = inbound.map((r, i) => ({protocol: r.protocol, ports: r.protocol === 'icmp' ? '0' : r.ports, sources: this.checkTarget(r.sources, `inbound_rules[${i}]`)}))
    const outRules = outbound.map((r, i) => ({protocol: r.protocol, ports: r.protocol === 'icmp' ? '0' : r.ports, destinations: this.checkTarget(r.destinations, `outbound_rules[${i}]`)}))
    const inKeys = new Set(inRules.map((r) => key(r, r.sources)))
    const outKeys = new Set(outRules.map((r) => key(r, r.destinations)))
    const keptIn = f.inbound_rules.filter((r) => !inKeys.has(key(r, r.sources)))
    const keptOut = f.outbound_rules.filter((r) => !outKeys.has(key(r, r.destinations)))
    f.inbound_rules = add ? [...keptIn, ...inRules] : keptIn
    f.outbound_rules = add ? [...keptOut, ...outRules] : keptOut
    return {status: 204}
  }

  private firewallTags(c: Call, add: boolean): Result {
    const f = this.firewall(c.params[0]!)
    const tags = c.body.tags
    if (!Array.isArray(tags)) throw new HttpError(400, 'bad_request', 'tags is required')
    for (const t of tags) if (add && !this.tagNames.has(String(t))) throw new HttpError(400, 'bad_request', `tag ${t} does not exist`)
    f.tags = add ? [...new Set([...f.tags, ...tags.map(String)])] : f.tags.filter((t) => !tags.includes(t))
    return {status: 204}
  }

  private tagJson(name: string): DoTag {
    const count = [...this.droplets.values()].filter((e) => e.d.tags.includes(name)).length
    return {name, resources: {count, droplets: {count}}}
  }

  private createTag(c: Call): Result {
    const name = c.body.name
    if (typeof name !== 'string' || !TAG.test(name) || name.length > 255) throw new HttpError(400, 'bad_request', 'name: letters, digits, _ - and : only')
    this.tagNames.add(name)
    return {status: 201, body: {tag: this.tagJson(name)}}
  }

  private getTag(name: string): Result {
    if (!this.tagNames.has(name)) throw notFound()
    return {status: 200, body: {tag: this.tagJson(name)}}
  }

  private deleteTag(name: string): Result {
    if (!this.tagNames.has(name)) throw notFound()
    this.tagNames.delete(name)
    for (const e of this.droplets.values()) e.d.tags = e.d.tags.filter((t) => t !== name)
    for (const f of this.firewalls.values()) f.tags = f.tags.filter((t) => t !== name)
    return {status: 204}
  }
}
