import {DescribeInstancesCommand, type Filter, type Instance} from '@aws-sdk/client-ec2'
import {sleep} from '../sleep.js'
import {tcpAccepts} from '../tcp.js'
import {Ec2ApiStats, isThrottling, type Ec2Api} from './client.js'

/** Every bound the driver waits under. Tests shorten the polling ones; none is unbounded. */
export interface Ec2Timing {
  /** First DescribeInstances poll after a change, then x1.5 per poll up to `pollMaxMs`. */
  readonly pollMinMs: number
  readonly pollMaxMs: number
  /** pending -> running. */
  readonly runningTimeoutMs: number
  /** running -> TCP port 22 accepts. */
  readonly sshTimeoutMs: number
  /** stopping -> stopped. */
  readonly stopTimeoutMs: number
  /** shutting-down -> terminated. */
  readonly terminateTimeoutMs: number
  /** DeleteSecurityGroup retried while DependencyViolation says instances still use the group. */
  readonly groupDeleteTimeoutMs: number
  /**
   * How long `removeCluster` waits for a group held only by instances shutting down before it
   * leaves the group to the next `belt rm` (pending-groups.ts). 0: it never waits for them (a
   * shutdown takes a minute or more on EC2). Tests of the emulator, where a shutdown takes
   * milliseconds, set it to see every cluster resource go within the call.
   */
  readonly groupHeldByShutdownWaitMs: number
  /** After RebootInstances: how long to wait for SSH to go down before waiting for it to come up. */
  readonly rebootDownGraceMs: number
  /** Belt's own retries of a throttled call after the SDK's adaptive retries gave up. */
  readonly throttleRetries: number
  readonly throttleBaseMs: number
  readonly throttleMaxMs: number
  /** Rounds of InsufficientInstanceCapacity over every candidate subnet before giving up. */
  readonly capacityRounds: number
  /** Instances per RunInstances call. */
  readonly maxBatch: number
  /** TCP probes of port 22 at once. */
  readonly portProbeConcurrency: number
  /**
   * Calls this client starts per second at most, in a burst of as many (0: no pacing). Below EC2's
   * request-rate refill (20/s for describe calls; the emulator's default account limit), so that a
   * batch never gets throttled by its own bursts (one CreateTags per host adds up).
   */
  readonly requestsPerSecond: number
}

export const defaultTiming: Ec2Timing = {
  pollMinMs: 1_000,
  pollMaxMs: 5_000,
  runningTimeoutMs: 10 * 60_000,
  sshTimeoutMs: 5 * 60_000,
  stopTimeoutMs: 10 * 60_000,
  terminateTimeoutMs: 10 * 60_000,
  groupDeleteTimeoutMs: 10 * 60_000,
  groupHeldByShutdownWaitMs: 0,
  rebootDownGraceMs: 20_000,
  throttleRetries: 8,
  throttleBaseMs: 1_000,
  throttleMaxMs: 20_000,
  capacityRounds: 3,
  maxBatch: 50,
  portProbeConcurrency: 64,
  requestsPerSecond: 16,
}

export {sleep}

/** Exponential backoff with full jitter: a random wait in [base, min(max, base * 2^attempt)]. */
export function backoff(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** attempt)
  return Math.round(baseMs + random() * Math.max(0, cap - baseMs))
}

/**
 * One client's calls: the SDK client plus Belt's bounded retry of throttled calls. The SDK already
 * retries throttling (adaptive mode) but gives up after a few attempts or when its retry quota is
 * spent, which a 300-host batch can do; waiting longer here turns a burst into a slower success.
 */
export class Ec2Calls {
  /** Client-side token bucket (see {@link Ec2Timing.requestsPerSecond}). */
  private tokens: number
  private refilledAt = Date.now()
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    readonly api: Ec2Api,
    readonly stats: Ec2ApiStats,
    readonly timing: Ec2Timing,
  ) {
    this.tokens = timing.requestsPerSecond
  }

  /** Calls of normal priority waiting for a token. */
  private waiting = 0
  private lowQueue: Promise<unknown> = Promise.resolve()

  /** Takes a token when one is there. */
  private take(): boolean {
    const rate = this.timing.requestsPerSecond
    const now = Date.now()
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) / 1000) * rate)
    this.refilledAt = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /**
   * Resolves when one more call may start; callers of one priority are served in arrival order,
   * and a `low` one only when no normal one waits (background work such as Name tags never holds
   * back launches and readiness polls).
   */
  private pace(signal?: AbortSignal, low = false): Promise<void> {
    const rate = this.timing.requestsPerSecond
    if (!(rate > 0)) return Promise.resolve()
    const tick = () => Math.max(10, Math.ceil(((1 - this.tokens) / rate) * 1000))
    if (low) {
      const turn = this.lowQueue.then(async () => {
        while (this.waiting > 0 || !this.take()) await sleep(tick(), signal)
      })
      this.lowQueue = turn.catch(() => undefined)
      return turn
    }
    this.waiting++
    const turn = this.queue.then(async () => {
      while (!this.take()) await sleep(tick(), signal)
    })
    const done = () => void this.waiting--
    turn.then(done, done)
    this.queue = turn.catch(() => undefined)
    return turn
  }

  /** {@link call} for background work: it starts only when no other call waits for the pace. */
  callLow<T>(fn: (api: Ec2Api) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.call(fn, signal, true)
  }

  async call<T>(fn: (api: Ec2Api) => Promise<T>, signal?: AbortSignal, low = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      await this.pace(signal, low)
      try {
        return await fn(this.api)
      } catch (e) {
        if (!isThrottling(e) || attempt >= this.timing.throttleRetries) throw e
        this.stats.ownRetries++
        await sleep(backoff(attempt, this.timing.throttleBaseMs, this.timing.throttleMaxMs), signal)
      }
    }
  }

  /** Every instance DescribeInstances lists for `filters`, all pages (1,000 a page). */
  async describeInstances(filters: Filter[], signal?: AbortSignal): Promise<Instance[]> {
    const out: Instance[] = []
    let NextToken: string | undefined
    do {
      const page = await this.call((api) => api.send(new DescribeInstancesCommand({Filters: filters, MaxResults: 1000, NextToken})), signal)
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []))
      NextToken = page.NextToken || undefined
    } while (NextToken)
    return out
  }
}

export {tcpAccepts} from '../tcp.js'

/** Waits until `host:port` accepts (or, with `closed`, stops accepting), probing every second; bounded. */
export async function waitForPort(host: string, port: number, timeoutMs: number, opts: {signal?: AbortSignal; closed?: boolean} = {}): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    opts.signal?.throwIfAborted()
    const accepts = await tcpAccepts(host, port, Math.min(3_000, Math.max(200, deadline - Date.now())))
    if (accepts !== Boolean(opts.closed)) return true
    if (Date.now() >= deadline) return false
    await sleep(Math.min(1_000, Math.max(0, deadline - Date.now())), opts.signal)
  }
}
