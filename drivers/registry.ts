import type {Driver, DriverOption} from './driver.js'
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
]

export const driverNames = (): string[] => drivers.map((d) => d.name)

/** How services find a driver by name; tests pass a lookup that returns fakes. */
export type DriverLookup = (name: string) => DriverEntry | undefined

export function findDriver(name: string): DriverEntry | undefined {
  return drivers.find((d) => d.name === name)
}

/** `--<driver>-<option>` */
export const flagName = (driver: string, option: string): string => `${driver}-${option}`
