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
  load(): Promise<Driver>
}

export const drivers: readonly DriverEntry[] = [
  {
    name: 'local',
    description: localDescription,
    options: localOptions,
    load: async () => (await import('./local/index.js')).createLocalDriver(),
  },
]

export const driverNames = (): string[] => drivers.map((d) => d.name)

export function findDriver(name: string): DriverEntry | undefined {
  return drivers.find((d) => d.name === name)
}

/** `--<driver>-<option>` */
export const flagName = (driver: string, option: string): string => `${driver}-${option}`
