import type {Driver, DriverOption} from './driver.js'
import {amazonec2Description, amazonec2Options} from './amazonec2/options.js'
import {digitaloceanDescription, digitaloceanOptions} from './digitalocean/options.js'
import {localOptions, localDescription} from './local/options.js'

/**
 * Maps driver names to their option declarations (cheap, needed to build flags) and a lazy loader
 * for the implementation (which may pull a cloud SDK).
 */
export interface DriverEntry {
  readonly name: string
  readonly description: string
  readonly options: readonly DriverOption[]
  /** How many creates run at once by default: what the backend sustains (measured, not guessed). */
  readonly createConcurrency: number
  /** How many hosts bootstrap at once by default (SSH sessions, engine starts). */
  readonly bootstrapConcurrency: number
  /** Hosts per `createMany` call, for drivers that have it (the cloud's batch maximum or less). */
  readonly createBatchSize?: number
  load(): Promise<Driver>
}

export const drivers: readonly DriverEntry[] = [
  {
    name: 'local',
    description: localDescription,
    options: localOptions,
    // sshd-only local hosts start at ~7/s on 2 cores with 8-16 in flight (shared/notes/local-hosts.md §4).
    createConcurrency: 8,
    // Every engine start is CPU on this same machine (~0.5 s of dockerd start-up each).
    bootstrapConcurrency: 8,
    load: async () => (await import('./local/index.js')).createLocalDriver(),
  },
  {
    name: 'digitalocean',
    description: digitaloceanDescription,
    options: digitaloceanOptions,
    // Rehearsal (bench/do-rehearsal): 300 droplets in 25 s with 10 names per create request, with
    // 0 429s at the real 250 requests/min; 30 at once is three full multi-create requests.
    createConcurrency: 30,
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
    // serves all creates in flight. Rehearsal: 300 instances at 32 at once against a 20 req/s limit
    // with 5% throttling and 2% capacity faults: all created, no retry of Belt's own needed.
    createConcurrency: 32,
    // Bootstrap work runs on the instances; here it is one SSH session and one certificate per host.
    bootstrapConcurrency: 16,
    // RunInstances takes many; 50 keeps one failed call's blast radius small.
    createBatchSize: 50,
    // One driver object per process: one SDK client (one adaptive rate limiter) and one poller.
    load: async () => (await import('./amazonec2/index.js')).defaultAmazonEc2Driver(),
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
