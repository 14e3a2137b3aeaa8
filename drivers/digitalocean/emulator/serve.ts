/**
 * What `belt emulator digitalocean` does: checks its settings, prepares the backing driver, serves
 * the emulator on 127.0.0.1 until SIGINT/SIGTERM (or `signal`), then removes every host it made.
 */
import path from 'node:path'
import {usageError} from '../../../src/errors.js'
import type {Backing, DriverOptions} from '../../driver.js'
import {backingContext} from './context.js'
import {waitForStop} from '../../emulator-kit.js'
import {parseRateLimit} from './limiter.js'
import {startEmulator, type EmulatorHandle} from './server.js'
import {createSimulatedBacking} from './simulated-backing.js'

export interface ServeSettings {
  port: number
  bootDelayMs: number
  rateLimit: string
  fault429: string
  fault5xx: string
  faultNeverActive: string
  backing: 'local' | 'simulated'
  localSubnet: string
  /** Belt's store directory: the backing's state lives in `<store>/drivers/emulator-digitalocean`. */
  storeDir: string
  seed: number
  dropletLimit: number
  rejectTokens: readonly string[]
}

/** A fraction in [0, 1] from a flag. */
function rate(flag: string, text: string): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw usageError(`--${flag} must be a fraction between 0 and 1, got '${text}'`, 'E_EMULATOR_FLAG', 'e.g. 0.05 for 5%')
  return n
}

async function loadBacking(s: ServeSettings): Promise<{driver: Backing; options: DriverOptions}> {
  if (s.backing === 'simulated') return {driver: createSimulatedBacking(), options: {}}
  const {createLocalDriver} = await import('../../local/index.js')
  return {driver: createLocalDriver(), options: {subnet: s.localSubnet}}
}

/** Starts the emulator and resolves once it has stopped and removed its hosts. */
export async function serveEmulator(
  s: ServeSettings,
  io: {out: (line: string) => void; err: (line: string) => void},
  signal?: AbortSignal,
): Promise<void> {
  const limit = parseRateLimit(s.rateLimit)
  if (typeof limit === 'string') throw usageError(`--rate-limit: ${limit}`, 'E_EMULATOR_FLAG', 'e.g. 5000/h,250/min')
  const faults = {rate429: rate('fault-429', s.fault429), rate5xx: rate('fault-5xx', s.fault5xx), neverActive: rate('fault-never-active', s.faultNeverActive)}
  const {driver, options} = await loadBacking(s)
  const ctx = await backingContext(path.join(s.storeDir, 'drivers', 'emulator-digitalocean'), (m) => io.err(`backing: ${m}`))
  await driver.preflight(options, ctx)

  const emu: EmulatorHandle = await startEmulator({
    port: s.port,
    backing: driver,
    backingOptions: options,
    backingContext: ctx,
    backingConcurrency: s.backing === 'local' ? 8 : 64,
    bootDelayMs: s.bootDelayMs,
    rateLimit: limit,
    faults,
    seed: s.seed,
    dropletLimit: s.dropletLimit,
    rejectTokens: s.rejectTokens,
    log: (line) => io.err(line),
  })
  io.err(
    `DigitalOcean emulator on ${emu.url} (backing: ${s.backing}${s.backing === 'local' ? ` ${s.localSubnet}` : ''}; ` +
      `rate limit ${limit.perHour}/h, ${limit.perMinute}/min; any non-empty token is accepted). Ctrl-C stops it and removes its hosts.`,
  )
  io.out(`DIGITALOCEAN_API_URL=${emu.url}`)

  const stopping = await waitForStop(signal)
  io.err(`stopping: removing ${emu.droplets().length} droplet host(s)`)
  await emu.close()
  io.err(`stopped after ${emu.stats.requests} requests (${emu.stats.dropletsCreated} droplets created)`)
  stopping.done()
}
