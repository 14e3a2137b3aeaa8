import type {DriverOptions, MachineState} from '../../drivers/driver.js'
import {findDriver, type DriverEntry, type DriverLookup} from '../../drivers/registry.js'
import {oneLine, usageError} from '../errors.js'
import {mapSettled} from '../scheduler/pool.js'
import type {CorruptRecord, Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {seconds, silentReporter} from '../ui/reporter.js'
import {hostCertWarning} from './cert-warnings.js'
import {driverContext, hostDriverOptions, refuseMovedHosts} from './driver-context.js'
import {activeHost, engineVersions, readClientTls} from './machine-info.js'

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
  /** Engine labels (`--engine-label`, and `provider=<driver>`), for `--filter label=KEY[=VALUE]`. */
  labels: string[]
  /** True when DOCKER_HOST points at this host's engine (docker-machine's ACTIVE column). */
  active: boolean
  /** The engine's version read live (`ls` only, the DOCKER column); `Unknown` when it could not be read, '' without an engine. */
  dockerVersion?: string
  /** How long the engine took to answer the version call, ms. */
  responseMs?: number
  errors: string[]
}

/**
 * `--filter key=value`: driver, state, name (glob), cluster, swarm (role), label=KEY[=VALUE]
 * (docker-machine's). Several filters all apply, except that several of one key match any of them
 * (docker-machine's rule: `--filter state=running --filter state=stopped`).
 */
export function parseFilters(filters: readonly string[]): ((h: HostView) => boolean)[] {
  const byKey = new Map<string, ((h: HostView) => boolean)[]>()
  for (const f of filters) {
    const m = /^(driver|state|name|cluster|swarm|label)=(.*)$/.exec(f)
    if (!m) throw usageError(`unknown filter '${f}'`, 'E_FILTER', 'use driver=NAME, state=STATE, name=GLOB, cluster=NAME, swarm=ROLE or label=KEY[=VALUE]')
    byKey.set(m[1]!, [...(byKey.get(m[1]!) ?? []), filterOf(m[1] as FilterKey, m[2]!)])
  }
  return [...byKey.values()].map((any) => (h: HostView) => any.some((f) => f(h)))
}

type FilterKey = 'driver' | 'state' | 'name' | 'cluster' | 'swarm' | 'label'

function filterOf(key: FilterKey, value: string): (h: HostView) => boolean {
  if (key === 'label') {
    if (!value) throw usageError('empty label filter', 'E_FILTER', 'use label=KEY or label=KEY=VALUE')
    return (h: HostView) => h.labels.some((l) => (value.includes('=') ? l === value : l === value || l.startsWith(value + '=')))
  }
  if (key === 'swarm') return (h: HostView) => (h.swarm ?? '').toLowerCase() === value.toLowerCase()
  if (key === 'name') {
    const re = new RegExp('^' + value.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
    return (h: HostView) => re.test(h.name)
  }
  return (h: HostView) => h[key].toLowerCase() === value.toLowerCase()
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** A host's live state: the driver's, the record's phase for hosts not created, or 'unknown' (with the reason) when it could not be read. */
export type LiveState = {state: MachineState | HostRecord['phase'] | 'unknown'; error?: string}

export interface LiveStateOptions {
  env?: NodeJS.ProcessEnv
  drivers?: DriverLookup
  /** The whole query's bound: hosts not read by then are 'unknown' (default 20 s). */
  timeoutMs?: number
  /** Per-host state calls at once, for drivers without `states` (default 16). */
  concurrency?: number
}

/**
 * Live states of many hosts with as few cloud calls as the drivers allow: hosts are grouped by
 * driver and option values (the pinned ones say where they live), and a driver with `states` reads
 * each group in one call (one list per cluster); a driver without it (local: no API) is asked host by
 * host through a bounded pool. The whole query is bounded by `timeoutMs`: a host whose state could not
 * be read by then, or whose driver failed to read it, is 'unknown' with the reason, never 'error'.
 */
export async function liveStates(store: Store, records: readonly HostRecord[], opts: LiveStateOptions = {}): Promise<LiveState[]> {
  const drivers = opts.drivers ?? findDriver
  const timeoutMs = opts.timeoutMs ?? 20_000
  const out: Array<LiveState | undefined> = records.map(() => undefined)
  refuseMovedHosts(records, {env: opts.env, drivers})
  const groups = new Map<string, {entry: DriverEntry; options: DriverOptions; idx: number[]}>()
  records.forEach((r, i) => {
    if (!r.machine || r.phase === 'creating' || r.phase === 'removing') return void (out[i] = {state: r.phase})
    const entry = drivers(r.driver)
    if (!entry) return void (out[i] = {state: 'unknown', error: `unknown driver '${r.driver}'`})
    let options: DriverOptions
    try {
      options = hostDriverOptions(entry, r, opts.env)
    } catch (e) {
      return void (out[i] = {state: 'unknown', error: oneLine(e)})
    }
    const key = `${r.driver}\0${JSON.stringify(options)}`
    const g = groups.get(key) ?? {entry, options, idx: []}
    g.idx.push(i)
    groups.set(key, g)
  })
  const signal = AbortSignal.timeout(timeoutMs)
  const unknown = (i: number, e: unknown) => (out[i] ??= {state: 'unknown', error: oneLine(e)})
  const work = Promise.all(
    [...groups.values()].map(async ({entry, options, idx}) => {
      try {
        const driver = await entry.load()
        const ctx = await driverContext(store, entry.name, silentReporter, {signal})
        const machines = idx.map((i) => records[i]!.machine!)
        if (driver.states) {
          const states = await driver.states(machines, options, ctx)
          idx.forEach((i, k) => {
            const st = states[k]
            if (st === undefined) unknown(i, 'the driver returned no state for this host')
            else if (st instanceof Error) unknown(i, st)
            else out[i] ??= {state: st}
          })
          return
        }
        await mapSettled(
          idx,
          async (i) => {
            try {
              out[i] ??= {state: await driver.state(records[i]!.machine!, options, {...ctx})}
            } catch (e) {
              unknown(i, e)
            }
          },
          {concurrency: opts.concurrency ?? 16, signal},
        )
      } catch (e) {
        for (const i of idx) unknown(i, e)
      }
    }),
  )
  let timer: NodeJS.Timeout | undefined
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))])
  clearTimeout(timer)
  const late = `state not read within ${seconds(timeoutMs).replace(/\.0+ s$/, ' s')}`
  return out.map((x) => x ?? {state: 'unknown', error: late})
}

/** Live state of one host (see {@link liveStates}): 'unknown' with the reason when it cannot be read. */
export async function liveState(store: Store, r: HostRecord, env?: NodeJS.ProcessEnv, drivers: DriverLookup = findDriver): Promise<LiveState> {
  const [x] = await liveStates(store, [r], {env, drivers})
  return x!
}

export interface ListHostsOptions extends LiveStateOptions {
  /**
   * Also read each running engine's version (the DOCKER column): one Engine API call per host
   * through a bounded window, within what is left of `timeoutMs` after the states.
   */
  engineVersions?: boolean
}

/** Every host with its live state (see {@link liveStates}); `timeoutMs` bounds the whole listing. */
export async function listHosts(store: Store, opts: ListHostsOptions = {}): Promise<{hosts: HostView[]; corrupt: CorruptRecord[]}> {
  const started = Date.now()
  const timeoutMs = opts.timeoutMs ?? 20_000
  const {records, corrupt} = await store.list()
  const live = await liveStates(store, records, opts)
  const active = activeHost(records, (opts.env ?? process.env).DOCKER_HOST)
  const docker = opts.engineVersions
    ? await engineVersions(
        records,
        live.map((l) => l.state === 'running'),
        {timeoutMs: Math.max(1, started + timeoutMs - Date.now()), tls: () => readClientTls(store), concurrency: opts.concurrency},
      )
    : undefined
  const hosts = records.map((r, i): HostView => {
    const l = live[i]!
    const errors: string[] = []
    if (r.error) errors.push(`${r.error.phase}: ${r.error.message}`)
    if (l.error) errors.push(l.error)
    const d = docker?.[i]
    if (d && 'error' in d) errors.push(d.error)
    const cert = hostCertWarning(r)
    if (cert) errors.push(cert)
    return {
      name: r.name,
      driver: r.driver,
      cluster: r.cluster,
      state: capital(l.state),
      phase: r.phase,
      address: r.machine?.address,
      privateAddress: r.machine?.privateAddress,
      url: typeof r.engine?.url === 'string' ? r.engine.url : undefined,
      swarm: typeof r.swarm?.role === 'string' ? r.swarm.role : undefined,
      labels: [...new Set([...(r.engine?.labels ?? []), ...(r.engine?.config.labels ?? [])])],
      active: r === active,
      ...(d ? {dockerVersion: d.version, ...('ms' in d ? {responseMs: d.ms} : {})} : {}),
      errors,
    }
  })
  return {hosts, corrupt}
}
