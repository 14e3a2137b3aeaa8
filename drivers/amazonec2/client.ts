import {EC2Client, type EC2ClientConfig} from '@aws-sdk/client-ec2'
import type {Ec2Settings} from './settings.js'

/**
 * API usage of one driver object, counted in the SDK's middleware stack:
 *  - `commands`: logical calls the driver made, by action (one per `send`);
 *  - `requests`: HTTP requests, by action (the SDK's retries included): what the cloud saw;
 *  - `throttled`: responses that were throttling errors (RequestLimitExceeded, ...), by action;
 *  - `sdkRetries`: requests the SDK's (adaptive) retry strategy sent again, for any reason;
 *  - `ownRetries`: calls Belt sent again after the SDK gave up on throttling (bounded backoff).
 */
export class Ec2ApiStats {
  readonly commands: Record<string, number> = {}
  readonly requests: Record<string, number> = {}
  readonly throttled: Record<string, number> = {}
  sdkRetries = 0
  ownRetries = 0

  /** Total of a counter map. */
  static total(m: Readonly<Record<string, number>>): number {
    return Object.values(m).reduce((a, b) => a + b, 0)
  }

  /** A plain, sorted copy for printing or `--json`. */
  snapshot(): {commands: Record<string, number>; requests: Record<string, number>; throttled: Record<string, number>; sdkRetries: number; ownRetries: number} {
    const sorted = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)))
    return {commands: sorted(this.commands), requests: sorted(this.requests), throttled: sorted(this.throttled), sdkRetries: this.sdkRetries, ownRetries: this.ownRetries}
  }
}

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1
}

/** The error code of an AWS service error (`InvalidInstanceID.NotFound`), undefined for other errors. */
export function awsErrorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined
  const x = e as {name?: unknown; Code?: unknown; $fault?: unknown; $metadata?: unknown}
  if (typeof x.Code === 'string') return x.Code
  if (x.$fault !== undefined || x.$metadata !== undefined) return typeof x.name === 'string' ? x.name : undefined
  return undefined
}

/** Throttling codes EC2 and the SDK use; the SDK's own list is wider but these are the ones EC2 sends. */
const THROTTLING = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'EC2ThrottledException', 'TooManyRequestsException'])

export function isThrottling(e: unknown): boolean {
  const code = awsErrorCode(e)
  if (code && THROTTLING.has(code)) return true
  return (e as {$metadata?: {httpStatusCode?: number}} | undefined)?.$metadata?.httpStatusCode === 429
}

/** The part of the SDK client the driver uses: unit tests pass fakes with the same shape. */
export type Ec2Api = Pick<EC2Client, 'send'>

/** Builds the client for one (region, endpoint, profile). */
export type Ec2ClientFactory = (config: EC2ClientConfig) => Ec2Api

/** How many attempts the SDK's adaptive strategy makes per call (first one included). */
export const SDK_MAX_ATTEMPTS = 6

/**
 * The SDK client config for `settings`. Credentials are left to the SDK's default chain (env,
 * shared files and profiles, SSO, container and instance roles) unless `overrides` supplies them:
 * Belt never reads, stores or logs them. Retries use the SDK's adaptive mode, which also slows the
 * client's sending rate after throttling responses (shared by every call on the client).
 */
export function clientConfig(settings: Ec2Settings, overrides: Partial<EC2ClientConfig> = {}): EC2ClientConfig {
  return {
    region: settings.region,
    ...(settings.endpoint ? {endpoint: settings.endpoint} : {}),
    ...(settings.profile ? {profile: settings.profile} : {}),
    retryMode: 'adaptive',
    maxAttempts: SDK_MAX_ATTEMPTS,
    requestHandler: {connectionTimeout: 10_000, requestTimeout: 60_000},
    ...overrides,
  }
}

/** The real SDK client with Belt's counting middleware. */
export function sdkClient(config: EC2ClientConfig, stats: Ec2ApiStats): EC2Client {
  const client = new EC2Client(config)
  const kindOf = (context: {commandName?: string}) => (context.commandName ?? 'Unknown').replace(/Command$/, '')
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const kind = kindOf(context)
      bump(stats.commands, kind)
      try {
        const out = await next(args)
        stats.sdkRetries += Math.max(0, ((out.output as {$metadata?: {attempts?: number}}).$metadata?.attempts ?? 1) - 1)
        return out
      } catch (e) {
        stats.sdkRetries += Math.max(0, ((e as {$metadata?: {attempts?: number}}).$metadata?.attempts ?? 1) - 1)
        throw e
      }
    },
    {step: 'initialize', name: 'beltCountCommands', override: true},
  )
  // Inside the retry middleware: runs once per HTTP attempt.
  const perAttempt =
    (next: (args: unknown) => Promise<unknown>, context: {commandName?: string}) =>
    async (args: unknown): Promise<unknown> => {
      const kind = kindOf(context)
      bump(stats.requests, kind)
      try {
        return await next(args)
      } catch (e) {
        if (isThrottling(e)) bump(stats.throttled, kind)
        throw e
      }
    }
  client.middlewareStack.addRelativeTo(
    // The stack's overloads want a step-specific type; this one only passes values through.
    perAttempt as never,
    {relation: 'after', toMiddleware: 'retryMiddleware', name: 'beltCountRequests', override: true},
  )
  return client
}
