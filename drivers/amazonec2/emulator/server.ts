import {randomUUID} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {XMLBuilder} from 'fast-xml-parser'
import type {Backing, DriverContext, DriverOptions} from '../../driver.js'
import {memoryContext, seededRandom} from '../../emulator-kit.js'
import {Ec2Cloud} from './cloud.js'
import {Ec2Error, decodeParams} from './query.js'

export const EC2_API_VERSION = '2016-11-15'
export const EC2_XMLNS = `http://ec2.amazonaws.com/doc/${EC2_API_VERSION}/`

export interface Ec2EmulatorOptions {
  /** Each instance is a host of this driver (the local driver, or the simulated backing in tests). */
  readonly backing: Backing
  readonly backingOptions?: DriverOptions
  /** The context for backing calls; a throwaway one (no journal, in-process locks) when absent. */
  readonly backingContext?: DriverContext
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  readonly port?: number
  /** pending -> running at least this long (ms), default 200. Stops and terminations take as long. */
  readonly bootDelayMs?: number
  readonly stopDelayMs?: number
  readonly terminateDelayMs?: number
  /** How long terminated instances stay listed (ms), default 10 minutes (EC2: about an hour). */
  readonly terminatedRetentionMs?: number
  /** Requests per second the account may make (token bucket, burst of one second); 0 = no limit. */
  readonly rateLimit?: number
  /** Probability (0..1) that any request is throttled (RequestLimitExceeded) regardless of the rate. */
  readonly faultThrottle?: number
  /** Probability (0..1) that a RunInstances call fails with InsufficientInstanceCapacity. */
  readonly faultCapacity?: number
  /** Seed of the fault dice, for reproducible runs. */
  readonly seed?: number
  /** Default VPC CIDR of every region, default 172.31.0.0/16. */
  readonly vpcCidr?: string
  readonly regions?: readonly string[]
  readonly maxInstances?: number
  /** Page size cap for MaxResults requests (EC2 may return fewer than asked); default none. */
  readonly maxPageSize?: number
  /**
   * Login user of every image (`belt:ssh-user` tag and description); by default each image's own,
   * as on EC2: ubuntu on the Ubuntu images, ec2-user on Amazon Linux.
   */
  readonly imageLoginUser?: string
  /** One line per instance change and per failed request; never credentials, headers or bodies. */
  readonly log?: (line: string) => void
  /**
   * Every signed request's action and decoded parameters, before it is handled (for tests that check
   * what a client sent). Parameters never hold credentials: SigV4 keeps them in the headers.
   */
  readonly onRequest?: (action: string, params: Readonly<Record<string, unknown>>) => void
}

/** What the emulator saw, for benchmarks and tests. */
export interface Ec2EmulatorStats {
  /** Requests by action, throttled ones included. */
  readonly requests: Record<string, number>
  /** Error responses by code. */
  readonly errors: Record<string, number>
  /** Requests refused by the rate limit. */
  rateLimited: number
  /** Requests refused by the throttle fault. */
  throttleFaults: number
}

export const DEFAULT_REGIONS = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1', 'eu-west-3', 'eu-central-1', 'ap-southeast-2']

export {seededRandom}

/** `20/s`, `20` or `2.5/s` -> requests per second. */
export function parseRate(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*s)?\s*$/.exec(value)
  if (!m) throw new Error(`not a rate: '${value}' (expected N or N/s)`)
  return Number(m[1])
}

/** A token bucket: `rate` per second, `burst` at most. */
class TokenBucket {
  private tokens: number
  private last = Date.now()
  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst
  }
  take(): boolean {
    const now = Date.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

const AUTH = /^AWS4-HMAC-SHA256\s+Credential=([^/\s,]+)\/(\d{8})\/([a-z0-9-]+)\/ec2\/aws4_request\s*,/

const builder = new XMLBuilder({ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false})

/** The XML body of a successful response. */
export function responseXml(action: string, requestId: string, body: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n` + builder.build({[`${action}Response`]: {'@_xmlns': EC2_XMLNS, requestId, ...body}})
}

/** EC2's error document. */
export function errorXml(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n` + builder.build({Response: {Errors: {Error: {Code: code, Message: message}}, RequestID: requestId}})
}

const MAX_BODY = 1 << 20

/**
 * A local EC2 Query API server on 127.0.0.1: SigV4-signed form posts in, EC2 XML out. It checks
 * that a request is signed (Authorization header with an `ec2` credential scope, whose region picks
 * the emulated region) but not the signature itself; it never logs headers, bodies or keys.
 */
export class Ec2Emulator {
  readonly stats: Ec2EmulatorStats = {requests: {}, errors: {}, rateLimited: 0, throttleFaults: 0}
  private bucket: TokenBucket | undefined
  /** Responses to drop after the work is done, by action: the client sees 503 and must not do it twice. */
  private readonly lose = new Map<string, number>()
  private faultThrottle: number
  private readonly random: () => number
  private readonly log: (line: string) => void
  private readonly onRequest?: Ec2EmulatorOptions['onRequest']

  private constructor(
    private readonly server: http.Server,
    readonly cloud: Ec2Cloud,
    opts: Ec2EmulatorOptions,
    random: () => number,
  ) {
    this.random = random
    this.faultThrottle = opts.faultThrottle ?? 0
    this.bucket = opts.rateLimit ? new TokenBucket(opts.rateLimit, Math.max(1, opts.rateLimit)) : undefined
    this.log = opts.log ?? (() => undefined)
    this.onRequest = opts.onRequest
    server.on('request', (req, res) => void this.serve(req, res))
  }

  /** Starts the server; resolves once it listens. */
  static async start(opts: Ec2EmulatorOptions): Promise<Ec2Emulator> {
    const random = seededRandom(opts.seed ?? 20161115)
    const boot = opts.bootDelayMs ?? 200
    const cloud = new Ec2Cloud({
      backing: opts.backing,
      backingOptions: opts.backingOptions ?? {},
      backingContext: opts.backingContext ?? throwawayContext(),
      bootDelayMs: boot,
      stopDelayMs: opts.stopDelayMs ?? boot,
      terminateDelayMs: opts.terminateDelayMs ?? boot,
      terminatedRetentionMs: opts.terminatedRetentionMs ?? 10 * 60_000,
      faultCapacity: opts.faultCapacity ?? 0,
      noCapacityZones: new Set(),
      vpcCidr: opts.vpcCidr ?? '172.31.0.0/16',
      regions: opts.regions ?? DEFAULT_REGIONS,
      maxInstances: opts.maxInstances ?? 5_000,
      maxPageSize: opts.maxPageSize,
      imageLoginUser: opts.imageLoginUser,
      accountId: '123456789012',
      random,
      log: opts.log ?? (() => undefined),
    })
    const server = http.createServer({keepAliveTimeout: 5_000})
    const emulator = new Ec2Emulator(server, cloud, opts, random)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    return emulator
  }

  /** `http://127.0.0.1:<port>`: the value for --amazonec2-endpoint. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** Changes the fault rates, the zones without capacity and the rate limit of a running emulator. */
  setFaults(f: {throttle?: number; capacity?: number; noCapacityZones?: readonly string[]; rateLimit?: number}): void {
    if (f.throttle !== undefined) this.faultThrottle = f.throttle
    if (f.capacity !== undefined) this.cloud.opts.faultCapacity = f.capacity
    if (f.noCapacityZones !== undefined) this.cloud.opts.noCapacityZones = new Set(f.noCapacityZones)
    if (f.rateLimit !== undefined) this.bucket = f.rateLimit ? new TokenBucket(f.rateLimit, Math.max(1, f.rateLimit)) : undefined
  }

  /** Changes how long instance transitions take from now on (instances already in transit keep theirs). */
  setDelays(d: {bootMs?: number; stopMs?: number; terminateMs?: number}): void {
    if (d.bootMs !== undefined) this.cloud.opts.bootDelayMs = d.bootMs
    if (d.stopMs !== undefined) this.cloud.opts.stopDelayMs = d.stopMs
    if (d.terminateMs !== undefined) this.cloud.opts.terminateDelayMs = d.terminateMs
  }

  /**
   * The next `count` successful `action` calls do their work but answer 503 Unavailable, as when a
   * response is lost: a client that retries must not do the work twice (ClientToken).
   */
  loseResponses(action: string, count: number): void {
    this.lose.set(action, count)
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID()
    const send = (status: number, xml: string) => {
      res.writeHead(status, {'Content-Type': 'text/xml;charset=UTF-8', 'Content-Length': Buffer.byteLength(xml), Server: 'AmazonEC2', 'x-amzn-RequestId': requestId})
      res.end(xml)
    }
    // The emulator's own counters, for benchmarks: outside the API, not counted, not rate limited,
    // and only to loopback clients (the server listens on 127.0.0.1 only anyway).
    if (req.method === 'GET' && req.url === '/_emulator/stats' && /^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? '')) {
      const json = JSON.stringify({...this.stats, liveInstances: this.cloud.liveInstances()})
      res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json)})
      res.end(json)
      return
    }
    let action = 'Unknown'
    try {
      const body = await readBody(req)
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const form = new URLSearchParams(req.method === 'POST' ? body : '')
      const params = decodeParams([...url.searchParams, ...form])
      action = typeof params.Action === 'string' ? params.Action : 'Unknown'
      this.stats.requests[action] = (this.stats.requests[action] ?? 0) + 1
      const auth = AUTH.exec(req.headers.authorization ?? '')
      if (!auth) throw new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
      if (action === 'Unknown') throw new Ec2Error('MissingAction', 'The request must contain the parameter Action')
      this.onRequest?.(action, params)
      if (params.Version !== EC2_API_VERSION) throw new Ec2Error('InvalidParameterValue', `Unsupported Version: '${String(params.Version ?? '')}' (this emulator speaks ${EC2_API_VERSION})`)
      if (this.bucket && !this.bucket.take()) {
        this.stats.rateLimited++
        throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503)
      }
      if (this.faultThrottle > 0 && this.random() < this.faultThrottle) {
        this.stats.throttleFaults++
        throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503)
      }
      const out = await this.cloud.handle(action, params, auth[3]!)
      const lost = this.lose.get(action) ?? 0
      if (lost > 0) {
        this.lose.set(action, lost - 1)
        throw new Ec2Error('Unavailable', 'The server is overloaded or unable to process the request.', 503)
      }
      send(200, responseXml(action, requestId, out))
    } catch (e) {
      const err = e instanceof Ec2Error ? e : new Ec2Error('InternalError', 'An internal error has occurred', 500)
      if (!(e instanceof Ec2Error)) this.log(`${action}: internal error: ${(e as Error).message}`)
      this.stats.errors[err.code] = (this.stats.errors[err.code] ?? 0) + 1
      send(err.status, errorXml(err.code, err.message, requestId))
    }
  }

  /** Stops serving, then removes every backing host. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    await this.cloud.close()
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (d: Buffer) => {
      size += d.length
      if (size > MAX_BODY) {
        reject(new Ec2Error('RequestEntityTooLarge', 'Request body too large', 413))
        req.destroy()
      } else parts.push(d)
    })
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')))
    req.on('error', reject)
  })
}

/** A context for backing drivers that need none of the store: no journal, locks within this process. */
export function throwawayContext(stateDir = '/nonexistent'): DriverContext {
  return memoryContext(() => undefined, stateDir)
}
