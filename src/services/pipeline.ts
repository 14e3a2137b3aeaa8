import type {DriverOptions} from '../../drivers/driver.js'
import type {DriverEntry} from '../../drivers/registry.js'
import type {EngineConfig} from '../bootstrap/commands.js'
import {oneLine} from '../errors.js'
import {window} from '../scheduler/pool.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {SwarmFormation} from '../swarm/formation.js'
import type {Reporter} from '../ui/reporter.js'
import {bootstrapOne, prepareBootstrap, type BootstrapSetup} from './bootstrap-hosts.js'
import {createHosts, type CreateHostsRequest, type HostOutcome, type HostSelection} from './create-hosts.js'
import {EngineSwarmApi} from '../swarm/api.js'
import {cleanUpGhosts, clusterRecords, finishIngress, type IngressReport, prepareFormation, recordJoinFailure, saveBatchRun, storeClientTls, type GhostReport, type SwarmSettings} from './swarm.js'

export interface PipelineRequest {
  store: Store
  driver: DriverEntry
  options: DriverOptions
  persistable: Record<string, string>
  selection: HostSelection
  cluster: string
  createConcurrency: number
  /** Bootstrap each host as soon as it is created; undefined: create only. */
  bootstrap?: {engine: EngineConfig; concurrency: number}
  /** Join each host to the cluster's swarm as soon as its engine is ready; needs `bootstrap`. */
  swarm?: SwarmSettings
  reporter: Reporter
  /** The command line for the experiment log (no secrets). */
  command: string
  /** The run's cancellation (first Ctrl-C): no host starts a phase after it aborts. */
  signal?: AbortSignal
  /** `--open-port`: published on the cluster's cloud firewall before the hosts are created. */
  openPorts?: CreateHostsRequest['openPorts']
}

export interface PipelineResult {
  outcomes: HostOutcome[]
  clusterId?: string
  leader?: string
  timeouts: string[]
  runFile: string
  /** Ghost node entries this run's joins left, removed after them. */
  ghosts?: GhostReport
  ingress?: IngressReport
}

/**
 * `belt create`: create -> bootstrap -> join, each host moving to its next phase as soon as it is
 * ready (no barrier, no waves), each phase bounded by its own window. Every phase is persisted, so
 * the same command run again resumes. Ends with the swarm's own view: joined hosts must be Ready.
 */
export async function runCreatePipeline(req: PipelineRequest): Promise<PipelineResult> {
  const {store, reporter} = req
  const startedAt = new Date()
  let setup: Promise<BootstrapSetup> | undefined
  const bootLimit = req.bootstrap ? window(req.bootstrap.concurrency, req.signal) : undefined

  let formation: SwarmFormation | undefined
  const known = new Map<string, HostRecord>()
  const nodeIds = new Map<string, string>()
  if (req.swarm) {
    await store.init()
    const api = new EngineSwarmApi(await storeClientTls(store))
    const existing = await clusterRecords(store, req.cluster)
    const count = 'count' in req.selection ? req.selection.count : req.selection.patterns.length
    ;({formation} = await prepareFormation({
      store,
      api,
      cluster: existing,
      known,
      settings: req.swarm,
      reporter,
      signal: req.signal,
      // Patterns may expand to more; the count is only used to decide whether managers drain.
      expectedSize: (p) => p.members.length + p.free.length + count,
    }))
  }

  const next = bootLimit
    ? async (name: string): Promise<HostOutcome> => {
        // A host an interrupted run left bootstrapped goes straight on to its join.
        const before = await store.get(name)
        const b: HostOutcome =
          formation && before.phase === 'bootstrapped' && before.engine && before.machine
            ? (reporter.phase?.(name, 'bootstrap', 'start'), reporter.phase?.(name, 'bootstrap', 'done'), {name, ok: true, phase: 'bootstrapped', address: before.machine.address})
            : await bootLimit(async () => bootstrapOne(await (setup ??= prepareBootstrap(store)), name, {engine: req.bootstrap!.engine, reporter, signal: req.signal}))
        if (!b.ok || !formation) return b
        req.signal?.throwIfAborted()
        const rec = await store.get(name)
        known.set(name, rec)
        reporter.phase?.(name, 'join', 'start')
        const j = await formation.add(name)
        reporter.phase?.(name, 'join', j.ok ? 'done' : 'fail', j.interrupted ? 'interrupted' : j.error)
        if (j.interrupted) return {name, ok: false, phase: 'bootstrapped', address: b.address, error: 'interrupted before it joined', interrupted: true}
        if (!j.ok) {
          await recordJoinFailure(store, j)
          reporter.host(name, `join failed: ${j.error}`)
          return {name, ok: false, phase: 'bootstrapped', address: b.address, error: j.error}
        }
        if (j.nodeId) nodeIds.set(name, j.nodeId)
        return {name, ok: true, phase: 'joined', address: b.address, role: j.role, timedOut: j.timedOut}
      }
    : undefined

  let outcomes = await createHosts({
    store,
    driver: req.driver,
    options: req.options,
    persistable: req.persistable,
    selection: req.selection,
    cluster: req.cluster,
    concurrency: req.createConcurrency,
    reporter,
    next,
    signal: req.signal,
    goal: req.swarm ? 'joined' : req.bootstrap ? 'bootstrapped' : 'created',
    openPorts: req.openPorts,
  })

  // After a Ctrl-C nothing new starts: no promotion, no wait for Ready (the next run verifies).
  if (formation && !req.signal?.aborted) {
    const promoted = await formation.topUpManagers().catch((e) => (reporter.warn(`could not promote workers to replace failed managers: ${oneLine(e)}`), [] as string[]))
    outcomes = outcomes.map((o) => (promoted.includes(o.name) ? {...o, role: 'manager' as const} : o))
  }
  if (formation && nodeIds.size > 0 && !req.signal?.aborted) {
    const notReady = await formation.verify(nodeIds).catch((e) => new Map([...nodeIds.keys()].map((n) => [n, oneLine(e)])))
    outcomes = outcomes.map((o) => (notReady.has(o.name) ? {...o, ok: false, error: `joined but not Ready (${notReady.get(o.name)})`} : o))
  }
  // The routing mesh, deferred at init so that joins don't each build it (issue 13).
  const ingress = formation && !req.signal?.aborted ? await finishIngress(formation, reporter) : undefined
  // Entries of the node list that this run's joins left without completing (issue 13).
  const ghosts =
    formation && !req.signal?.aborted
      ? await cleanUpGhosts(formation, {storeHosts: (await clusterRecords(store, req.cluster)).map((r) => r.name), failed: outcomes.filter((o) => !o.ok).map((o) => o.name), reporter})
      : undefined
  const runFile = await saveBatchRun(store, {
    command: req.command,
    driver: req.driver.name,
    startedAt,
    settings: {
      createConcurrency: req.createConcurrency,
      ...(req.bootstrap ? {bootstrapConcurrency: req.bootstrap.concurrency} : {}),
      ...(req.swarm ? {managers: req.swarm.managers, joinConcurrency: req.swarm.concurrency, availability: req.swarm.availability} : {}),
    },
    outcomes,
    timeouts: formation?.timeouts ?? [],
  })
  const clusterId = (await clusterRecords(store, req.cluster)).find((r) => r.swarm?.clusterId)?.swarm?.clusterId
  return {outcomes, clusterId, leader: formation?.leaderName, timeouts: formation?.timeouts ?? [], runFile, ghosts, ingress}
}
