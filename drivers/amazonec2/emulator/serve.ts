/**
 * What `belt emulator ec2` does: checks its settings, prepares the backing driver, serves the
 * emulator on 127.0.0.1 until SIGINT/SIGTERM (or `signal`), then removes every host it made.
 */
import {stat} from 'node:fs/promises'
import path from 'node:path'
import {environmentError, usageError} from '../../../src/errors.js'
import type {Backing, DriverOptions} from '../../driver.js'
import {backingContext, waitForStop} from '../../emulator-kit.js'
import {usageBanner} from './index.js'
import {Ec2Emulator, parseRate} from './server.js'
import {createSimulatedBacking} from './simulated-backing.js'

export interface Ec2ServeSettings {
  port: number
  bootDelayMs: number
  /** `N/s` or `N`; 0 for no limit. */
  rateLimit: string
  faultThrottle: string
  faultCapacity: string
  backing: 'local' | 'simulated'
  localSubnet: string
  /** Belt's store directory: the backing's state lives in `<store>/drivers/emulator-amazonec2`. */
  storeDir: string
  seed: number
}

/** A fraction in [0, 1] from a flag. */
function fraction(flag: string, text: string): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw usageError(`--${flag} must be a fraction between 0 and 1, got '${text}'`, 'E_EMULATOR_FLAG', 'e.g. 0.05 for 5%')
  return n
}

async function loadBacking(s: Ec2ServeSettings): Promise<{driver: Backing; options: DriverOptions; vpcCidr: string}> {
  if (s.backing === 'simulated') return {driver: createSimulatedBacking(), options: {}, vpcCidr: '172.31.0.0/16'}
  const {createLocalDriver} = await import('../../local/index.js')
  // The local hosts' bridge addresses are the instances' private addresses: the VPC is that subnet.
  return {driver: createLocalDriver(), options: {subnet: s.localSubnet}, vpcCidr: s.localSubnet}
}

/** The images log in as ubuntu and bootstrap through sudo: the local hosts need the real one (setuid root). */
async function requireSudo(): Promise<void> {
  const st = await stat('/usr/bin/sudo').catch(() => undefined)
  if (!st || st.uid !== 0 || (st.mode & 0o4000) === 0)
    throw environmentError('the EC2 emulator\'s local hosts log in as ubuntu and use sudo, and this machine has no sudo', 'E_EMULATOR_SUDO', 'install it: apt-get install sudo (scripts/setup.sh does)')
}

/** Starts the emulator and resolves once it has stopped and removed its hosts. */
export async function serveEc2Emulator(s: Ec2ServeSettings, io: {out: (line: string) => void; err: (line: string) => void}, signal?: AbortSignal): Promise<void> {
  let rateLimit: number
  try {
    rateLimit = parseRate(s.rateLimit)
  } catch {
    throw usageError(`--rate-limit must be N or N/s, got '${s.rateLimit}'`, 'E_EMULATOR_FLAG', 'e.g. 20/s; 0 for no limit')
  }
  const faultThrottle = fraction('fault-throttle', s.faultThrottle)
  const faultCapacity = fraction('fault-capacity', s.faultCapacity)
  const {driver, options, vpcCidr} = await loadBacking(s)
  const ctx = await backingContext(path.join(s.storeDir, 'drivers', 'emulator-amazonec2'), (m) => io.err(`backing: ${m}`))
  await driver.preflight(options, ctx)
  if (s.backing === 'local') await requireSudo()

  const emu = await Ec2Emulator.start({
    port: s.port,
    backing: driver,
    backingOptions: options,
    backingContext: ctx,
    bootDelayMs: s.bootDelayMs,
    rateLimit,
    faultThrottle,
    faultCapacity,
    seed: s.seed,
    vpcCidr,
    log: (line) => io.err(line),
  })
  io.err(usageBanner(emu.endpoint, s.backing === 'local' ? `local (${s.localSubnet})` : 'simulated'))
  io.err(`rate limit: ${rateLimit ? `${rateLimit}/s` : 'none'}; faults: throttle ${faultThrottle}, capacity ${faultCapacity}`)
  io.out(`AMAZONEC2_ENDPOINT=${emu.endpoint}`)

  const stopping = await waitForStop(signal)
  io.err(`stopping: removing ${emu.cloud.liveInstances()} instance host(s)`)
  await emu.close()
  const total = Object.values(emu.stats.requests).reduce((a, b) => a + b, 0)
  io.err(`stopped after ${total} requests (${emu.stats.rateLimited} rate-limited, ${emu.stats.throttleFaults} throttle faults)`)
  stopping.done()
}
