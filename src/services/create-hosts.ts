import type {Driver, DriverOptions, Machine} from '../../drivers/driver.js'
import type {DriverEntry} from '../../drivers/registry.js'
import {oneLine, usageError} from '../errors.js'
import {expandNames, nextNames, summarizeNames} from '../names.js'
import {mapSettled, type Settled} from '../scheduler/pool.js'
import {newRecord, type Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {seconds, type Reporter} from '../ui/reporter.js'
import {ensureClusterKey} from './cluster-key.js'
import {driverContext} from './driver-context.js'

/** Which hosts to create: explicit names/patterns, or `--count N --prefix P`. */
export type HostSelection = {patterns: readonly string[]} | {count: number; prefix: string}

export interface CreateHostsRequest {
  store: Store
  driver: DriverEntry
  options: DriverOptions
  /** Non-secret options, saved in each record. */
  persistable: Record<string, string>
  selection: HostSelection
  cluster: string
  concurrency: number
  reporter: Reporter
  signal?: AbortSignal
  /**
   * The next phase for a host, started as soon as that host is created (no barrier between
   * phases); its outcome replaces the create outcome. It bounds its own concurrency.
   */
  next?: (name: string) => Promise<HostOutcome>
}

/** One host's outcome. A batch reports every host; failed ones carry the error. */
export interface HostOutcome {
  name: string
  ok: boolean
  phase: HostRecord['phase']
  address?: string
  error?: string
  /** Milliseconds the phase took for this host. */
  ms?: number
  /** Swarm role, for hosts that joined. */
  role?: 'manager' | 'worker'
  /** The engine answered "Timeout was reached before node joined" (verified afterwards). */
  timedOut?: boolean
}

/** True when a belt process with this PID is alive (on this machine). */
function ownerAlive(r: HostRecord): boolean {
  if (!r.owner || r.owner.pid === process.pid) return false
  try {
    process.kill(r.owner.pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A record that an interrupted or failed earlier run left before any resource existed: creating it
 * again resumes that run instead of refusing the name.
 */
export function isResumable(r: HostRecord, driver: string): boolean {
  return r.driver === driver && !r.machine && r.resources.length === 0 && (r.phase === 'reserved' || r.phase === 'error' || r.phase === 'creating') && !ownerAlive(r)
}

/** A host an earlier run created whose later phases did not finish, and no live process owns. */
export function isCreatedUnfinished(r: HostRecord, driver: string): boolean {
  return r.driver === driver && Boolean(r.machine) && ['created', 'bootstrapping', 'error'].includes(r.phase) && r.error?.phase !== 'removing' && !ownerAlive(r)
}

/**
 * Creates hosts through a driver: preflight once, the cluster key once, names reserved atomically,
 * then a bounded pool of `driver.create` calls, each persisted before and after. Resolves with every
 * host's outcome (a failure never hides the others); rejects only for problems found before any
 * host was touched (bad names, existing names, preflight).
 */
export async function createHosts(req: CreateHostsRequest): Promise<HostOutcome[]> {
  const {store, reporter} = req
  const names = 'patterns' in req.selection ? expandNames(req.selection.patterns) : undefined
  if (names && names.length === 0) throw usageError('no host names given', 'E_NO_NAMES', 'name hosts (node[1:5]) or pass --count N')

  await store.init()
  // Names are checked against the store before anything else (no API call for a typo), and again
  // atomically when they are reserved, in case another belt process took one meanwhile.
  // Hosts an earlier run created but did not finish (bootstrap failed or was interrupted): with a
  // next phase, they skip create and go on to it, so the same command run again resumes.
  let resume: string[] = []
  const plan = (existing: ReadonlyMap<string, HostRecord | undefined>): HostRecord[] => {
    resume = []
    const chosen = names ?? nextNames((req.selection as {prefix: string}).prefix, (req.selection as {count: number}).count, existing.keys())
    const taken: string[] = []
    const out: HostRecord[] = []
    for (const name of chosen) {
      if (!existing.has(name)) {
        out.push(newRecord({name, cluster: req.cluster, driver: req.driver.name, driverOptions: req.persistable}))
        continue
      }
      const r = existing.get(name)
      if (r && isResumable(r, req.driver.name)) out.push({...r, phase: 'reserved', error: undefined, driverOptions: req.persistable})
      else if (r && req.next && isCreatedUnfinished(r, req.driver.name)) resume.push(name)
      else taken.push(name)
    }
    if (taken.length > 0)
      throw usageError(
        `${summarizeNames(taken)} already ${taken.length === 1 ? 'exists' : 'exist'} in ${store.dir}`,
        'E_NAME_EXISTS',
        `choose other names, or remove ${taken.length === 1 ? 'it' : 'them'} first with: belt rm ${taken.join(' ')}`,
      )
    return out
  }
  const {records: current, corrupt} = await store.list()
  const existing = new Map<string, HostRecord | undefined>(current.map((r) => [r.name, r]))
  for (const c of corrupt) existing.set(c.name, undefined)
  plan(existing)

  const ctx = await driverContext(store, req.driver.name, reporter, {signal: req.signal})
  const driver = await req.driver.load()
  await driver.preflight(req.options, ctx)
  const key = await ensureClusterKey(store, req.cluster)
  const records = await store.reserve(plan)

  if (resume.length > 0) reporter.info(`Resuming ${summarizeNames(resume)}: created by an earlier run, not finished`)
  const resumed = new Map(resume.map((n) => [n, req.next!(n).catch((e) => ({name: n, ok: false, phase: 'error' as const, error: oneLine(e)}))]))
  reporter.info(`Creating ${records.length} host${records.length === 1 ? '' : 's'} with the ${req.driver.name} driver (${req.concurrency} at a time)`)
  const following = new Map<string, Promise<HostOutcome>>()
  const follow = (name: string) => {
    if (req.next) following.set(name, req.next(name).catch((e) => ({name, ok: false, phase: 'error' as const, error: oneLine(e)})))
  }
  let settled: Settled<HostRecord, HostOutcome>[]
  const batchSize = req.driver.createBatchSize ?? 1
  if (driver.createMany && batchSize > 1 && records.length > 1) {
    // Hosts per API call, batches through the same bounded pool (concurrency counts hosts).
    const batches: HostRecord[][] = []
    for (let i = 0; i < records.length; i += batchSize) batches.push(records.slice(i, i + batchSize))
    const byBatch = await mapSettled(
      batches,
      async (b) => {
        const res = await createBatch(req, driver, key.publicKey, b)
        for (const x of res) if (!(x instanceof Error)) follow(x.name)
        return res
      },
      {concurrency: Math.max(1, Math.floor(req.concurrency / batchSize)), signal: req.signal},
    )
    settled = byBatch.flatMap((s) =>
      s.item.map((item, i): Settled<HostRecord, HostOutcome> => {
        const v = s.ok ? s.value[i]! : (s.error as Error)
        return v instanceof Error ? {item, ok: false, error: v} : {item, ok: true, value: v}
      }),
    )
  } else {
    settled = await mapSettled(
      records,
      async (r) => {
        const created = await createOne(req, driver, key.publicKey, r)
        follow(r.name)
        return created
      },
      {concurrency: req.concurrency, signal: req.signal},
    )
  }
  const out: HostOutcome[] = []
  for (const s of settled) {
    if (!s.ok) out.push({name: s.item.name, ok: false, phase: 'error', error: oneLine(s.error)})
    else out.push((await following.get(s.item.name)) ?? s.value)
  }
  for (const [, p] of resumed) out.push(await p)
  return out
}

/** Persists "creating" before the driver is called: a crash after this leaves a resumable record. */
async function markCreating(req: CreateHostsRequest, name: string): Promise<void> {
  await req.store.update(name, (r) => {
    r.phase = 'creating'
    r.owner = {pid: process.pid, since: new Date().toISOString()}
    r.times.createRequested = new Date().toISOString()
  })
  req.reporter.phase?.(name, 'create', 'start')
}

async function persistCreated(req: CreateHostsRequest, name: string, machine: Machine, t0: number): Promise<HostOutcome> {
  const ms = Date.now() - t0
  await req.store.update(name, (r) => {
    r.phase = 'created'
    r.owner = undefined
    r.machine = machine
    if (machine.hostKeys?.length) r.hostKeys = [...machine.hostKeys]
    r.times.addressKnown = new Date().toISOString()
  })
  req.reporter.host(name, `created at ${machine.address} (${seconds(ms)})`)
  req.reporter.phase?.(name, 'create', 'done')
  return {name, ok: true, phase: 'created', address: machine.address, ms}
}

async function persistFailed(req: CreateHostsRequest, name: string, e: unknown): Promise<void> {
  const message = oneLine(e)
  await req.store.update(name, (r) => {
    r.phase = 'error'
    r.owner = undefined
    r.error = {phase: 'creating', message, at: new Date().toISOString()}
  })
  req.reporter.host(name, `create failed: ${message}`)
  req.reporter.phase?.(name, 'create', 'fail', message)
}

async function createOne(req: CreateHostsRequest, driver: Driver, publicKey: string, record: HostRecord): Promise<HostOutcome> {
  const name = record.name
  const t0 = Date.now()
  await markCreating(req, name)
  const ctx = await driverContext(req.store, req.driver.name, req.reporter, {host: name, signal: req.signal})
  let machine: Machine
  try {
    machine = await driver.create({name, cluster: {name: req.cluster, sshPublicKey: publicKey}, options: req.options}, ctx)
  } catch (e) {
    await persistFailed(req, name, e)
    throw e
  }
  return persistCreated(req, name, machine, t0)
}

/**
 * Creates a batch through the driver's optional `createMany` (one API call for many hosts), then
 * persists each host's result on its own: one host's failure never hides the others.
 */
async function createBatch(req: CreateHostsRequest, driver: Driver, publicKey: string, batch: readonly HostRecord[]): Promise<(HostOutcome | Error)[]> {
  const t0 = Date.now()
  for (const r of batch) await markCreating(req, r.name)
  const ctx = await driverContext(req.store, req.driver.name, req.reporter, {signal: req.signal})
  const specs = batch.map((r) => ({name: r.name, cluster: {name: req.cluster, sshPublicKey: publicKey}, options: req.options}))
  let results: (Machine | Error)[]
  try {
    results = await driver.createMany!(specs, ctx)
  } catch (e) {
    results = batch.map(() => (e instanceof Error ? e : new Error(String(e))))
  }
  const out: (HostOutcome | Error)[] = []
  for (const [i, r] of batch.entries()) {
    const res = results[i] ?? new Error('the driver returned no result for this host')
    if (res instanceof Error) {
      await persistFailed(req, r.name, res)
      out.push(res)
    } else out.push(await persistCreated(req, r.name, res, t0))
  }
  return out
}
