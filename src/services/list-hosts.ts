import type {MachineState} from '../../drivers/driver.js'
import {findDriver, type DriverLookup} from '../../drivers/registry.js'
import {oneLine, usageError} from '../errors.js'
import {mapSettled} from '../scheduler/pool.js'
import type {CorruptRecord, Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {silentReporter} from '../ui/reporter.js'
import {hostCertWarning} from './cert-warnings.js'
import {driverContext, hostDriverOptions, refuseMovedHosts} from './driver-context.js'

/** One row of `belt ls`, also its --json shape. */
export interface HostView {
  name: string
  driver: string
  cluster: string
  /** Live state from the driver for created hosts; the record's phase otherwise. */
  state: string
  phase: HostRecord['phase']
  address?: string
  privateAddress?: string
  url?: string
  swarm?: string
  errors: string[]
}

/** `--filter key=value`: driver, state, name (glob), cluster. Several filters all apply. */
export function parseFilters(filters: readonly string[]): ((h: HostView) => boolean)[] {
  return filters.map((f) => {
    const m = /^(driver|state|name|cluster)=(.*)$/.exec(f)
    if (!m) throw usageError(`unknown filter '${f}'`, 'E_FILTER', 'use driver=NAME, state=STATE, name=GLOB or cluster=NAME')
    const [, key, value] = m as unknown as [string, 'driver' | 'state' | 'name' | 'cluster', string]
    if (key === 'name') {
      const re = new RegExp('^' + value.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
      return (h: HostView) => re.test(h.name)
    }
    return (h: HostView) => h[key].toLowerCase() === value.toLowerCase()
  })
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** Live state of one host; errors become state 'error' with the message. */
export async function liveState(store: Store, r: HostRecord, env?: NodeJS.ProcessEnv, drivers: DriverLookup = findDriver): Promise<{state: MachineState | HostRecord['phase']; error?: string}> {
  if (!r.machine || r.phase === 'creating' || r.phase === 'removing') return {state: r.phase}
  const entry = drivers(r.driver)
  if (!entry) return {state: 'error', error: `unknown driver '${r.driver}'`}
  refuseMovedHosts([r], {env, drivers})
  try {
    const options = hostDriverOptions(entry, r, env)
    const driver = await entry.load()
    const ctx = await driverContext(store, r.driver, silentReporter, {host: r.name})
    const state = await withTimeout(driver.state(r.machine, options, ctx), 20_000, 'state query timed out after 20 s')
    return {state}
  } catch (e) {
    return {state: 'error', error: oneLine(e)}
  }
}

/** Every host with its live state, queried through a bounded pool. */
export async function listHosts(store: Store, opts: {concurrency?: number; env?: NodeJS.ProcessEnv; drivers?: DriverLookup} = {}): Promise<{hosts: HostView[]; corrupt: CorruptRecord[]}> {
  const {records, corrupt} = await store.list()
  refuseMovedHosts(records, {env: opts.env, drivers: opts.drivers})
  const settled = await mapSettled(records, (r) => liveState(store, r, opts.env, opts.drivers), {concurrency: opts.concurrency ?? 16})
  const hosts = settled.map((s, i): HostView => {
    const r = records[i]!
    const live = s.ok ? s.value : {state: 'error' as const, error: oneLine(s.error)}
    const errors: string[] = []
    if (r.error) errors.push(`${r.error.phase}: ${r.error.message}`)
    if (live.error) errors.push(live.error)
    const cert = hostCertWarning(r)
    if (cert) errors.push(cert)
    return {
      name: r.name,
      driver: r.driver,
      cluster: r.cluster,
      state: capital(live.state),
      phase: r.phase,
      address: r.machine?.address,
      privateAddress: r.machine?.privateAddress,
      url: typeof r.engine?.url === 'string' ? r.engine.url : undefined,
      swarm: typeof r.swarm?.role === 'string' ? r.swarm.role : undefined,
      errors,
    }
  })
  return {hosts, corrupt}
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer))
}
