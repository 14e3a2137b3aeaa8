import {findDriver, type DriverLookup} from '../../drivers/registry.js'
import {oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import {pidAlive} from '../store/batches.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {Reporter} from '../ui/reporter.js'
import {driverContext, hostDriverOptions, refuseMovedHosts} from './driver-context.js'
import type {HostOutcome} from './create-hosts.js'

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
}

/**
 * Removes hosts: the driver's resource first, then the record. When a driver's last host of a
 * cluster is gone, its cluster-wide resources (bridge, firewall, key) are removed too. Every host's
 * outcome is returned; a failure keeps the record (with the error) unless `force`.
 */
export async function removeHosts(req: RemoveHostsRequest): Promise<HostOutcome[]> {
  const {store, reporter} = req
  // Before any API call: a host asked about at another endpoint would look gone and lose its record.
  refuseMovedHosts(req.hosts, {env: req.env, drivers: req.drivers})
  const settled = await mapSettled(
    req.hosts,
    async (r): Promise<HostOutcome> => {
      const entry = (req.drivers ?? findDriver)(r.driver)
      try {
        if (!entry) throw new Error(`unknown driver '${r.driver}' (this belt knows no such driver)`)
        if (r.owner && pidAlive(r.owner.pid))
          throw new Error(`belt process ${r.owner.pid} is working on it (${r.phase}); stop that process first, or wait for it`)
        if (r.machine || r.phase !== 'reserved' || r.resources.length > 0) {
          const options = hostDriverOptions(entry, r, req.env)
          const ctx = await driverContext(store, r.driver, reporter, {host: r.name, signal: req.signal})
          await store.update(r.name, (x) => {
            x.phase = 'removing'
          })
          const driver = await entry.load()
          // A host whose create never returned a Machine: the driver removes what the journal
          // knows of it, and finds by name what it never learned.
          if (r.machine) await driver.remove(r.machine, options, ctx)
          else await driver.removeLeftovers({name: r.name, cluster: r.cluster}, r.resources, options, ctx)
        }
        await store.delete(r.name)
        reporter.host(r.name, 'removed')
        return {name: r.name, ok: true, phase: 'removing'}
      } catch (e) {
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
    },
    {concurrency: req.concurrency, signal: req.signal},
  )
  if (!req.signal?.aborted) await removeEmptyClusters(req)
  return settled.map((s) => (s.ok ? s.value : {name: s.item.name, ok: false, phase: s.item.phase, error: oneLine(s.error), interrupted: isInterruption(s.error)}))
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
