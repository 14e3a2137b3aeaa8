import {findDriver, type DriverLookup} from '../../drivers/registry.js'
import {oneLine} from '../errors.js'
import {mapSettled} from '../scheduler/pool.js'
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
        if (r.machine) {
          const options = hostDriverOptions(entry, r, req.env)
          const ctx = await driverContext(store, r.driver, reporter, {host: r.name})
          await store.update(r.name, (x) => {
            x.phase = 'removing'
          })
          const driver = await entry.load()
          await driver.remove(r.machine, options, ctx)
        } else if (r.resources.length > 0 && !req.force) {
          throw new Error(
            `an interrupted create left ${r.resources.map((x) => `${x.kind} ${x.id}`).join(', ')} with no machine record; remove it by hand, then run belt rm --force ${r.name}`,
          )
        }
        await store.delete(r.name)
        reporter.host(r.name, 'removed')
        return {name: r.name, ok: true, phase: 'removing'}
      } catch (e) {
        const message = oneLine(e)
        if (req.force) {
          await store.delete(r.name)
          reporter.host(r.name, `record removed (--force); the driver said: ${message}`)
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
    {concurrency: req.concurrency},
  )
  await removeEmptyClusters(req)
  return settled.map((s) => (s.ok ? s.value : {name: s.item.name, ok: false, phase: 'error', error: oneLine(s.error)}))
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
