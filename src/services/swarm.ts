import type {ClientTls} from '../bootstrap/engine-api.js'
import {ExitCode, UserError, oneLine, usageError} from '../errors.js'
import {summarizeNames} from '../names.js'
import {ensureCa, ensureClientCert} from '../pki/ca.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import {newRunId, saveRun, type Run, type RunHost} from '../store/runs.js'
import {naturalCompare, type Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {EngineSwarmApi, describeInitSpec, withInitSpec, type EngineEndpoint, type SwarmApi, type SwarmInitSpec, type SwarmNode} from '../swarm/api.js'
import {INGRESS_DEFERRED, INGRESS_LABEL, SwarmFormation, type JoinResult} from '../swarm/formation.js'
import {classifyNodes, describeVerdict, removeGhosts, type NodeVerdict} from '../swarm/ghosts.js'
import {advertiseAddress, checkManagers, managerAvailability, planSwarm, type AdvertiseType, type Availability, type HostSwarmState, type SwarmPlan} from '../swarm/plan.js'
import type {Reporter} from '../ui/reporter.js'
import type {HostOutcome} from './create-hosts.js'
import {refuseMovedHosts} from './driver-context.js'

/**
 * Worker joins at once by default. Measured on this 2-core machine (bench/swarm-local):
 * 16 concurrent joins formed a 100-node swarm with no join timeout, all-at-once gave 49 timeouts
 * and took longer; joins are serialised by the leader at about a node per second anyway.
 */
export const DEFAULT_JOIN_CONCURRENCY = 16

export interface SwarmSettings {
  managers: number
  concurrency: number
  availability: 'auto' | Availability
  advertiseType: AdvertiseType
  /** A new swarm without the ingress network (routing mesh); for experiments. */
  noIngress?: boolean
  /** A new swarm without ingress at init, the ingress made after the joins (`--defer-ingress`). */
  deferIngress?: boolean
  /** Options of a new swarm (`--default-addr-pool`, `--autolock`, ...); ignored, with a warning, when the swarm exists. */
  init?: SwarmInitSpec
  /** Node labels set on each host of the batch once it joined (`--swarm-label`). */
  nodeLabels?: Record<string, string>
}

/** Settings as a run record keeps them: flat values (the init options spelled out, never a key). */
export function runSettings(s: SwarmSettings): Record<string, string | number | boolean> {
  const {init, nodeLabels, ...rest} = s
  const flat: Record<string, string | number | boolean> = {...rest, ...describeInitSpec(init)}
  if (nodeLabels) flat.nodeLabels = Object.entries(nodeLabels).map(([k, v]) => `${k}=${v}`).join(',')
  for (const [k, v] of Object.entries(flat)) if (v === undefined) delete flat[k]
  return flat
}

/**
 * Adds `labels` to a node's spec through a manager (`docker node update --label-add`), reading
 * the entry again when another update got in between ("update out of sequence").
 */
export async function labelNode(api: SwarmApi, manager: EngineEndpoint, nodeId: string, labels: Record<string, string>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const node = api.node ? await api.node(manager, nodeId) : (await api.nodes(manager)).find((n) => n.id === nodeId)
    if (!node) throw new Error(`node ${nodeId} is not in the node list`)
    if (Object.entries(labels).every(([k, v]) => node.labels[k] === v)) return
    try {
      return await api.updateNode(manager, node, {labels})
    } catch (e) {
      if (attempt === 3 || !/out of sequence/i.test(oneLine(e))) throw e
    }
  }
}

/** The client side of mutual TLS, from the store (created on first use, like bootstrap does). */
export async function storeClientTls(store: Store): Promise<ClientTls> {
  const ca = await ensureCa(store)
  const c = await ensureClientCert(store, ca)
  return {ca: c.ca, cert: c.cert, key: c.key}
}

/** Where a bootstrapped host's engine answers. */
export function endpointOf(r: HostRecord): EngineEndpoint {
  if (!r.engine) throw new UserError(`${r.name} has no engine (its state is ${r.phase})`, {code: 'E_NO_ENGINE', exit: ExitCode.environment, hint: `bootstrap it with: belt provision ${r.name}`})
  const u = new URL(r.engine.url.replace(/^tcp:/, 'https:'))
  return {name: r.name, address: u.hostname, port: Number(u.port || 2376)}
}

/** The hosts of a cluster, in natural name order. */
export async function clusterRecords(store: Store, cluster?: string): Promise<HostRecord[]> {
  const {records} = await store.list()
  return records.filter((r) => cluster === undefined || r.cluster === cluster).sort((a, b) => naturalCompare(a.name, b.name))
}

/** Asks every engine for its swarm state, through a bounded pool. */
export async function swarmStates(api: SwarmApi, records: readonly HostRecord[], advertiseType: AdvertiseType): Promise<HostSwarmState[]> {
  const settled = await mapSettled(
    records,
    async (r): Promise<HostSwarmState> => {
      const advertiseAddr = advertiseAddress(r.name, r.machine!, advertiseType)
      try {
        return {name: r.name, advertiseAddr, info: await api.info(endpointOf(r)), recordedClusterId: r.swarm?.clusterId}
      } catch (e) {
        return {name: r.name, advertiseAddr, error: oneLine(e)}
      }
    },
    {concurrency: 32},
  )
  return settled.map((s) => (s.ok ? s.value : {name: s.item.name, advertiseAddr: s.item.machine!.address, error: oneLine(s.error)}))
}

/** Saves what a successful join means to the host's record. */
export async function recordJoin(store: Store, r: JoinResult, advertiseAddr: string): Promise<void> {
  await store.update(r.name, (x) => {
    x.phase = 'joined'
    x.swarm = {clusterId: r.clusterId, nodeId: r.nodeId, role: r.role, advertiseAddr}
    x.times.joined = new Date().toISOString()
    x.error = undefined
  })
}

/** Saves a failed join to the host's record. */
export async function recordJoinFailure(store: Store, r: JoinResult): Promise<void> {
  await store
    .update(r.name, (x) => {
      x.error = {phase: 'joined', message: r.error ?? 'join failed', at: new Date().toISOString()}
    })
    .catch(() => undefined)
}

/** The formation for a cluster: existing swarm found, the managers and availability decided. */
export async function prepareFormation(o: {
  store: Store
  api: SwarmApi
  cluster: readonly HostRecord[]
  /** How many hosts will be in the swarm once the batch is done (for the drain decision). */
  expectedSize: (plan: SwarmPlan) => number
  settings: SwarmSettings
  reporter: Reporter
  known?: Map<string, HostRecord>
  signal?: AbortSignal
}): Promise<{formation: SwarmFormation; plan: SwarmPlan; availability: Availability}> {
  checkManagers(o.settings.managers)
  const withEngine = o.cluster.filter((r) => r.engine && r.machine)
  const plan = planSwarm(await swarmStates(o.api, withEngine, o.settings.advertiseType))
  const availability = managerAvailability(o.settings.availability, o.expectedSize(plan))
  // Hosts the create pipeline bootstraps later are added to `known` before they join.
  const byName = o.known ?? new Map<string, HostRecord>()
  for (const r of o.cluster) byName.set(r.name, r)
  const init = o.settings.init
  if (init && plan.clusterId)
    o.reporter.warn(`the swarm exists (${plan.clusterId.slice(0, 12)}): ${Object.keys(describeInitSpec(init)).join(', ')} apply only when a swarm is created; change it with docker swarm update`)
  // The unlock key of a swarm with autolock: shown once on the terminal, never in a record, run or journal.
  const api = init
    ? withInitSpec(o.api, init, (key) =>
        o.reporter.info(`Swarm unlock key (shown only now, never stored; a restarted manager needs it: docker swarm unlock): ${key}`),
      )
    : o.api
  const labels = o.settings.nodeLabels
  const setLabels = async (r: JoinResult) => {
    if (!labels || !r.nodeId || !formation.leaderName) return
    const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(' ')
    try {
      await labelNode(o.api, endpointOf(byName.get(formation.leaderName)!), r.nodeId, labels)
      o.reporter.host(r.name, `labelled ${text}`)
    } catch (e) {
      o.reporter.warn(`${r.name}: node labels ${text} not set: ${oneLine(e)}; set them with docker node update --label-add, or run the same command again`)
    }
  }
  const formation: SwarmFormation = new SwarmFormation({
    api,
    managers: o.settings.managers,
    workerConcurrency: o.settings.concurrency,
    managerAvailability: availability,
    noIngress: o.settings.noIngress,
    deferIngress: Boolean(o.settings.deferIngress) && !o.settings.noIngress,
    endpoint: (n) => endpointOf(byName.get(n) ?? failMissing(n)),
    advertiseAddr: (n) => advertiseAddress(n, (byName.get(n) ?? failMissing(n)).machine!, o.settings.advertiseType),
    existing: plan.clusterId ? {clusterId: plan.clusterId, managers: plan.managers} : undefined,
    onJoined: async (r) => {
      await recordJoin(o.store, r, advertiseAddress(r.name, byName.get(r.name)!.machine!, o.settings.advertiseType))
      await setLabels(r)
    },
    log: (n, m) => o.reporter.host(n, m),
    signal: o.signal,
  })
  return {formation, plan, availability}
}

function failMissing(name: string): never {
  throw new Error(`${name} is not a host of this cluster`)
}

export interface SwarmInitRequest {
  store: Store
  /** Patterns; empty: every host of the cluster. */
  patterns: readonly string[]
  cluster?: string
  settings: SwarmSettings
  reporter: Reporter
  command: string
  /** Force a role for every named host (`belt swarm join --manager`). */
  role?: 'manager' | 'worker'
  /** The run's cancellation: after the first Ctrl-C no join starts; joins in flight finish. */
  signal?: AbortSignal
}

export interface SwarmBatchResult {
  outcomes: HostOutcome[]
  clusterId?: string
  leader?: string
  timeouts: string[]
  runFile: string
  availability: Availability
  ghosts?: GhostReport
  ingress?: IngressReport
}

/** What the clean-up after a formation did with ghost node entries (one line per entry). */
export interface GhostReport {
  removed: string[]
  kept: string[]
  failed: string[]
}

/** What the run did for a deferred ingress network (see {@link SwarmFormation.completeIngress}). */
export interface IngressReport {
  created: boolean
  ready: number
  /** `name: why` for each node whose ingress sandbox was not built by the deadline. */
  notReady: string[]
  ms: number
}

/**
 * After a formation's joins have all ended (and were verified Ready): completes a deferred ingress
 * network. Never throws: a failure is a warning, and the next `belt swarm init` finishes the job.
 */
export async function finishIngress(formation: SwarmFormation, reporter: Reporter): Promise<IngressReport | undefined> {
  try {
    const r = await formation.completeIngress()
    if (!r) return undefined
    const report: IngressReport = {created: r.created, ready: r.ready.length, notReady: [...r.notReady].map(([n, why]) => `${n}: ${why}`), ms: r.ms}
    if (report.notReady.length === 0) reporter.info(`Ingress network (routing mesh) ${r.created ? 'created after the joins' : 'completed'}: ready on ${r.ready.length} node${r.ready.length === 1 ? '' : 's'} in ${(r.ms / 1000).toFixed(1)} s`)
    else
      reporter.warn(
        `the ingress network (routing mesh) is not ready on ${report.notReady.length} node${report.notReady.length === 1 ? '' : 's'} (${report.notReady.slice(0, 3).join('; ')}${report.notReady.length > 3 ? '; ...' : ''}); run belt swarm init again to finish it`,
      )
    return report
  } catch (e) {
    if (isInterruption(e)) return undefined
    reporter.warn(`could not complete the ingress network (routing mesh): ${oneLine(e)}; run belt swarm init again to finish it`)
    return undefined
  }
}

/**
 * After a formation's joins have all ended: removes the ghost entries its joins left (see
 * {@link SwarmFormation.pruneGhosts}). Never throws: a failure is a warning and `belt swarm prune`
 * finishes the job.
 */
export async function cleanUpGhosts(formation: SwarmFormation, o: {storeHosts: Iterable<string>; failed: readonly string[]; reporter: Reporter}): Promise<GhostReport | undefined> {
  try {
    const r = await formation.pruneGhosts(o)
    return {removed: r.removed.map(describeVerdict), kept: r.kept.map(describeVerdict), failed: r.failed.map((f) => `${describeVerdict(f)} (${f.error})`)}
  } catch (e) {
    o.reporter.warn(`could not check the swarm for ghost node entries: ${oneLine(e)}; belt swarm status shows them, belt swarm prune removes them`)
    return undefined
  }
}

/**
 * `belt swarm init` / `belt swarm join`: the named hosts (or the whole cluster) join the cluster's
 * swarm, creating it when none exists. Idempotent: members are skipped, hosts of another swarm are
 * reported as failed, and running it again converges. Every host's outcome is returned.
 */
export async function swarmInit(req: SwarmInitRequest): Promise<SwarmBatchResult> {
  const {store, reporter} = req
  const startedAt = new Date()
  const all = await clusterRecords(store, req.cluster)
  let targets: HostRecord[]
  if (req.patterns.length > 0) {
    const {selectHosts} = await import('./select-hosts.js')
    targets = await selectHosts(store, req.patterns)
  } else targets = all
  refuseMovedHosts(targets)
  if (targets.length === 0) throw usageError(`no hosts${req.cluster ? ` in cluster ${req.cluster}` : ''} to form a swarm from`, 'E_NO_HOSTS', 'create some first: belt create --driver local --count 3')
  const clusters = [...new Set(targets.map((t) => t.cluster))]
  if (clusters.length > 1) throw usageError(`the hosts belong to clusters ${clusters.join(', ')}`, 'E_TWO_CLUSTERS', 'name hosts of one cluster, or pass --cluster NAME')
  const clusterHosts = all.filter((r) => r.cluster === clusters[0])
  const outcomes = new Map<string, HostOutcome>()
  for (const t of targets)
    if (!t.engine || !t.machine)
      outcomes.set(t.name, {name: t.name, ok: false, phase: t.phase, error: `not bootstrapped (state ${t.phase}); run belt provision ${t.name}`})

  const api = new EngineSwarmApi(await storeClientTls(store))
  const targetNames = new Set(targets.map((t) => t.name))
  const {formation, plan, availability} = await prepareFormation({
    store,
    api,
    cluster: clusterHosts,
    settings: req.settings,
    reporter,
    expectedSize: (p) => p.members.length + p.free.filter((n) => targetNames.has(n)).length,
    signal: req.signal,
  })
  if (req.role && !plan.clusterId)
    throw new UserError(`the hosts of cluster ${clusters[0]} have no swarm to join`, {code: 'E_NO_SWARM', exit: ExitCode.notFound, hint: 'form one first with: belt swarm init'})
  for (const f of plan.foreign) if (targetNames.has(f.name)) outcomes.set(f.name, {name: f.name, ok: false, phase: 'bootstrapped', error: f.why})
  for (const u of plan.unreachable) if (targetNames.has(u.name)) outcomes.set(u.name, {name: u.name, ok: false, phase: 'bootstrapped', error: `engine did not answer: ${u.why}`})
  for (const m of plan.members) if (targetNames.has(m)) outcomes.set(m, {name: m, ok: true, phase: 'joined', address: targets.find((t) => t.name === m)?.machine?.address})
  if (plan.members.some((m) => targetNames.has(m))) reporter.info(`Already in swarm ${plan.clusterId?.slice(0, 12)}: ${summarizeNames(plan.members.filter((m) => targetNames.has(m)))}`)
  if (plan.clusterId === undefined && plan.members.length === 0) reporter.info(`No swarm yet: forming one with ${req.settings.managers} manager${req.settings.managers === 1 ? '' : 's'} (managers ${availability === 'drain' ? 'drained' : 'take work'}), workers ${req.settings.concurrency} at a time`)

  const joining = targets.filter((t) => plan.free.includes(t.name))
  const started = new Map<string, number>()
  const results = await Promise.all(
    joining.map(async (t) => {
      started.set(t.name, Date.now())
      reporter.phase?.(t.name, 'join', 'start')
      const r = await formation.add(t.name, req.role)
      reporter.phase?.(t.name, 'join', r.ok ? 'done' : 'fail', r.error)
      return r
    }),
  )
  const nodeIds = new Map<string, string>()
  for (const r of results) {
    if (r.ok && r.nodeId) nodeIds.set(r.name, r.nodeId)
    else if (!r.ok && !r.interrupted) await recordJoinFailure(store, r)
  }
  // Only when roles were Belt's to choose: `swarm join` (a forced role, managers set to 7 only to be
  // valid) must not promote the workers it joined.
  // After a Ctrl-C nothing new starts: no promotion, no wait for Ready, no clean-up (the next run does them).
  const stopped = req.signal?.aborted ?? false
  const promoted = req.role || stopped ? [] : await formation.topUpManagers().catch((e) => (reporter.warn(`could not promote workers to replace failed managers: ${oneLine(e)}`), [] as string[]))
  for (const n of promoted)
    for (const r of results) if (r.name === n) r.role = 'manager'
  // Joined is not Ready: check the leader's view before calling the batch a success.
  const notReady = nodeIds.size > 0 && !stopped ? await formation.verify(nodeIds).catch((e) => new Map([...nodeIds.keys()].map((n) => [n, oneLine(e)]))) : new Map<string, string>()
  for (const r of results) {
    const rec = targets.find((t) => t.name === r.name)!
    const why = notReady.get(r.name)
    if (r.ok && why) outcomes.set(r.name, {name: r.name, ok: false, phase: 'joined', address: rec.machine?.address, error: `joined but not Ready (${why})`})
    else outcomes.set(r.name, {name: r.name, ok: r.ok, phase: r.ok ? 'joined' : rec.phase, address: rec.machine?.address, error: r.error, role: r.role, timedOut: r.timedOut, ms: Date.now() - started.get(r.name)!, ...(r.interrupted ? {interrupted: true} : {})})
  }
  const ordered = targets.map((t) => outcomes.get(t.name)!).filter(Boolean)
  const ingress = stopped ? undefined : await finishIngress(formation, reporter)
  const ghosts = stopped ? undefined : await cleanUpGhosts(formation, {storeHosts: clusterHosts.map((r) => r.name), failed: results.filter((r) => !r.ok).map((r) => r.name), reporter})
  // Members named again get this run's labels too (converging: a label already there is not rewritten).
  const labels = req.settings.nodeLabels
  if (labels && !stopped && formation.leaderName)
    for (const m of plan.members.filter((n) => targetNames.has(n))) {
      const rec = targets.find((t) => t.name === m)
      const nodeId = (await api.info(endpointOf(rec!)).catch(() => undefined))?.nodeId
      if (nodeId)
        await labelNode(api, endpointOf(clusterHosts.find((h) => h.name === formation.leaderName)!), nodeId, labels).catch((e) =>
          reporter.warn(`${m}: node labels not set: ${oneLine(e)}; run the same command again`),
        )
    }
  const runFile = await saveBatchRun(store, {command: req.command, startedAt, settings: {...runSettings(req.settings), availability}, outcomes: ordered, timeouts: formation.timeouts})
  return {outcomes: ordered, clusterId: plan.clusterId ?? results.find((r) => r.clusterId)?.clusterId, leader: formation.leaderName, timeouts: formation.timeouts, runFile, availability, ghosts, ingress}
}

/** The report's phase names (create, ssh, engine, join) for a record's phase at failure. */
export function reportPhase(phase: string, times: {sshUp?: string}): string {
  if (phase === 'reserved' || phase === 'creating') return 'create'
  if (phase === 'bootstrapping') return times.sshUp ? 'engine' : 'ssh'
  if (phase === 'joined' || phase === 'bootstrapped') return 'join'
  return phase
}

/** Writes the experiment log of a batch (create, swarm init, ...) from the hosts' records (their phase timestamps). */
export async function saveBatchRun(
  store: Store,
  o: {command: string; startedAt: Date; settings: Record<string, string | number | boolean>; outcomes: readonly HostOutcome[]; timeouts: readonly string[]; driver?: string},
): Promise<string> {
  const hosts: RunHost[] = []
  for (const out of o.outcomes) {
    const r = await store.tryGet(out.name).catch(() => undefined)
    hosts.push({
      name: out.name,
      times: r?.times ?? {},
      ok: out.ok,
      ...(out.ok ? {} : {failedPhase: reportPhase(r?.error?.phase ?? out.phase, r?.times ?? {}), error: out.error}),
      ...(o.timeouts.includes(out.name) ? {joinTimedOut: true} : {}),
      ...(out.role ?? r?.swarm?.role ? {role: (out.role ?? r?.swarm?.role) as 'manager' | 'worker'} : {}),
    })
  }
  const run: Run = {schemaVersion: 1, id: newRunId(o.startedAt), command: o.command, driver: o.driver, startedAt: o.startedAt.toISOString(), finishedAt: new Date().toISOString(), settings: o.settings, hosts}
  return saveRun(store, run)
}

/** An entry of the node list that is not a host: a ghost, or one kept for now. */
export interface GhostEntry {
  id: string
  state: string
  role: 'manager' | 'worker'
  /** Only when the node reported one (an old entry of a host that joined again). */
  hostname?: string
  createdAt?: string
  why: string
}

/** `belt swarm status`: the swarm of a cluster as its managers see it. */
export interface SwarmStatus {
  clusterId?: string
  /** The swarm's nodes, ghost entries left out. */
  nodes: (SwarmNode & {host?: string})[]
  ready: number
  /** Real nodes that are not Ready (hosts stopped, engines down): never removed by Belt. */
  down: number
  managers: number
  reachableManagers: number
  leader?: string
  /** Hosts of the inventory the swarm does not list. */
  missing: string[]
  /** Entries that never completed a join: `belt swarm prune` removes them. */
  ghosts: GhostEntry[]
  /** Entries with no hostname that may still be joins in progress: not counted, not removed yet. */
  kept: GhostEntry[]
  /**
   * The ingress network (routing mesh): present; deferred (a new swarm's, still to be made after
   * its joins: `belt swarm init` finishes it); none (`--no-ingress`); unknown (the manager did not say).
   */
  ingress: 'present' | 'deferred' | 'none' | 'unknown'
}

const ghostEntry = (v: NodeVerdict): GhostEntry => ({id: v.node.id, state: v.node.state, role: v.node.role, ...(v.node.noHostname ? {} : {hostname: v.node.hostname}), createdAt: v.node.createdAt, why: v.why})

/** The node list of a cluster's swarm from the first manager that answers, sorted into real nodes and ghosts. */
async function inspectSwarm(store: Store, cluster?: string) {
  const records = (await clusterRecords(store, cluster)).filter((r) => r.engine)
  refuseMovedHosts(records)
  const managers = records.filter((r) => r.swarm?.role === 'manager')
  if (managers.length === 0) throw new UserError(`no host${cluster ? ` of cluster ${cluster}` : ''} is a swarm manager`, {code: 'E_NO_SWARM', exit: ExitCode.notFound, hint: 'form a swarm with: belt swarm init'})
  const api = new EngineSwarmApi(await storeClientTls(store), 30_000)
  let nodes: SwarmNode[] | undefined
  let clusterId: string | undefined
  let manager: EngineEndpoint | undefined
  let last: unknown
  for (const m of managers) {
    try {
      nodes = await api.nodes(endpointOf(m))
      clusterId = (await api.info(endpointOf(m))).clusterId
      manager = endpointOf(m)
      break
    } catch (e) {
      last = e
    }
  }
  if (!nodes || !manager)
    throw new UserError(`no manager of the swarm answered (${summarizeNames(managers.map((m) => m.name))}): ${oneLine(last)}`, {code: 'E_SWARM_UNREACHABLE', exit: ExitCode.environment, hint: 'check the managers with belt ls and belt status'})
  // An entry with no hostname may be a join in progress: ask the engines only when there is one.
  const joining: string[] = []
  if (nodes.some((n) => n.noHostname && n.state !== 'ready')) {
    const infos = await mapSettled(records, async (r) => api.info(endpointOf(r)), {concurrency: 32})
    for (const i of infos) if (i.ok && i.value.state === 'pending') joining.push(i.item.name)
  }
  const c = classifyNodes(nodes, {storeHosts: records.map((r) => r.name), now: Date.now(), joining})
  return {api, manager, clusterId, records, classification: c}
}

export async function swarmStatus(store: Store, cluster?: string): Promise<SwarmStatus> {
  const {api, manager, clusterId, records, classification: c} = await inspectSwarm(store, cluster)
  // The routing mesh: made after the joins, so a cut-off run may have left it to do.
  const ingress: SwarmStatus['ingress'] = await (async () => {
    if ((await api.swarmLabels(manager))[INGRESS_LABEL] === INGRESS_DEFERRED) return 'deferred'
    return (await api.localIngress(manager)) ? 'present' : 'none'
  })().catch(() => 'unknown' as const)
  const byNode = new Map(records.filter((r) => r.swarm?.nodeId).map((r) => [r.swarm!.nodeId!, r.name]))
  const listed = [...c.ready, ...c.down].map((v) => ({...v.node, host: byNode.get(v.node.id)}))
  listed.sort((a, b) => naturalCompare(a.host ?? a.hostname, b.host ?? b.hostname))
  const inSwarm = new Set(listed.map((n) => n.host).filter(Boolean))
  const missing = records.filter((r) => r.swarm?.clusterId === clusterId && !inSwarm.has(r.name)).map((r) => r.name)
  const mgr = listed.filter((n) => n.role === 'manager')
  return {
    clusterId,
    nodes: listed,
    ready: c.ready.length,
    down: c.down.length,
    managers: mgr.length,
    reachableManagers: mgr.filter((n) => n.reachability === 'reachable').length,
    leader: mgr.find((n) => n.leader)?.host ?? mgr.find((n) => n.leader)?.hostname,
    missing,
    ghosts: c.ghosts.map(ghostEntry),
    kept: c.kept.map(ghostEntry),
    ingress,
  }
}

/** `belt swarm prune`: what was (or, dry, would be) removed, and what was left and why. */
export interface SwarmPruneResult {
  clusterId?: string
  removed: GhostEntry[]
  failed: (GhostEntry & {error: string})[]
  kept: GhostEntry[]
  /** Real nodes that are not Ready: reported, never removed. */
  down: (GhostEntry & {host?: string})[]
  dryRun: boolean
}

/**
 * `belt swarm prune`: removes the entries of the swarm's node list that never completed a join
 * (no hostname and Unknown/Down, a minute old or more, while no host of the store is joining; or
 * Down under a hostname that is Ready as another node). Real Down nodes are reported, not removed.
 */
export async function swarmPrune(req: {store: Store; cluster?: string; dryRun: boolean}): Promise<SwarmPruneResult> {
  const {api, manager, clusterId, classification: c} = await inspectSwarm(req.store, req.cluster)
  const down = c.down.map((v) => ({...ghostEntry(v), hostname: v.node.hostname, host: v.host}))
  if (req.dryRun) return {clusterId, removed: c.ghosts.map(ghostEntry), failed: [], kept: c.kept.map(ghostEntry), down, dryRun: true}
  const r = await removeGhosts(api, manager, c.ghosts)
  return {clusterId, removed: r.removed.map(ghostEntry), failed: r.failed.map((f) => ({...ghostEntry(f), error: f.error})), kept: c.kept.map(ghostEntry), down, dryRun: false}
}

/**
 * `belt swarm leave`: each host leaves (forced for managers, which `force` must allow), then a
 * remaining manager removes its node from the list. Leaving the last manager ends the swarm and
 * needs `force`.
 */
export async function swarmLeave(req: {store: Store; hosts: readonly HostRecord[]; force: boolean; reporter: Reporter; concurrency: number}): Promise<HostOutcome[]> {
  const {store, reporter} = req
  const api = new EngineSwarmApi(await storeClientTls(store))
  const names = new Set(req.hosts.map((h) => h.name))
  const cluster = await clusterRecords(store, req.hosts[0]?.cluster)
  const leavingManagers = req.hosts.filter((h) => h.swarm?.role === 'manager')
  const staying = cluster.filter((r) => r.swarm?.role === 'manager' && !names.has(r.name) && r.engine)
  if (leavingManagers.length > 0 && !req.force)
    throw usageError(
      `${summarizeNames(leavingManagers.map((m) => m.name))} ${leavingManagers.length === 1 ? 'is a manager' : 'are managers'}: leaving ${staying.length === 0 ? 'ends the swarm' : 'weakens its Raft quorum'}`,
      'E_MANAGER_LEAVE',
      `demote first (belt swarm demote ${leavingManagers.map((m) => m.name).join(' ')}), or pass --force`,
    )
  const settled = await mapSettled(
    req.hosts,
    async (h): Promise<HostOutcome> => {
      await api.leave(endpointOf(h), h.swarm?.role === 'manager' || req.force)
      reporter.host(h.name, 'left the swarm')
      return {name: h.name, ok: true, phase: 'bootstrapped', address: h.machine?.address}
    },
    {concurrency: req.concurrency},
  )
  // Remove the nodes from the swarm's list through a manager that stays.
  const manager = staying[0]
  if (manager) {
    const nodes = await api.nodes(endpointOf(manager)).catch(() => [] as SwarmNode[])
    for (const h of req.hosts) {
      const node = nodes.find((n) => n.id === h.swarm?.nodeId)
      if (node) await api.removeNode(endpointOf(manager), node.id, true).catch((e) => reporter.warn(`could not remove node ${h.name} from the list: ${oneLine(e)}`))
    }
  }
  const out: HostOutcome[] = []
  for (const s of settled) {
    if (s.ok) {
      await store.update(s.item.name, (x) => {
        x.swarm = undefined
        x.phase = 'bootstrapped'
        x.times.joined = undefined
      })
      out.push(s.value)
    } else {
      reporter.host(s.item.name, `leave failed: ${oneLine(s.error)}`)
      out.push({name: s.item.name, ok: false, phase: s.item.phase, error: oneLine(s.error)})
    }
  }
  return out
}

/** `belt swarm promote|demote`: changes the role of nodes through a manager; keeps at least one manager. */
export async function swarmSetRole(req: {store: Store; hosts: readonly HostRecord[]; role: 'manager' | 'worker'; reporter: Reporter}): Promise<HostOutcome[]> {
  const {store, reporter} = req
  const api = new EngineSwarmApi(await storeClientTls(store))
  const cluster = await clusterRecords(store, req.hosts[0]?.cluster)
  const names = new Set(req.hosts.map((h) => h.name))
  const managers = cluster.filter((r) => r.swarm?.role === 'manager' && r.engine)
  const via = managers.find((m) => req.role === 'manager' || !names.has(m.name))
  if (!via) throw usageError('demoting every manager would leave the swarm without one', 'E_LAST_MANAGER', 'promote another node first')
  for (const h of req.hosts) if (!h.swarm?.nodeId) throw usageError(`${h.name} is not in a swarm`, 'E_NOT_IN_SWARM', `join it first: belt swarm join ${h.name}`)
  const after = req.role === 'manager' ? managers.length + req.hosts.filter((h) => h.swarm?.role !== 'manager').length : managers.length - req.hosts.filter((h) => h.swarm?.role === 'manager').length
  if (after > 0 && after % 2 === 0) reporter.warn(`the swarm will have ${after} managers: an even Raft group tolerates no more failures than ${after - 1}`)
  const out: HostOutcome[] = []
  // One at a time: each role change is a Raft membership change.
  for (const h of req.hosts) {
    try {
      const nodes = await api.nodes(endpointOf(via))
      const node = nodes.find((n) => n.id === h.swarm!.nodeId)
      if (!node) throw new Error('not in the swarm\'s node list')
      if (node.role !== req.role) await api.updateNode(endpointOf(via), node, {role: req.role})
      await store.update(h.name, (x) => {
        x.swarm = {...x.swarm, role: req.role}
      })
      reporter.host(h.name, req.role === 'manager' ? 'promoted to manager' : 'demoted to worker')
      out.push({name: h.name, ok: true, phase: 'joined', role: req.role, address: h.machine?.address})
    } catch (e) {
      reporter.host(h.name, `failed: ${oneLine(e)}`)
      out.push({name: h.name, ok: false, phase: h.phase, error: oneLine(e)})
    }
  }
  return out
}
