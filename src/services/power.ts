import type {Machine, PowerAction} from '../../drivers/driver.js'
import {findDriver, type DriverLookup} from '../../drivers/registry.js'
import {ExitCode, UserError, oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {Reporter} from '../ui/reporter.js'
import type {HostOutcome} from './create-hosts.js'
import {driverContext, hostDriverOptions, refuseMovedHosts} from './driver-context.js'

const PAST: Record<PowerAction, string> = {start: 'started', stop: 'stopped', restart: 'restarted', kill: 'killed'}

/**
 * start / stop / restart / kill on hosts whose driver has that optional capability. A driver without
 * it is refused up front (nothing changes), naming the driver and the action.
 */
export async function powerHosts(req: {
  store: Store
  hosts: readonly HostRecord[]
  action: PowerAction
  concurrency: number
  reporter: Reporter
  env?: NodeJS.ProcessEnv
  drivers?: DriverLookup
  /** The run's cancellation: after the first Ctrl-C no other host is started on. */
  signal?: AbortSignal
}): Promise<HostOutcome[]> {
  const {store, reporter, action} = req
  const findDriver_ = req.drivers ?? findDriver
  refuseMovedHosts(req.hosts, {env: req.env, drivers: findDriver_})
  for (const r of req.hosts) {
    const entry = findDriver_(r.driver)
    const driver = entry && (await entry.load())
    if (!driver || typeof driver[action] !== 'function')
      throw new UserError(`the ${r.driver} driver cannot ${action} hosts (${r.name})`, {code: 'E_UNSUPPORTED', exit: ExitCode.usage})
    if (!r.machine)
      throw new UserError(`${r.name} was never created (its state is ${r.phase})`, {
        code: 'E_NOT_CREATED',
        exit: ExitCode.usage,
        hint: `create it with belt create --driver ${r.driver} ${r.name}, or remove it with belt rm ${r.name}`,
      })
  }
  const settled = await mapSettled(
    req.hosts,
    async (r): Promise<HostOutcome> => {
      const entry = findDriver_(r.driver)!
      const driver = await entry.load()
      const options = hostDriverOptions(entry, r, req.env)
      const ctx = await driverContext(store, r.driver, reporter, {host: r.name, signal: req.signal})
      const fn = driver[action]!.bind(driver) as (m: Machine, o: typeof options, c: typeof ctx) => Promise<Machine | void>
      const out = await fn(r.machine!, options, ctx)
      if (out) {
        await store.update(r.name, (x) => {
          x.machine = out
          if (out.hostKeys?.length) x.hostKeys = [...out.hostKeys]
        })
      }
      reporter.host(r.name, PAST[action])
      return {name: r.name, ok: true, phase: r.phase, address: (out || r.machine)?.address}
    },
    {concurrency: req.concurrency, signal: req.signal},
  )
  return settled.map((s) => {
    if (s.ok) return s.value
    const error = oneLine(s.error)
    if (isInterruption(s.error)) return {name: s.item.name, ok: false, phase: s.item.phase, error, interrupted: true}
    reporter.host(s.item.name, `${action} failed: ${error}`)
    return {name: s.item.name, ok: false, phase: s.item.phase, error}
  })
}
