/**
 * `belt plan` / `belt apply -f`: a cluster file against what exists. {@link planConvergence} is pure
 * (the desired cluster and an observation in, actions out); {@link observeCluster} reads the store,
 * the drivers and the swarm; {@link applyCluster} acts through the existing services (the create
 * pipeline, remove-hosts, bootstrap) and the engines' swarm API. The store stays the only state:
 * group membership follows from host names, and the swarm labels Belt manages are kept in each
 * host's record (`swarm.labels`).
 */
import {findDriver, type DriverEntry} from '../../drivers/registry.js'
import type {DriverOptions} from '../../drivers/driver.js'
import {engineRequest, type ClientTls} from '../bootstrap/engine-api.js'
import type {EngineConfig} from '../bootstrap/commands.js'
import {oneLine, usageError} from '../errors.js'
import {flagName} from '../../drivers/registry.js'
import {mapSettled} from '../scheduler/pool.js'
import {pidAlive} from '../store/batches.js'
import {naturalCompare, type Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {EngineSwarmApi, type EngineEndpoint} from '../swarm/api.js'
import type {Reporter} from '../ui/reporter.js'
import {bootstrapOne, prepareBootstrap, type BootstrapSetup} from './bootstrap-hosts.js'
import {hostCertWarning} from './cert-warnings.js'
import type {ClusterSpec, GroupSpec} from './cluster-file.js'
import {indexIn} from './cluster-file.js'
import {resolveDriverOptions} from './driver-context.js'
import {liveStates} from './list-hosts.js'
import {runCreatePipeline, type PipelineResult} from './pipeline.js'
import {removeHosts} from './remove-hosts.js'
import {clusterRecords, endpointOf, storeClientTls} from './swarm.js'
import {newRunId, RUN_SCHEMA_VERSION, saveRun, type Run, type RunHost} from '../store/runs.js'
import {rm} from 'node:fs/promises'
import {DEFAULT_JOIN_CONCURRENCY} from './swarm.js'

/** Default grace before a node that is Down is replaced: see README "Declarative clusters". */
export const DEFAULT_REPLACE_AFTER_MS = 5 * 60_000

/** A swarm node as Belt reads it for convergence (with the time of its last status change). */
export interface ObservedNode {
  id: string
  version: number
  hostname: string
  role: 'manager' | 'worker'
  availability: 'active' | 'pause' | 'drain'
  state: string
  leader: boolean
  reachability?: string
  labels: Record<string, string>
  /** When the node object last changed (a status change updates it), ISO 8601. */
  updatedAt?: string
}

export interface ObservedHost {
  record: HostRecord
  /** The driver's state (`running`, `stopped`, `missing`, `unknown`) or the record's phase when there is no machine. */
  live: string
  node?: ObservedNode
  /** A live belt process owns the record. */
  busy?: boolean
}

export interface Observation {
  /** Every record of the store (other clusters too: a name is global). */
  hosts: ObservedHost[]
  /** A manager answered with the node list. */
  swarmKnown: boolean
  swarmError?: string
}

export type Action =
  | {kind: 'create'; host: string; group: string; role: 'manager' | 'worker'}
  | {kind: 'resume'; host: string; group: string; role: 'manager' | 'worker'; from: string}
  | {kind: 'replace'; host: string; group: string; role: 'manager' | 'worker'; reason: string}
  | {kind: 'remove'; host: string; group: string; role: 'manager' | 'worker'; reason: string}
  | {kind: 'relabel'; host: string; group: string; add: Record<string, string>; remove: string[]}
  | {kind: 'roll'; host: string; group: string; role: 'manager' | 'worker'; changes: string[]; renewCert: boolean}

export interface ConvergencePlan {
  cluster: string
  file: string
  actions: Action[]
  /** Hosts of the cluster that no group names: left alone. */
  unmanaged: string[]
  /** Hosts Belt will not touch this time, and why (a Down node within its grace, a busy record, ...). */
  waiting: {host: string; why: string}[]
  /** Problems that stop apply before it changes anything. */
  blocked: {host: string; why: string}[]
}

const ENGINE_FIELDS = ['labels', 'opts', 'insecureRegistries', 'registryMirrors', 'storageDriver', 'version', 'installUrl', 'installProxy'] as const

/** What differs between the engine settings a host was bootstrapped with and the file's, one phrase each. */
export function engineChanges(recorded: EngineConfig | undefined, desired: EngineConfig): string[] {
  const out: string[] = []
  const norm = (v: unknown) => (Array.isArray(v) ? [...v].sort() : (v ?? undefined) || undefined)
  for (const k of ENGINE_FIELDS) {
    const a = norm(recorded?.[k])
    const b = norm(desired[k])
    if (Array.isArray(a) || Array.isArray(b)) {
      const x = (a as string[] | undefined) ?? []
      const y = (b as string[] | undefined) ?? []
      const added = y.filter((v) => !x.includes(v))
      const gone = x.filter((v) => !y.includes(v))
      if (added.length + gone.length > 0) out.push(`engine ${k}: ${[...added.map((v) => `+${v}`), ...gone.map((v) => `-${v}`)].join(' ')}`)
    } else if (a !== b) out.push(`engine ${k}: ${a ?? '(none)'} -> ${b ?? '(none)'}`)
  }
  return out
}

/** Labels to set and remove on a node: the group's, and the keys Belt set before (recorded) that the group no longer has. */
export function labelChanges(desired: Record<string, string>, current: Record<string, string>, managed: readonly string[]): {add: Record<string, string>; remove: string[]} {
  const add: Record<string, string> = {}
  for (const [k, v] of Object.entries(desired)) if (current[k] !== v) add[k] = v
  const remove = managed.filter((k) => !(k in desired) && k in current)
  return {add, remove}
}

const managedLabels = (r: HostRecord): string[] => (Array.isArray(r.swarm?.labels) ? (r.swarm!.labels as unknown[]).filter((x): x is string => typeof x === 'string') : [])

const ago = (ms: number) => (ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`)

/**
 * What apply would do, from the file and an observation; pure. Hosts are matched to groups by name
 * (`web{n}`): index 1..count are wanted, higher ones go (highest first).
 */
export function planConvergence(spec: ClusterSpec, obs: Observation, o: {now: number; replaceAfterMs: number}): ConvergencePlan {
  const plan: ConvergencePlan = {cluster: spec.cluster, file: spec.file, actions: [], unmanaged: [], waiting: [], blocked: []}
  const byName = new Map(obs.hosts.map((h) => [h.record.name, h]))
  const mine = obs.hosts.filter((h) => h.record.cluster === spec.cluster)
  const claimed = new Set<string>()
  const removes: Extract<Action, {kind: 'remove'}>[] = []
  const pinned = (findDriver(spec.driver)?.options ?? []).filter((o) => o.pinned && !o.secret)
  for (const g of spec.groups) {
    for (const name of g.hosts) {
      claimed.add(name)
      const h = byName.get(name)
      if (!h) {
        plan.actions.push({kind: 'create', host: name, group: g.name, role: g.role})
        continue
      }
      const r = h.record
      if (r.cluster !== spec.cluster) {
        plan.blocked.push({host: name, why: `the name belongs to a host of cluster ${r.cluster}`})
        continue
      }
      if (r.driver !== spec.driver) {
        plan.blocked.push({host: name, why: `created by driver ${r.driver}, the file says ${spec.driver}`})
        continue
      }
      if (h.busy) {
        plan.waiting.push({host: name, why: `belt process ${r.owner?.pid} is working on it (${r.phase})`})
        continue
      }
      // Pinned options (subnet, endpoint, region) say where a host lives: it cannot move, and its
      // peers must be made where it is.
      const moved = pinned.filter((o) => (r.driverOptions[o.name] ?? o.default) !== (g.driverOptions[o.name] ?? o.default))
      if (moved.length > 0) {
        plan.blocked.push({host: name, why: moved.map((o) => `created with ${o.name} ${r.driverOptions[o.name] ?? o.default ?? '(none)'}, the file says ${g.driverOptions[o.name] ?? o.default ?? '(none)'}`).join('; ') + `: a host cannot move (remove it with belt rm ${name}, or fix the file)`})
        continue
      }
      if (h.live === 'missing') {
        plan.actions.push({kind: 'replace', host: name, group: g.name, role: g.role, reason: 'its machine is Missing'})
        continue
      }
      if (r.phase === 'removing' || r.error?.phase === 'removing') {
        plan.actions.push({kind: 'replace', host: name, group: g.name, role: g.role, reason: 'an earlier removal did not finish'})
        continue
      }
      // A joined host keeps its phase whatever an earlier step left in `error` (the pipeline would
      // refuse to take a joined host on again).
      // A swarm member whose engine step failed or was cut off (a roll, a provision): bootstrapped
      // again in place like a roll, never joined again (it would take another role).
      if (r.phase !== 'joined' && r.machine && h.node && r.swarm?.nodeId === h.node.id) {
        plan.actions.push({kind: 'roll', host: name, group: g.name, role: h.node.role, changes: [`finish the engine: left ${r.phase}${r.error ? ` (${r.error.phase} failed)` : ''}`, ...engineChanges(r.engine?.config, spec.engine)], renewCert: false})
        continue
      }
      if (r.phase !== 'joined') {
        plan.actions.push({kind: 'resume', host: name, group: g.name, role: g.role, from: r.error ? `${r.phase}, ${r.error.phase} failed` : r.phase})
        continue
      }
      if (obs.swarmKnown && !h.node) {
        plan.blocked.push({host: name, why: `recorded as joined but not in the swarm's node list: belt swarm join ${name}`})
        continue
      }
      if (h.node && h.node.state === 'down') {
        const since = h.node.updatedAt ? Date.parse(h.node.updatedAt) : NaN
        const downFor = Number.isFinite(since) ? o.now - since : Infinity
        if (downFor >= o.replaceAfterMs) {
          plan.actions.push({kind: 'replace', host: name, group: g.name, role: g.role, reason: `its node is Down${Number.isFinite(downFor) ? ` for ${ago(downFor)}` : ''} (--replace-after ${ago(o.replaceAfterMs)})`})
        } else plan.waiting.push({host: name, why: `node Down for ${ago(downFor)}: replaced once Down for ${ago(o.replaceAfterMs)}`})
        continue
      }
      if (h.node) {
        const {add, remove} = labelChanges(g.labels, h.node.labels, managedLabels(r))
        if (Object.keys(add).length + remove.length > 0) plan.actions.push({kind: 'relabel', host: name, group: g.name, add, remove})
        if (h.node.role !== g.role) plan.waiting.push({host: name, why: `is a ${h.node.role} but group ${g.name} has role ${g.role}: belt swarm ${g.role === 'manager' ? 'promote' : 'demote'} ${name}`})
      }
      const changes = engineChanges(r.engine?.config, spec.engine)
      const cert = hostCertWarning(r, new Date(o.now))
      if (cert) changes.push(`new server certificate (${cert.replace(/:.*$/, '')})`)
      if (changes.length > 0) plan.actions.push({kind: 'roll', host: name, group: g.name, role: g.role, changes, renewCert: Boolean(cert)})
    }
    // Scale down: the group's hosts numbered above count, highest first.
    const extra = mine
      .filter((h) => !claimed.has(h.record.name) && (indexIn(g.pattern, h.record.name) ?? 0) > g.count)
      .sort((a, b) => naturalCompare(b.record.name, a.record.name))
    for (const h of extra) {
      claimed.add(h.record.name)
      if (h.busy) plan.waiting.push({host: h.record.name, why: `belt process ${h.record.owner?.pid} is working on it (${h.record.phase})`})
      else removes.push({kind: 'remove', host: h.record.name, group: g.name, role: h.node?.role ?? (h.record.swarm?.role as 'manager' | 'worker' | undefined) ?? g.role, reason: `group ${g.name} wants ${g.count}`})
    }
  }
  // Workers go first; of the managers, the leader is demoted first (while the Raft group is largest).
  const leader = (n: string) => byName.get(n)?.node?.leader === true
  removes.sort((a, b) => (a.role === b.role ? (leader(a.host) ? -1 : leader(b.host) ? 1 : 0) : a.role === 'worker' ? -1 : 1))
  plan.actions.push(...removes)
  plan.unmanaged = mine.filter((h) => !claimed.has(h.record.name)).map((h) => h.record.name)
  // Never below quorum: managers that stay (and answer) must be a majority of the managers there will be.
  const managersNow = mine.filter((h) => h.node?.role === 'manager')
  const reachableStaying = managersNow.filter((h) => h.node!.reachability === 'reachable' && !removes.some((a) => a.host === h.record.name) && !plan.actions.some((a) => a.kind === 'replace' && a.host === h.record.name)).length
  const managersAfter = spec.swarm.managers
  if (managersNow.length > 0 && reachableStaying < Math.floor(managersAfter / 2) + 1 && reachableStaying < Math.floor(managersNow.length / 2) + 1)
    plan.blocked.push({host: '(swarm)', why: `${reachableStaying} reachable manager${reachableStaying === 1 ? '' : 's'} would stay of ${managersNow.length}: below quorum; bring managers back first (belt swarm status)`})
  return plan
}

/** One line per action, for `belt plan` and `belt apply`. */
export function describeAction(a: Action): string {
  const pad = (s: string) => s.padEnd(8)
  switch (a.kind) {
    case 'create':
      return `${pad('create')} ${a.host} (${a.role}, group ${a.group})`
    case 'resume':
      return `${pad('resume')} ${a.host} (${a.role}, group ${a.group}): left ${a.from}`
    case 'replace':
      return `${pad('replace')} ${a.host} (${a.role}, group ${a.group}): ${a.reason}`
    case 'remove':
      return `${pad('remove')} ${a.host} (${a.role}, group ${a.group}): ${a.role === 'manager' ? 'demote, ' : ''}drain, then remove (${a.reason})`
    case 'relabel':
      return `${pad('relabel')} ${a.host}: ${[...Object.entries(a.add).map(([k, v]) => `+${k}=${v}`), ...a.remove.map((k) => `-${k}`)].join(' ')}`
    case 'roll':
      return `${pad('roll')} ${a.host} (${a.role}): ${a.changes.join('; ')}`
  }
}

interface RawNode {
  ID: string
  UpdatedAt?: string
  Version: {Index: number}
  Spec: {Role: 'manager' | 'worker'; Availability: 'active' | 'pause' | 'drain'; Labels?: Record<string, string>; Name?: string}
  Description?: {Hostname?: string}
  Status: {State: string}
  ManagerStatus?: {Leader?: boolean; Reachability?: string}
}

/** The engine calls convergence needs beyond {@link EngineSwarmApi}: nodes with times and labels, label updates, tasks. */
export class ConvergeApi {
  readonly swarm: EngineSwarmApi
  constructor(private readonly tls: ClientTls) {
    this.swarm = new EngineSwarmApi(tls)
  }
  async nodes(m: EngineEndpoint): Promise<ObservedNode[]> {
    const raw = await engineRequest<RawNode[]>(m.address, m.port, this.tls, 'GET', '/nodes')
    return raw.map((n) => ({
      id: n.ID,
      version: n.Version.Index,
      hostname: n.Description?.Hostname ?? n.ID,
      role: n.Spec.Role,
      availability: n.Spec.Availability,
      state: n.Status.State,
      leader: Boolean(n.ManagerStatus?.Leader),
      reachability: n.ManagerStatus?.Reachability,
      labels: n.Spec.Labels ?? {},
      updatedAt: n.UpdatedAt,
    }))
  }
  async update(m: EngineEndpoint, n: ObservedNode, change: {role?: 'manager' | 'worker'; availability?: 'active' | 'pause' | 'drain'; labels?: Record<string, string>}): Promise<void> {
    const spec = {Role: change.role ?? n.role, Availability: change.availability ?? n.availability, Labels: change.labels ?? n.labels}
    await engineRequest(m.address, m.port, this.tls, 'POST', `/nodes/${encodeURIComponent(n.id)}/update?version=${n.version}`, spec)
  }
  /**
   * Changes a node's spec from its current version: read, update, and read again when another
   * change came in between ("update out of sequence", e.g. the swarm's own update after a demotion).
   */
  async change(m: EngineEndpoint, nodeId: string, change: {role?: 'manager' | 'worker'; availability?: 'active' | 'pause' | 'drain'; labels?: Record<string, string>}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const n = (await this.nodes(m)).find((x) => x.id === nodeId)
      if (!n) throw new Error(`node ${nodeId.slice(0, 12)} is not in the swarm's node list`)
      try {
        return await this.update(m, n, change)
      } catch (e) {
        if (attempt >= 10 || !/out of sequence/i.test(oneLine(e))) throw e
        await sleep(500 * attempt)
      }
    }
  }
  /** Tasks still running on a node. */
  async runningTasks(m: EngineEndpoint, nodeId: string): Promise<number> {
    const filters = encodeURIComponent(JSON.stringify({node: [nodeId]}))
    const tasks = await engineRequest<{Status?: {State?: string}}[]>(m.address, m.port, this.tls, 'GET', `/tasks?filters=${filters}`)
    return tasks.filter((t) => ['running', 'starting', 'preparing', 'assigned', 'accepted', 'ready'].includes(t.Status?.State ?? '')).length
  }
}

/** The swarm's node list from the first manager of the cluster that answers. */
async function readNodes(api: ConvergeApi, records: readonly HostRecord[], avoid?: string): Promise<{nodes: ObservedNode[]; via: HostRecord} | {error: string}> {
  // `avoid` (a host whose engine is about to restart) is asked last: a swarm of one manager has no other.
  const managers = records.filter((r) => r.swarm?.role === 'manager' && r.engine).sort((a, b) => Number(a.name === avoid) - Number(b.name === avoid))
  let last = 'no host of the cluster is a swarm manager'
  for (const m of managers) {
    try {
      const nodes = await api.nodes(endpointOf(m))
      return {nodes, via: m}
    } catch (e) {
      last = `${m.name}: ${oneLine(e)}`
    }
  }
  return {error: last}
}

/** The node of a record: by the node ID it recorded, else by hostname (Ready first). */
function nodeOf(r: HostRecord, nodes: readonly ObservedNode[]): ObservedNode | undefined {
  return nodes.find((n) => n.id === r.swarm?.nodeId) ?? nodes.filter((n) => n.hostname === r.name).sort((a) => (a.state === 'ready' ? -1 : 1))[0]
}

/** Reads the store, the hosts' live states and the swarm's node list. Changes nothing. */
export async function observeCluster(store: Store, spec: ClusterSpec, api?: ConvergeApi): Promise<Observation> {
  const all = await clusterRecords(store)
  const mine = all.filter((r) => r.cluster === spec.cluster)
  const live = await liveStates(store, mine)
  let nodes: ObservedNode[] = []
  let swarmKnown = false
  let swarmError: string | undefined
  if (mine.some((r) => r.swarm?.role === 'manager')) {
    const r = await readNodes(api ?? new ConvergeApi(await storeClientTls(store)), mine)
    if ('nodes' in r) {
      nodes = r.nodes
      swarmKnown = true
    } else swarmError = r.error
  }
  const liveOf = new Map(mine.map((r, i) => [r.name, live[i]!.state as string]))
  return {
    hosts: all.map((r) => ({record: r, live: liveOf.get(r.name) ?? r.phase, node: r.cluster === spec.cluster ? nodeOf(r, nodes) : undefined, busy: pidAlive(r.owner?.pid)})),
    swarmKnown,
    swarmError,
  }
}

export interface ApplyRequest {
  store: Store
  spec: ClusterSpec
  replaceAfterMs: number
  /** Hosts rolled at once (workers; managers always go one at a time). */
  maxUnavailable: number
  reporter: Reporter
  /** The command line for the experiment log (no secrets). */
  command: string
  signal?: AbortSignal
  env?: NodeJS.ProcessEnv
  /** How long a node may take to be Ready again, or a drained node to empty (default 180 s). */
  settleMs?: number
}

export interface ActionOutcome {
  action: Action
  ok: boolean
  error?: string
}

export interface ApplyResult {
  plan: ConvergencePlan
  outcomes: ActionOutcome[]
  runFiles: string[]
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), {once: true})
  })

/** Driver options of a group, from the file and the environment; a missing required one is a usage error. */
function groupOptions(entry: DriverEntry, g: GroupSpec, env?: NodeJS.ProcessEnv): {options: DriverOptions; persistable: Record<string, string>} {
  const {options, persistable, missing} = resolveDriverOptions(entry, g.driverOptions, undefined, env)
  if (missing.length > 0) {
    const o = entry.options.find((x) => x.name === missing[0])!
    throw usageError(`group ${g.name}: missing driver option ${o.name}`, 'E_MISSING_OPTION', o.secret ? `set ${o.env ?? `--${flagName(entry.name, o.name)}`} in the environment` : `add driverOptions: {${o.name}: ...} to the file${o.env ? ` or set ${o.env}` : ''}`)
  }
  return {options, persistable}
}

/**
 * Converges the cluster to the file: replaces, then creates and resumes (the create pipeline, each
 * group's hosts joining in its role), sets node labels, scales down (drain, then remove; managers
 * demoted first, quorum kept), and rolls engine changes (drain, bootstrap, Ready, re-activate), one
 * manager at a time and `maxUnavailable` workers at a time. Each action's outcome is returned.
 */
export async function applyCluster(req: ApplyRequest): Promise<ApplyResult> {
  const {store, spec, reporter, signal} = req
  const entry = findDriver(spec.driver)!
  const groupOpts = new Map(spec.groups.map((g) => [g.name, groupOptions(entry, g, req.env)]))
  await store.init()
  const api = new ConvergeApi(await storeClientTls(store))
  const startedAt = new Date()
  const plan = planConvergence(spec, await observeCluster(store, spec, api), {now: Date.now(), replaceAfterMs: req.replaceAfterMs})
  const result: ApplyResult = {plan, outcomes: [], runFiles: []}
  if (plan.blocked.length > 0)
    throw usageError(`${plan.blocked.map((b) => `${b.host}: ${b.why}`).join('; ')}`, 'E_APPLY_BLOCKED', 'nothing was changed; fix these, or see belt plan -f ' + spec.file)
  if (plan.actions.length === 0) return result
  for (const a of plan.actions) reporter.info(describeAction(a))
  const done = (action: Action, ok: boolean, error?: string) => {
    result.outcomes.push({action, ok, error})
    if (!ok) reporter.host(action.host, `${action.kind} failed: ${error}`)
  }
  const settleMs = req.settleMs ?? 180_000
  const touched = new Set<string>()

  // 1. Replace: the old node leaves the swarm's list (demoted first when a manager), the host goes.
  const replaces = plan.actions.filter((a) => a.kind === 'replace')
  for (const a of replaces) {
    if (signal?.aborted) break
    try {
      const rec = await store.get(a.host)
      const cluster = await clusterRecords(store, spec.cluster)
      const r = await readNodes(api, cluster, a.host)
      if ('nodes' in r) {
        const node = nodeOf(rec, r.nodes)
        if (node) {
          if (node.role === 'manager') await api.change(endpointOf(r.via), node.id, {role: 'worker'})
          const fresh = (await api.nodes(endpointOf(r.via))).find((n) => n.id === node.id)
          if (fresh) await api.swarm.removeNode(endpointOf(r.via), fresh.id, true)
          reporter.host(a.host, `node ${node.id.slice(0, 12)} removed from the swarm`)
        }
      }
      const [out] = await removeHosts({store, hosts: [rec], force: false, concurrency: 1, reporter, env: req.env, signal})
      if (!out?.ok) throw new Error(out?.error ?? 'not removed')
    } catch (e) {
      done(a, false, oneLine(e))
    }
  }

  // 2. Create and resume through the create pipeline: manager groups first (they take the free
  // manager slots), then worker groups (no slot left: they join as workers). A batch per role and
  // driver option set.
  const make = plan.actions.filter((a) => (a.kind === 'create' || a.kind === 'resume' || a.kind === 'replace') && !result.outcomes.some((o) => o.action === a))
  const batches = new Map<string, {options: DriverOptions; persistable: Record<string, string>; hosts: string[]; role: 'manager' | 'worker'}>()
  for (const g of [...spec.groups].sort((a, b) => (a.role === b.role ? 0 : a.role === 'manager' ? -1 : 1))) {
    const hosts = make.filter((a) => a.group === g.name).map((a) => a.host)
    if (hosts.length === 0) continue
    const o = groupOpts.get(g.name)!
    const key = `${g.role}\0${JSON.stringify(o.options)}`
    const b = batches.get(key) ?? {...o, hosts: [], role: g.role}
    b.hosts.push(...hosts)
    batches.set(key, b)
  }
  const pipelines: PipelineResult[] = []
  let managerFailed = false
  for (const b of batches.values()) {
    if (signal?.aborted) break
    if (b.role === 'worker' && managerFailed) {
      for (const h of b.hosts) done(make.find((x) => x.host === h)!, false, 'not created: a manager of the file is missing, and a worker would take its slot')
      continue
    }
    const r = await runCreatePipeline({
      store,
      driver: entry,
      options: b.options,
      persistable: b.persistable,
      selection: {patterns: b.hosts},
      cluster: spec.cluster,
      createConcurrency: entry.createConcurrency,
      bootstrap: {engine: spec.engine, concurrency: entry.bootstrapConcurrency},
      swarm: {
        managers: spec.swarm.managers,
        concurrency: spec.swarm.joinConcurrency ?? DEFAULT_JOIN_CONCURRENCY,
        availability: spec.swarm.managerAvailability ?? 'auto',
        advertiseType: spec.swarm.advertiseAddrType ?? 'auto',
        noIngress: spec.swarm.ingress === false,
      },
      reporter,
      command: req.command,
      signal,
    })
    pipelines.push(r)
    result.runFiles.push(r.runFile)
    for (const o of r.outcomes) {
      const a = make.find((x) => x.host === o.name)
      if (!a) continue
      const wrongRole = o.ok && o.role !== undefined && o.role !== b.role
      done(a, o.ok && !wrongRole, wrongRole ? `joined as ${o.role}, group ${a.group} has role ${b.role}` : o.error)
      if (b.role === 'manager' && (!o.ok || wrongRole)) managerFailed = true
    }
  }

  // 3. Node labels, read live (new hosts included) after the joins.
  if (!signal?.aborted) {
    const cluster = await clusterRecords(store, spec.cluster)
    const r = await readNodes(api, cluster)
    if ('nodes' in r)
      for (const g of spec.groups)
        for (const name of g.hosts) {
          const rec = cluster.find((x) => x.name === name)
          const node = rec && nodeOf(rec, r.nodes)
          if (!rec || !node) continue
          const {add, remove} = labelChanges(g.labels, node.labels, managedLabels(rec))
          const planned = plan.actions.find((a): a is Extract<Action, {kind: 'relabel'}> => a.kind === 'relabel' && a.host === name)
          if (Object.keys(add).length + remove.length === 0 && managedLabels(rec).join() === Object.keys(g.labels).sort().join()) {
            if (planned) done(planned, true)
            continue
          }
          const action: Action = planned ?? {kind: 'relabel', host: name, group: g.name, add, remove}
          try {
            const labels = {...node.labels, ...add}
            for (const k of remove) delete labels[k]
            if (Object.keys(add).length + remove.length > 0) {
              await api.change(endpointOf(r.via), node.id, {labels})
              reporter.host(name, `node labels ${describeAction({...action, add, remove} as Action).replace(/^relabel\s+\S+: /, '')}`)
            }
            await store.update(name, (x) => {
              x.swarm = {...x.swarm, labels: Object.keys(g.labels).sort()}
            })
            if (planned) done(planned, true)
            touched.add(name)
          } catch (e) {
            done(action, false, oneLine(e))
          }
        }
    else for (const a of plan.actions.filter((x) => x.kind === 'relabel')) done(a, false, `no manager answered: ${r.error}`)
  }

  // 4. Scale down: workers (maxUnavailable at a time), then managers one at a time.
  const removes = plan.actions.filter((a): a is Extract<Action, {kind: 'remove'}> => a.kind === 'remove')
  const removeOne = async (a: Extract<Action, {kind: 'remove'}>) => {
    try {
      await drainAndRemove(req, api, a.host, settleMs)
      done(a, true)
    } catch (e) {
      done(a, false, oneLine(e))
    }
  }
  await mapSettled(removes.filter((a) => a.role === 'worker'), removeOne, {concurrency: req.maxUnavailable, signal})
  for (const a of removes.filter((x) => x.role === 'manager')) if (!signal?.aborted) await removeOne(a)

  // 5. Roll engine changes: managers one at a time (the leader last), then workers, maxUnavailable at a time.
  const rolls = plan.actions.filter((a): a is Extract<Action, {kind: 'roll'}> => a.kind === 'roll')
  if (rolls.length > 0 && !signal?.aborted) {
    const setup = await prepareBootstrap(store)
    let stop = false
    const rollOne = async (a: Extract<Action, {kind: 'roll'}>) => {
      if (stop || signal?.aborted) return
      try {
        await rollHost(req, api, setup, a, settleMs)
        touched.add(a.host)
        done(a, true)
      } catch (e) {
        // A failed roll stops the roll: the next hosts keep their working engines.
        stop = true
        done(a, false, oneLine(e))
      }
    }
    const leaderName = (await observeCluster(store, spec, api)).hosts.find((h) => h.node?.leader)?.record.name
    const managers = rolls.filter((a) => a.role === 'manager').sort((x, y) => Number(x.host === leaderName) - Number(y.host === leaderName))
    for (const a of managers) await rollOne(a)
    await mapSettled(rolls.filter((a) => a.role === 'worker'), rollOne, {concurrency: req.maxUnavailable, signal})
    for (const a of rolls) if (!result.outcomes.some((o) => o.action === a)) reporter.host(a.host, stop ? 'not rolled: an earlier roll failed' : 'not rolled: interrupted')
  }

  // One run record per apply for belt report, like a create's: every host acted on, its phase
  // times from this apply only (a rolled host's creation belongs to an earlier run). The pipeline's
  // own records of its batches are folded into it.
  const hosts: RunHost[] = []
  for (const o of result.outcomes) {
    if (hosts.some((h) => h.name === o.action.host)) continue
    const rec = await store.tryGet(o.action.host).catch(() => undefined)
    const times = Object.fromEntries(Object.entries(rec?.times ?? {}).filter(([, v]) => typeof v === 'string' && Date.parse(v) >= startedAt.getTime()))
    const role = rec?.swarm?.role as 'manager' | 'worker' | undefined
    hosts.push({name: o.action.host, times, ok: o.ok, ...(o.ok ? {} : {failedPhase: o.action.kind, error: o.error}), ...(role ? {role} : {}), ...(pipelines.some((p) => p.timeouts.includes(o.action.host)) ? {joinTimedOut: true} : {})})
  }
  if (hosts.length > 0) {
    const run: Run = {
      schemaVersion: RUN_SCHEMA_VERSION,
      id: newRunId(startedAt),
      command: req.command,
      driver: spec.driver,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      settings: {maxUnavailable: req.maxUnavailable, replaceAfterSeconds: Math.round(req.replaceAfterMs / 1000), managers: spec.swarm.managers, ...Object.fromEntries([...new Set(plan.actions.map((a) => a.kind))].map((k) => [`${k}`, plan.actions.filter((a) => a.kind === k).length]))},
      hosts,
    }
    for (const f of result.runFiles) await rm(f, {force: true})
    result.runFiles = [await saveRun(store, run)]
  }
  return result
}

/** Polls until `test` says yes, the signal aborts or `ms` pass; resolves with the last answer. */
async function until<T>(ms: number, signal: AbortSignal | undefined, read: () => Promise<T>, test: (v: T) => boolean): Promise<T> {
  const end = Date.now() + ms
  let v = await read().catch(() => undefined as T)
  while (!test(v) && Date.now() < end && !signal?.aborted) {
    await sleep(1000, signal)
    v = await read().catch(() => v)
  }
  return v
}

/** The node of a host through a manager other than the host itself (it may be restarting). */
async function nodeThrough(api: ConvergeApi, store: Store, cluster: string, host: string): Promise<{node?: ObservedNode; via: EngineEndpoint}> {
  const records = await clusterRecords(store, cluster)
  const r = await readNodes(api, records, host)
  if (!('nodes' in r)) throw new Error(`no manager answered: ${r.error}`)
  const rec = records.find((x) => x.name === host)!
  return {node: nodeOf(rec, r.nodes), via: endpointOf(r.via)}
}

/** Drains a host (demoting it first when a manager, if the quorum allows), waits for its tasks to move, then it leaves and goes. */
async function drainAndRemove(req: ApplyRequest, api: ConvergeApi, host: string, settleMs: number): Promise<void> {
  const {store, reporter, spec, signal} = req
  let {node, via} = await nodeThrough(api, store, spec.cluster, host)
  if (node?.role === 'manager') {
    const managers = (await api.nodes(via)).filter((n) => n.role === 'manager')
    const reachableAfter = managers.filter((n) => n.id !== node!.id && n.reachability === 'reachable').length
    if (reachableAfter < Math.floor((managers.length - 1) / 2) + 1 || managers.length <= 1)
      throw new Error(`demoting it would leave ${reachableAfter} reachable of ${managers.length - 1} managers: below quorum`)
    await api.change(via, node.id, {role: 'worker'})
    reporter.host(host, 'demoted to worker')
    await store.update(host, (x) => {
      x.swarm = {...x.swarm, role: 'worker'}
    })
    ;({node, via} = await nodeThrough(api, store, spec.cluster, host))
  }
  if (node) {
    if (node.availability !== 'drain') await api.change(via, node.id, {availability: 'drain'})
    reporter.host(host, 'draining')
    const left = await until(settleMs, signal, () => api.runningTasks(via, node!.id), (n) => n === 0)
    if (left > 0) throw new Error(`${left} task${left === 1 ? '' : 's'} still running after ${Math.round(settleMs / 1000)} s of drain; not removed`)
    signal?.throwIfAborted()
    const rec = await store.get(host)
    await api.swarm.leave(endpointOf(rec), false).catch((e) => reporter.host(host, `leave: ${oneLine(e)}; removing the node from the list anyway`))
    await api.swarm.removeNode(via, node.id, true)
    reporter.host(host, 'left the swarm')
  }
  const [out] = await removeHosts({store, hosts: [await store.get(host)], force: false, concurrency: 1, reporter, env: req.env, signal})
  if (!out?.ok) throw new Error(out?.error ?? 'not removed')
}

/** Drain, bootstrap with the file's engine settings, wait for Ready, then the availability it had. */
async function rollHost(req: ApplyRequest, api: ConvergeApi, setup: BootstrapSetup, a: Extract<Action, {kind: 'roll'}>, settleMs: number): Promise<void> {
  const {store, reporter, spec, signal} = req
  const {node, via} = await nodeThrough(api, store, spec.cluster, a.host)
  if (!node) throw new Error('not in the swarm\'s node list')
  const availability = node.availability
  const readyBefore = (await api.nodes(via)).filter((n) => n.state === 'ready').length
  if (availability !== 'drain') {
    await api.change(via, node.id, {availability: 'drain'})
    reporter.host(a.host, 'draining for the engine change')
    await until(settleMs, signal, () => api.runningTasks(via, node.id), (n) => n === 0)
  }
  const b = await bootstrapOne(setup, a.host, {engine: spec.engine, renewCert: a.renewCert, reporter, signal})
  // bootstrapOne records `bootstrapped`: the host is still the swarm member it was.
  await store.update(a.host, (x) => {
    if (x.swarm?.nodeId && x.phase === 'bootstrapped') x.phase = 'joined'
  })
  if (!b.ok) throw new Error(b.error ?? 'bootstrap failed')
  // The restarted engine itself says it is back in the swarm (a manager may still list the node
  // Ready from before the restart, its heartbeat not yet missed), then the managers agree.
  const rec = await store.get(a.host)
  const back = await until(settleMs, signal, () => api.swarm.info(endpointOf(rec)), (i) => i?.state === 'active' && (a.role !== 'manager' || i.isManager))
  if (back?.state !== 'active') throw new Error(`its engine's swarm state is ${back?.state ?? 'unknown'} ${Math.round(settleMs / 1000)} s after the engine change${back?.error ? ` (${back.error})` : ''}`)
  const ready = await until(
    settleMs,
    signal,
    async () => (await nodeThrough(api, store, spec.cluster, a.host)).node,
    (n) => n?.state === 'ready' && (n.role !== 'manager' || n.reachability === 'reachable'),
  )
  if (ready?.state !== 'ready') throw new Error(`its node is ${ready?.state ?? 'gone'} ${Math.round(settleMs / 1000)} s after the engine change`)
  // The swarm settles before the next host goes: after the leader's restart the new leader lists
  // every node Unknown until its heartbeat comes (swarmkit), and those must be Ready again first.
  const settled = await until(
    settleMs,
    signal,
    async () => {
      const t = await nodeThrough(api, store, spec.cluster, a.host)
      return (await api.nodes(t.via)).filter((n) => n.state === 'ready').length
    },
    (n) => n >= readyBefore,
  )
  if (settled < readyBefore) throw new Error(`${readyBefore - settled} node${readyBefore - settled === 1 ? ' is' : 's are'} not Ready again ${Math.round(settleMs / 1000)} s after the engine change (${settled} of ${readyBefore} Ready)`)
  if (availability !== 'drain') {
    const fresh = await nodeThrough(api, store, spec.cluster, a.host)
    await api.change(fresh.via, fresh.node!.id, {availability})
  }
  reporter.host(a.host, `rolled (${a.changes.join('; ')}); Ready and ${availability} again`)
}

/**
 * `belt apply --watch`: converges, then again every `intervalMs`, until the signal aborts. Each
 * round's result goes to `onRound`; a round that fails is reported and the next one tries again.
 */
export async function watchCluster(req: ApplyRequest & {intervalMs: number; load: () => Promise<ClusterSpec>; onRound: (r: ApplyResult | Error) => void}): Promise<void> {
  while (!req.signal?.aborted) {
    try {
      req.onRound(await applyCluster({...req, spec: await req.load()}))
    } catch (e) {
      if (req.signal?.aborted) break
      req.onRound(e instanceof Error ? e : new Error(String(e)))
    }
    await sleep(req.intervalMs, req.signal)
  }
}

/** `belt plan -f`: the file against what exists; changes nothing. */
export async function planCluster(store: Store, spec: ClusterSpec, replaceAfterMs: number): Promise<ConvergencePlan & {swarmError?: string}> {
  const obs = await observeCluster(store, spec)
  return {...planConvergence(spec, obs, {now: Date.now(), replaceAfterMs}), ...(obs.swarmError ? {swarmError: obs.swarmError} : {})}
}

/** `90s`, `5m`, `1h`, `0`: milliseconds; undefined when it is not a duration. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim())
  if (!m) return undefined
  const unit = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}[(m[2] ?? (m[1] === '0' ? 's' : '')) as 'ms' | 's' | 'm' | 'h']
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit)
}
