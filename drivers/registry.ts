import type {Driver, DriverOption} from './driver.js'
import {amazonec2Description, amazonec2Options} from './amazonec2/options.js'
import {digitaloceanDescription, digitaloceanOptions} from './digitalocean/options.js'
import {genericDescription, genericOptions} from './generic/options.js'
import {localOptions, localDescription} from './local/options.js'

/**
 * Maps driver names to their option declarations (cheap, needed to build flags) and a lazy loader
 * for the implementation (which may pull a cloud SDK).
 */
export interface DriverEntry {
  readonly name: string
  readonly description: string
  readonly options: readonly DriverOption[]
  /**
   * How many hosts' creates are in flight at once by default: what the backend sustains. For cloud
   * drivers it follows from {@link apiBudget} ({@link createWindow}): waits for boot hold no API
   * budget (readiness is one list call per cluster per interval), so the window is what the create
   * requests of one minute of budget make. `belt create -c N` caps it.
   */
  readonly createConcurrency: number
  /** The cloud's API budget for one account or token (cloud drivers). */
  readonly apiBudget?: ApiBudget
  /** How many hosts bootstrap at once by default (SSH sessions, engine starts). */
  readonly bootstrapConcurrency: number
  /** Hosts per `createMany` call, for drivers that have it (the cloud's batch maximum or less). */
  readonly createBatchSize?: number
  load(): Promise<Driver>
}

/** What a cloud lets one account or token do, as the driver paces it. */
export interface ApiBudget {
  /** Requests per minute (DigitalOcean: 250 per token; EC2: the account's request-rate buckets). */
  readonly perMinute: number
  /** Requests per hour, when the cloud has an hourly limit too (DigitalOcean: 5,000). */
  readonly perHour?: number
  /** Hosts one create request makes at most (DigitalOcean: 10 names; EC2: RunInstances MaxCount, Belt's batch). */
  readonly hostsPerCreate: number
}

/** Most hosts in flight whatever the budget: each one is a record, a promise and a TCP probe here. */
export const MAX_CREATE_WINDOW = 1000

/**
 * Hosts whose creates may be in flight at once within `budget`: the create requests half a
 * minute's budget allows (the other half is kept for readiness lists, retries and other belt
 * processes of the same account), and no more than a tenth of the hourly budget, times the hosts
 * each request makes; at most {@link MAX_CREATE_WINDOW}. The driver's client paces the requests
 * themselves, so the window only bounds how much is outstanding.
 */
export function createWindow(budget: ApiBudget): number {
  const requests = Math.min(Math.floor(budget.perMinute / 2), budget.perHour ? Math.floor(budget.perHour / 10) : Infinity)
  return Math.max(1, Math.min(MAX_CREATE_WINDOW, requests * budget.hostsPerCreate))
}

const doBudget: ApiBudget = {perMinute: 250, perHour: 5000, hostsPerCreate: 10}
// EC2 throttles by token buckets per action family (describe calls refill at 20/s, the emulator's
// account-wide default); the driver's client paces itself at 16/s. RunInstances makes 50 hosts.
const ec2Budget: ApiBudget = {perMinute: 960, hostsPerCreate: 50}

export const drivers: readonly DriverEntry[] = [
  {
    name: 'local',
    description: localDescription,
    options: localOptions,
    // sshd-only local hosts start at ~7/s on 2 cores with 8-16 in flight (measured with bench/create-local).
    createConcurrency: 8,
    // Every engine start is CPU on this same machine (~0.5 s of dockerd start-up each).
    bootstrapConcurrency: 8,
    load: async () => (await import('./local/index.js')).createLocalDriver(),
  },
  {
    name: 'digitalocean',
    description: digitaloceanDescription,
    options: digitaloceanOptions,
    // 250/min, 5,000/h, 10 names per create request: 1,000 hosts in flight (bench/scale.ts).
    apiBudget: doBudget,
    createConcurrency: createWindow(doBudget),
    createBatchSize: 10,
    // Bootstrap work runs on the droplets; here it is one SSH session and one certificate per host.
    bootstrapConcurrency: 16,
    load: async () => (await import('./digitalocean/index.js')).createDigitalOceanDriver(),
  },
  {
    name: 'amazonec2',
    description: amazonec2Description,
    options: amazonec2Options,
    // A create is mostly waiting for boot and SSH (tens of seconds on EC2), and one shared poller
    // serves all creates in flight: the window follows the RunInstances budget (bench/scale.ts).
    apiBudget: ec2Budget,
    createConcurrency: createWindow(ec2Budget),
    // Bootstrap work runs on the instances; here it is one SSH session and one certificate per host.
    bootstrapConcurrency: 16,
    // RunInstances takes many; 50 keeps one failed call's blast radius small.
    createBatchSize: 50,
    // One driver object per process: one SDK client (one adaptive rate limiter) and one poller.
    load: async () => (await import('./amazonec2/index.js')).defaultAmazonEc2Driver(),
  },
  {
    name: 'generic',
    description: genericDescription,
    options: genericOptions,
    // A create is one SSH login per host (sudo check, host keys): cheap here, any number at once.
    createConcurrency: 16,
    // Engine installs and starts run on the hosts; here it is one SSH session per host.
    bootstrapConcurrency: 16,
    load: async () => (await import('./generic/index.js')).createGenericDriver(),
  },
]

export const driverNames = (): string[] => drivers.map((d) => d.name)

/** How services find a driver by name; tests pass a lookup that returns fakes. */
export type DriverLookup = (name: string) => DriverEntry | undefined

export function findDriver(name: string): DriverEntry | undefined {
  return drivers.find((d) => d.name === name)
}

/** `--<driver>-<option>` */
export const flagName = (driver: string, option: string): string => `${driver}-${option}`
