import type {DriverOptions} from '../../drivers/driver.js'
import pLimit from 'p-limit'
import {findDriver, type DriverEntry, type DriverLookup} from '../../drivers/registry.js'
import {cleanEngineCommand, privileged} from '../bootstrap/commands.js'
import {oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import {pidAlive} from '../store/batches.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {Reporter} from '../ui/reporter.js'
import {driverContext, hostDriverOptions, refuseMovedHosts} from './driver-context.js'
import type {HostOutcome} from './create-hosts.js'

/** Record writes at once in a bulk removal. */
const STORE_WRITES = 32

export interface RemoveHostsRequest {
  store: Store
  hosts: readonly HostRecord[]
  /** Forget the record even when the driver cannot remove the resource (already gone, no access). */
  force: boolean
  concurrency: number
  reporter: Reporter
  /** Driver option values from the environment (secrets are never in records). */
  env?: NodeJS.ProcessEnv
  /** Driver lookup; the registry unless a test injects fakes. */
  drivers?: DriverLookup
  /** The run's cancellation: after the first Ctrl-C no other host starts being removed. */
  signal?: AbortSignal
  /**
   * Before the driver forgets or destroys a bootstrapped host: stop its engine and remove Belt's
   * engine config and certificates over SSH (for machines that outlive their record: generic).
   */
  cleanHost?: boolean
}

/** Stops the engine of a bootstrapped host and removes Belt's files from it; a failure keeps the record. */
async function cleanHost(store: Store, r: HostRecord, signal?: AbortSignal): Promise<void> {
  if (!r.machine || !r.engine) return
  const {openHost} = await import('./host-access.js')
  const remote = await openHost(store, r, {signal})
  try {
    const res = await remote.exec(privileged(cleanEngineCommand(), r.machine.ssh.user), {timeoutMs: 120_000})
    if (res.code !== 0) throw new Error(`cleaning the engine off the host failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().split('\n').pop()}`)
  } finally {
    await remote.close()
  }
}

/**
 * Removes hosts: the driver's resource first, then the record. Hosts with a machine whose driver has
 * `removeMany` go in one call per driver and option values (DigitalOcean: one delete by tag when the
 * whole cluster goes; EC2: batched terminations), confirmed gone by the cloud before their records go;
 * the others one by one. When a driver's last host of a cluster is gone, its cluster-wide resources
 * (bridge, firewall, key) are removed too. Every host's outcome is returned; a failure keeps the
 * record (with the error) unless `force`.
 */
export async function removeHosts(req: RemoveHostsRequest): Promise<HostOutcome[]> {
  const {store, reporter} = req
  const lookup = req.drivers ?? findDriver
  // Before any API call: a host asked about at another endpoint would look gone and lose its record.
  refuseMovedHosts(req.hosts, {env: req.env, drivers: req.drivers})

  const removed = async (r: HostRecord): Promise<HostOutcome> => {
    await store.delete(r.name)
    reporter.host(r.name, 'removed')
    return {name: r.name, ok: true, phase: 'removing'}
  }
  const failed = async (r: HostRecord, e: unknown): Promise<HostOutcome> => {
    const message = oneLine(e)
    if (req.force) {
      const left = await store.tryGet(r.name).catch(() => undefined)
      const ids = [...(left?.machine ? [`${r.driver} ${left.machine.id}`] : []), ...(left?.resources ?? r.resources).map((x) => `${x.kind} ${x.id}`)]
      await store.delete(r.name)
      if (ids.length > 0)
        reporter.warn(`${r.name}: record removed (--force) although the driver could not remove it (${message}); these may still exist and cost money, remove them by hand: ${[...new Set(ids)].join(', ')}`)
      else reporter.host(r.name, `record removed (--force); the driver said: ${message}`)
      return {name: r.name, ok: true, phase: 'removing', error: message}
    }
    await store
      .update(r.name, (x) => {
        x.phase = 'error'
        x.error = {phase: 'removing', message, at: new Date().toISOString()}
      })
      .catch(() => undefined)
    reporter.host(r.name, `remove failed: ${message}`)
    return {name: r.name, ok: false, phase: 'error', error: message}
  }
  const check = (r: HostRecord) => {
    const entry = lookup(r.driver)
    if (!entry) throw new Error(`unknown driver '${r.driver}' (this belt knows no such driver)`)
    if (r.owner && pidAlive(r.owner.pid))
      throw new Error(`belt process ${r.owner.pid} is working on it (${r.phase}); stop that process first, or wait for it`)
    return entry
  }
  const storeLimit = pLimit(STORE_WRITES)
  const markRemoving = (r: HostRecord) =>
    store.update(r.name, (x) => {
      x.phase = 'removing'
    })

  // Work units: one per group of hosts a driver removes in bulk, one per other host. They go
  // through one window: after the first Ctrl-C no unit starts.
  type Unit = {bulk: {entry: DriverEntry; options: DriverOptions; hosts: HostRecord[]}} | {one: HostRecord}
  const units: Unit[] = []
  const groups = new Map<string, {entry: DriverEntry; options: DriverOptions; hosts: HostRecord[]}>()
  for (const r of req.hosts) {
    const entry = lookup(r.driver)
    const driver = r.machine && entry ? await entry.load().catch(() => undefined) : undefined
    if (!entry || !driver?.removeMany) {
      units.push({one: r})
      continue
    }
    let options: DriverOptions
    try {
      options = hostDriverOptions(entry, r, req.env)
    } catch {
      units.push({one: r})
      continue
    }
    const key = `${r.driver}\0${JSON.stringify(options)}`
    let g = groups.get(key)
    if (!g) {
      g = {entry, options, hosts: []}
      groups.set(key, g)
      units.push({bulk: g})
    }
    g.hosts.push(r)
  }

  const settled = await mapSettled(
    units,
    async (u): Promise<HostOutcome[]> => {
      if ('one' in u) {
        const r = u.one
        try {
          const entry = check(r)
          if (r.machine || r.phase !== 'reserved' || r.resources.length > 0) {
            const options = hostDriverOptions(entry, r, req.env)
            const ctx = await driverContext(store, r.driver, reporter, {host: r.name, signal: req.signal})
            if (req.cleanHost) {
              await cleanHost(store, r, req.signal)
              reporter.host(r.name, 'engine stopped, Belt\'s config and certificates removed')
            }
            await markRemoving(r)
            const driver = await entry.load()
            // A host whose create never returned a Machine: the driver removes what the journal
            // knows of it, and finds by name what it never learned.
            if (r.machine) await driver.remove(r.machine, options, ctx)
            else await driver.removeLeftovers({name: r.name, cluster: r.cluster}, r.resources, options, ctx)
          }
          return [await removed(r)]
        } catch (e) {
          return [await failed(r, e)]
        }
      }
      const {entry, options, hosts} = u.bulk
      const out: HostOutcome[] = []
      // Store writes (each under its host's lock, fsynced) run side by side: hundreds of hosts
      // one after the other would take longer than the cloud calls.
      const marked = await Promise.all(
        hosts.map((r) =>
          storeLimit(async () => {
            try {
              check(r)
              if (req.cleanHost) await cleanHost(store, r, req.signal)
              await markRemoving(r)
              return r
            } catch (e) {
              out.push(await failed(r, e))
              return undefined
            }
          }),
        ),
      )
      const go = marked.filter((r): r is HostRecord => r !== undefined)
      if (go.length === 0) return out
      let results: Array<Error | undefined>
      try {
        const driver = await entry.load()
        const ctx = await driverContext(store, entry.name, reporter, {signal: req.signal})
        results = await driver.removeMany!(go.map((r) => r.machine!), options, ctx)
      } catch (e) {
        results = go.map(() => (e instanceof Error ? e : new Error(String(e))))
      }
      out.push(
        ...(await Promise.all(
          go.map((r, i) => {
            const res = i < results.length ? results[i] : new Error('the driver returned no result for this host')
            return storeLimit(() => (res === undefined ? removed(r) : failed(r, res)))
          }),
        )),
      )
      return out
    },
    {concurrency: req.concurrency, signal: req.signal},
  )
  if (!req.signal?.aborted) await removeEmptyClusters(req)
  const byName = new Map<string, HostOutcome>()
  for (const s of settled) {
    if (s.ok) for (const o of s.value) byName.set(o.name, o)
    else {
      const unitHosts = 'one' in s.item ? [s.item.one] : s.item.bulk.hosts
      for (const h of unitHosts) byName.set(h.name, {name: h.name, ok: false, phase: h.phase, error: oneLine(s.error), interrupted: isInterruption(s.error)})
    }
  }
  return req.hosts.map((r) => byName.get(r.name) ?? {name: r.name, ok: false, phase: r.phase, error: 'not attempted'})
}

/** Calls `removeCluster` for each (driver, cluster) pair that has no host left. */
async function removeEmptyClusters(req: RemoveHostsRequest): Promise<void> {
  const {records} = await req.store.list()
  const pairs = new Map<string, HostRecord>()
  for (const r of req.hosts) pairs.set(`${r.driver}\0${r.cluster}`, r)
  for (const r of pairs.values()) {
    if (records.some((x) => x.driver === r.driver && x.cluster === r.cluster)) continue
    const entry = (req.drivers ?? findDriver)(r.driver)
    if (!entry) continue
    const driver = await entry.load()
    if (!driver.removeCluster) continue
    const options = hostDriverOptions(entry, r, req.env)
    const ctx = await driverContext(req.store, r.driver, req.reporter)
    try {
      await driver.removeCluster(r.cluster, options, ctx)
    } catch (e) {
      req.reporter.warn(`could not remove the ${r.driver} cluster resources of ${r.cluster}: ${oneLine(e)}`)
    }
  }
}
