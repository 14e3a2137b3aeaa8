import type {Driver, DriverOptions, HostSpec, Machine, PortSpec} from '../../drivers/driver.js'
import type {DriverEntry} from '../../drivers/registry.js'
import {oneLine, usageError} from '../errors.js'
import {expandNames, nextNames, summarizeNames} from '../names.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled, type Settled} from '../scheduler/pool.js'
import {BATCH_SCHEMA_VERSION, batchKey, loadBatch, pidAlive, saveBatch, unfinishedBatches, type CreateBatch} from '../store/batches.js'
import {newRecord, type Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {seconds, type BatchPhase, type Reporter} from '../ui/reporter.js'
import {ensureClusterKey} from './cluster-key.js'
import {driverContext} from './driver-context.js'
import {formatPort, noFirewallError} from './ports.js'

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
  /** The run's cancellation (first Ctrl-C): no new host is started after it aborts. */
  signal?: AbortSignal
  /** How far the batch takes its hosts (what "done" means when it is resumed); default `created`. */
  goal?: BatchGoal
  /**
   * The next phase for a host, started as soon as that host is created (no barrier between
   * phases); its outcome replaces the create outcome. It bounds its own concurrency.
   */
  next?: (name: string) => Promise<HostOutcome>
  /** `--open-port`: published on the cluster's cloud firewall after preflight, before any host is created. */
  openPorts?: readonly PortSpec[]
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
  /** The host was stopped by the operator's Ctrl-C (or never started because of it): not a failure. */
  interrupted?: boolean
  /** A resumed batch found the host already at its goal. */
  already?: boolean
}

/** True when a belt process other than this one works on the host right now. */
const ownerAlive = (r: HostRecord): boolean => pidAlive(r.owner?.pid)

/** How far a batch takes its hosts. */
export type BatchGoal = 'created' | 'bootstrapped' | 'joined'
const GOAL_ORDER: Record<BatchGoal, number> = {created: 1, bootstrapped: 2, joined: 3}
const PHASE_REACHED: Partial<Record<HostRecord['phase'], number>> = {created: 1, bootstrapping: 1, bootstrapped: 2, joined: 3}

/**
 * A record an interrupted or failed earlier run left before its machine existed: creating it again
 * resumes that run (the driver adopts or removes what the earlier attempt left) instead of refusing
 * the name.
 */
export function isResumable(r: HostRecord, driver: string): boolean {
  return r.driver === driver && !r.machine && (r.phase === 'reserved' || r.phase === 'error' || r.phase === 'creating') && r.error?.phase !== 'removing' && !ownerAlive(r)
}

/** A host an earlier run created whose later phases did not finish, and no live process owns. */
export function isCreatedUnfinished(r: HostRecord, driver: string, goal: BatchGoal = 'joined'): boolean {
  if (r.driver !== driver || !r.machine || ownerAlive(r) || r.error?.phase === 'removing') return false
  if (r.phase === 'error') return true
  const reached = PHASE_REACHED[r.phase]
  return reached !== undefined && reached < GOAL_ORDER[goal]
}

/** A host that already reached the batch's goal (skipped when a batch is resumed). */
export function hasReached(r: HostRecord, goal: BatchGoal): boolean {
  return r.phase !== 'error' && (PHASE_REACHED[r.phase] ?? 0) >= GOAL_ORDER[goal]
}

/** What an interrupted create left for the host, for the driver to adopt or remove (see HostSpec.leftovers). */
const leftoversOf = (r: HostRecord) => (r.phase === 'reserved' && r.resources.length === 0 ? undefined : r.resources.map(({kind, id}) => ({kind, id})))

/**
 * Creates hosts through a driver: preflight once, the cluster key once, names reserved atomically,
 * then a bounded window of `driver.create` calls, each persisted before and after. Resolves with
 * every host's outcome (a failure never hides the others); rejects only for problems found before
 * any host was touched (bad names, existing names, preflight).
 *
 * Batches resume: the selection (the names, or --count and --prefix) is recorded before any host
 * is touched; when the last batch of the same selection did not finish (interrupted, killed, or
 * some hosts failed), the same request finishes it: hosts at the goal are skipped, unfinished ones
 * go on from their phase, hosts never created are created, and no other host is chosen.
 */
export async function createHosts(req: CreateHostsRequest): Promise<HostOutcome[]> {
  const {store, reporter} = req
  const goal = req.goal ?? 'created'
  const names = 'patterns' in req.selection ? expandNames(req.selection.patterns) : undefined
  if (names && names.length === 0) throw usageError('no host names given', 'E_NO_NAMES', 'name hosts (node[1:5]) or pass --count N')

  const selection = names ? {names} : {count: (req.selection as {count: number}).count, prefix: (req.selection as {prefix: string}).prefix}
  const key = batchKey({cluster: req.cluster, driver: req.driver.name, selection})
  const earlier = await loadBatch(store, key)
  const resuming = earlier !== undefined && earlier.state !== 'complete' && !pidAlive(earlier.pid) ? earlier : undefined

  // Names are checked against the store before anything else (no API call for a typo), and again
  // atomically when they are reserved, in case another belt process took one meanwhile.
  let resume: string[] = []
  let done: string[] = []
  let chosen: string[] = []
  const plan = (existing: ReadonlyMap<string, HostRecord | undefined>): HostRecord[] => {
    resume = []
    done = []
    chosen = resuming ? resuming.names : (names ?? nextNames(selection.prefix!, selection.count!, existing.keys()))
    const taken: string[] = []
    const out: HostRecord[] = []
    for (const name of chosen) {
      if (!existing.has(name)) {
        out.push(newRecord({name, cluster: req.cluster, driver: req.driver.name, driverOptions: req.persistable}))
        continue
      }
      const r = existing.get(name)
      if (r && r.cluster !== req.cluster) taken.push(name)
      else if (r && isResumable(r, req.driver.name)) out.push({...r, error: undefined, driverOptions: req.persistable})
      else if (r && req.next && isCreatedUnfinished(r, req.driver.name, goal)) resume.push(name)
      else if (r && resuming && r.driver === req.driver.name && !ownerAlive(r) && hasReached(r, goal)) done.push(name)
      else taken.push(name)
    }
    // A host taken on from an earlier run must be finished where it was started (same endpoint,
    // region, subnet): otherwise its leftovers would be looked for, and its peers made, elsewhere.
    for (const name of chosen) {
      const r = existing.get(name)
      if (!r || (!r.machine && r.resources.length === 0 && r.phase === 'reserved') || taken.includes(name)) continue
      for (const o of req.driver.options) {
        const was = r.driverOptions[o.name]
        if (!o.pinned || was === undefined || req.options[o.name] === undefined || req.options[o.name] === was) continue
        throw usageError(
          `${name} was started with --${req.driver.name}-${o.name} ${was}, but this run says ${req.options[o.name]}`,
          'E_PINNED_OPTION',
          `finish it with the same value (--${req.driver.name}-${o.name} ${was}), or remove it first with: belt rm ${name}`,
        )
      }
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

  const driver = await req.driver.load()
  if (req.openPorts?.length && !driver.setPorts) throw noFirewallError(req.driver.name)
  // Options and credentials are checked before anything exists in the store: a usage error leaves nothing behind.
  await driver.preflight(req.options, await driverContext(store, req.driver.name, reporter, {signal: req.signal, noDirs: true}))
  await store.init()
  const clusterKey = await ensureClusterKey(store, req.cluster)
  if (req.openPorts?.length) {
    // The firewall holds for every host of the cluster: published once, before the hosts exist.
    await driver.setPorts!(req.cluster, {open: req.openPorts, close: []}, req.options, await driverContext(store, req.driver.name, reporter, {signal: req.signal}))
    reporter.info(`Published ${req.openPorts.map(formatPort).join(', ')} to any address on the cluster ${req.cluster}'s firewall`)
  }
  const startedAt = new Date().toISOString()
  const batch: CreateBatch = {schemaVersion: BATCH_SCHEMA_VERSION, selection, cluster: req.cluster, driver: req.driver.name, names: [], state: 'running', pid: process.pid, startedAt: resuming?.startedAt ?? startedAt, updatedAt: startedAt}
  // The batch is written under the names lock before its records: a kill at any point leaves
  // either no trace, or a batch whose names the same command finishes.
  const records = await store.reserve(async (ex) => {
    const out = plan(ex)
    batch.names = chosen
    await saveBatch(store, batch)
    return out
  })
  if (!resuming) {
    // Only batches some of whose hosts still exist: one whose hosts were all removed is over.
    for (const b of await unfinishedBatches(store, req.cluster))
      if (batchKey(b) !== key && b.names.some((n) => existing.has(n)))
        reporter.warn(`an earlier batch (${describeSelection(b.selection)}: ${summarizeNames(b.names)}) did not finish; run the same command again to finish it`)
  }

  if (resuming) reporter.info(`Resuming the unfinished batch of ${summarizeNames(resuming.names)} (started ${resuming.startedAt}): ${done.length} done, ${resume.length} to finish, ${records.length} to create or adopt; no other host is added`)
  else if (resume.length > 0) reporter.info(`Resuming ${summarizeNames(resume)}: created by an earlier run, not finished`)
  // The live view counts what an earlier run already did, so a resumed batch adds up to its total.
  const already = (name: string, phases: BatchPhase[]) => {
    for (const ph of phases) {
      reporter.phase?.(name, ph, 'start')
      reporter.phase?.(name, ph, 'done')
    }
  }
  for (const n of resume) already(n, ['create'])
  for (const n of done) already(n, goal === 'joined' ? ['create', 'bootstrap', 'join'] : goal === 'bootstrapped' ? ['create', 'bootstrap'] : ['create'])
  const doneOutcomes: HostOutcome[] = done.map((name) => ({name, ok: true, phase: existing.get(name)!.phase, address: existing.get(name)?.machine?.address, already: true}))
  const onError = (name: string) => (e: unknown): HostOutcome => ({name, ok: false, phase: 'error', error: oneLine(e), interrupted: isInterruption(e)})
  const resumed = new Map(resume.map((n) => [n, req.next!(n).catch(onError(n))]))
  if (records.length > 0) reporter.info(`Creating ${records.length} host${records.length === 1 ? '' : 's'} with the ${req.driver.name} driver (${req.concurrency} at a time)`)
  const following = new Map<string, Promise<HostOutcome>>()
  const follow = (name: string) => {
    if (req.next) following.set(name, req.next(name).catch(onError(name)))
  }
  let settled: Settled<HostRecord, HostOutcome>[]
  const batchSize = req.driver.createBatchSize ?? 1
  const spec = (r: HostRecord): HostSpec => {
    const leftovers = leftoversOf(r)
    return {name: r.name, cluster: {name: req.cluster, sshPublicKey: clusterKey.publicKey}, options: req.options, ...(leftovers ? {leftovers} : {})}
  }
  if (driver.createMany && batchSize > 1 && records.length > 1) {
    // Hosts per API call, batches through the same bounded window (concurrency counts hosts).
    const batches: HostRecord[][] = []
    for (let i = 0; i < records.length; i += batchSize) batches.push(records.slice(i, i + batchSize))
    const byBatch = await mapSettled(
      batches,
      async (b) => {
        const res = await createBatch(req, driver, b.map(spec))
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
        const created = await createOne(req, driver, spec(r))
        follow(r.name)
        return created
      },
      {concurrency: req.concurrency, signal: req.signal},
    )
  }
  const out: HostOutcome[] = [...doneOutcomes]
  for (const s of settled) {
    if (!s.ok) out.push(onError(s.item.name)(s.error))
    else out.push((await following.get(s.item.name)) ?? s.value)
  }
  for (const [, p] of resumed) out.push(await p)
  // Where each interrupted host really stands, for the operator's table.
  for (const o of out) if (o.interrupted) o.phase = (await store.tryGet(o.name).catch(() => undefined))?.phase ?? o.phase
  batch.state = out.every((o) => o.ok) ? 'complete' : 'incomplete'
  await saveBatch(store, batch)
  const order = new Map(chosen.map((n, i) => [n, i]))
  return out.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0))
}

/** `--count 4 --prefix node`, or the names. */
export function describeSelection(sel: CreateBatch['selection']): string {
  return 'count' in sel ? `--count ${sel.count} --prefix ${sel.prefix}` : summarizeNames(sel.names)
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

/**
 * Persists a failed create. An interrupted one stays `creating` (with whatever resources the driver
 * journaled), so that `ls` says where it is and the same command adopts what it left.
 */
async function persistFailed(req: CreateHostsRequest, name: string, e: unknown): Promise<void> {
  const message = oneLine(e)
  const interrupted = isInterruption(e)
  await req.store.update(name, (r) => {
    r.phase = interrupted ? 'creating' : 'error'
    r.owner = undefined
    r.error = {phase: 'creating', message: interrupted ? 'interrupted before the host was ready' : message, at: new Date().toISOString()}
  })
  req.reporter.host(name, interrupted ? 'create interrupted; run the same command again to finish it' : `create failed: ${message}`)
  req.reporter.phase?.(name, 'create', 'fail', interrupted ? 'interrupted' : message)
}

async function createOne(req: CreateHostsRequest, driver: Driver, spec: HostSpec): Promise<HostOutcome> {
  const name = spec.name
  const t0 = Date.now()
  await markCreating(req, name)
  const ctx = await driverContext(req.store, req.driver.name, req.reporter, {host: name, signal: req.signal})
  let machine: Machine
  try {
    machine = await driver.create(spec, ctx)
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
async function createBatch(req: CreateHostsRequest, driver: Driver, specs: readonly HostSpec[]): Promise<(HostOutcome | Error)[]> {
  const t0 = Date.now()
  await Promise.all(specs.map((sp) => markCreating(req, sp.name)))
  const ctx = await driverContext(req.store, req.driver.name, req.reporter, {signal: req.signal})
  let results: (Machine | Error)[]
  try {
    results = await driver.createMany!(specs, ctx)
  } catch (e) {
    results = specs.map(() => (e instanceof Error ? e : new Error(String(e))))
  }
  // Each host's record is its own file: the batch's are written side by side.
  return Promise.all(
    specs.map(async (r, i): Promise<HostOutcome | Error> => {
      const res = results[i] ?? new Error('the driver returned no result for this host')
      if (!(res instanceof Error)) return persistCreated(req, r.name, res, t0)
      await persistFailed(req, r.name, res)
      return res
    }),
  )
}
