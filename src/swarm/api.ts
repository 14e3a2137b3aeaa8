import {engineRequest, EngineApiError, type ClientTls} from '../bootstrap/engine-api.js'

/** Where a host's engine answers (its Docker API over mutual TLS). */
export interface EngineEndpoint {
  name: string
  /** Address and port of the engine API (`tcp://ADDRESS:PORT` in the record). */
  address: string
  port: number
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked'

/** What one engine says of its own swarm membership (`GET /info`). */
export interface NodeSwarmInfo {
  state: LocalNodeState
  nodeId: string
  /** Set on managers only (the engine API tells the cluster ID to managers). */
  clusterId?: string
  isManager: boolean
  /** Manager addresses the node knows (`ADDR:2377`). */
  remoteManagers: string[]
  error?: string
  engineVersion?: string
}

/** One node as a manager lists it (`GET /nodes`). */
export interface SwarmNode {
  id: string
  version: number
  hostname: string
  role: 'manager' | 'worker'
  availability: 'active' | 'pause' | 'drain'
  state: string
  addr?: string
  leader: boolean
  reachability?: string
  engineVersion?: string
  labels: Record<string, string>
  /** When a manager created the entry (the manager's clock), ISO 8601. */
  createdAt?: string
  /**
   * The node never reported its description (hostname, engine) to a manager: the entry was made
   * when its join asked for a certificate, and the join never reached the dispatcher. `hostname`
   * is then the node ID.
   */
  noHostname?: boolean
}

export interface JoinTokens {
  clusterId: string
  worker: string
  manager: string
}

/**
 * The swarm operations Belt uses, per engine. One implementation speaks the Engine API over mutual
 * TLS (no SSH and no join token on any command line); unit tests use fakes.
 */
export interface SwarmApi {
  info(e: EngineEndpoint): Promise<NodeSwarmInfo>
  /** `swarm init`, with the options of a new swarm when given; resolves with the new node's ID. */
  init(e: EngineEndpoint, advertiseAddr: string, spec?: SwarmInitSpec): Promise<string>
  /** The key that unlocks a swarm with autolock (`docker swarm unlock-key`). A secret: shown once, never kept. */
  unlockKey?(manager: EngineEndpoint): Promise<string>
  /** The join tokens; only a manager answers. Secrets: kept in memory only. */
  tokens(manager: EngineEndpoint): Promise<JoinTokens>
  join(e: EngineEndpoint, o: {advertiseAddr: string; remoteAddrs: string[]; token: string}): Promise<void>
  leave(e: EngineEndpoint, force: boolean): Promise<void>
  nodes(manager: EngineEndpoint): Promise<SwarmNode[]>
  /** One node's entry (`GET /nodes/{id}`), cheaper than the whole list; undefined when there is no such node. */
  node?(manager: EngineEndpoint, nodeId: string): Promise<SwarmNode | undefined>
  /** Changes a node's spec; `labels` are added to (or replace same-key) labels it has; one given as undefined is removed. */
  updateNode(manager: EngineEndpoint, node: SwarmNode, change: {role?: 'manager' | 'worker'; availability?: 'active' | 'pause' | 'drain'; labels?: Record<string, string | undefined>}): Promise<void>
  removeNode(manager: EngineEndpoint, nodeId: string, force: boolean): Promise<void>
  /** Removes the swarm's ingress network (routing mesh), before nodes join. Resolves when none is left. */
  removeIngress(manager: EngineEndpoint): Promise<void>
  /** The swarm's own labels (`Spec.Labels` of `GET /swarm`). */
  swarmLabels(manager: EngineEndpoint): Promise<Record<string, string>>
  /** Sets (a string) or removes (undefined) one label of the swarm's spec, keeping the rest of the spec. */
  setSwarmLabel(manager: EngineEndpoint, key: string, value: string | undefined): Promise<void>
  /** Creates the swarm's ingress network (`docker network create --driver overlay --ingress ingress`) unless one exists. */
  createIngress(manager: EngineEndpoint): Promise<'created' | 'exists'>
  /**
   * This engine's own view of the ingress network: whether its ingress sandbox is built (the
   * `ingress-sbox` endpoint) and how many gossip peers it sees. Undefined when it has no ingress.
   */
  localIngress(e: EngineEndpoint): Promise<{sandbox: boolean; peers: number} | undefined>
}

/** The port managers listen on for the cluster (raft, joins). */
export const SWARM_PORT = 2377

/**
 * Options of a new swarm (`docker swarm init` flags), sent in the Engine API's SwarmInitRequest.
 * Only what is set is sent; dockerd keeps its defaults for the rest (at init it merges the
 * non-zero fields of `Spec` into swarmkit's defaults). They apply when a swarm is created, never
 * to one that exists (that is `docker swarm update`).
 */
export interface SwarmInitSpec {
  /** `--default-addr-pool`: CIDRs overlay networks take their subnets from (`DefaultAddrPool`). */
  defaultAddrPool?: string[]
  /** `--default-addr-pool-mask-length`: the prefix length of each network's subnet (`SubnetSize`). */
  subnetSize?: number
  /** `--data-path-port`: the UDP port of VXLAN traffic between nodes (`DataPathPort`, default 4789). */
  dataPathPort?: number
  /** `--cert-expiry`, seconds: validity of node certificates (`Spec.CAConfig.NodeCertExpiry`). */
  certExpirySeconds?: number
  /** `--dispatcher-heartbeat`, seconds: how often nodes report to managers (`Spec.Dispatcher.HeartbeatPeriod`). */
  heartbeatSeconds?: number
  /** `--snapshot-interval`: Raft log entries between snapshots (`Spec.Raft.SnapshotInterval`). */
  snapshotInterval?: number
  /** `--max-snapshots`: older Raft snapshots kept (`Spec.Raft.KeepOldSnapshots`). */
  keepOldSnapshots?: number
  /** `--autolock`: managers need the unlock key after a restart (`Spec.EncryptionConfig.AutoLockManagers`). */
  autolock?: boolean
}

const NS_PER_S = 1_000_000_000

/** The body of `POST /swarm/init` (pure). Durations go in nanoseconds, as the Engine API wants. */
export function swarmInitRequest(advertiseAddr: string, spec: SwarmInitSpec = {}): Record<string, unknown> {
  const body: Record<string, unknown> = {ListenAddr: `0.0.0.0:${SWARM_PORT}`, AdvertiseAddr: advertiseAddr}
  if (spec.defaultAddrPool?.length) body.DefaultAddrPool = [...spec.defaultAddrPool]
  if (spec.subnetSize !== undefined) body.SubnetSize = spec.subnetSize
  if (spec.dataPathPort !== undefined) body.DataPathPort = spec.dataPathPort
  const s: Record<string, Record<string, unknown>> = {}
  if (spec.snapshotInterval !== undefined || spec.keepOldSnapshots !== undefined)
    s.Raft = {...(spec.snapshotInterval !== undefined ? {SnapshotInterval: spec.snapshotInterval} : {}), ...(spec.keepOldSnapshots !== undefined ? {KeepOldSnapshots: spec.keepOldSnapshots} : {})}
  if (spec.heartbeatSeconds !== undefined) s.Dispatcher = {HeartbeatPeriod: Math.round(spec.heartbeatSeconds * NS_PER_S)}
  if (spec.certExpirySeconds !== undefined) s.CAConfig = {NodeCertExpiry: Math.round(spec.certExpirySeconds * NS_PER_S)}
  if (spec.autolock) s.EncryptionConfig = {AutoLockManagers: true}
  if (Object.keys(s).length > 0) body.Spec = s
  return body
}

/** The knobs of a spec for a run record (`belt report`): plain values, never a key. */
export function describeInitSpec(spec: SwarmInitSpec | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  if (!spec) return out
  for (const [k, v] of Object.entries(spec)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v
  return out
}

/**
 * `api` with `init` sending `spec`, and, for a swarm with autolock, handing its unlock key to
 * `onUnlockKey` right after init (the key is never stored: the caller shows it once).
 */
export function withInitSpec(api: SwarmApi, spec: SwarmInitSpec, onUnlockKey: (key: string) => void): SwarmApi {
  return new Proxy(api, {
    get(target, prop) {
      if (prop === 'init')
        return async (e: EngineEndpoint, advertiseAddr: string) => {
          const nodeId = await target.init(e, advertiseAddr, spec)
          if (spec.autolock) {
            if (!target.unlockKey) throw new Error('this swarm API cannot read the unlock key of a swarm with autolock')
            onUnlockKey(await target.unlockKey(e))
          }
          return nodeId
        }
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/** True for the engine's "the join goes on in the background" answer: verify, don't fail. */
export function isJoinTimeout(e: unknown): boolean {
  return /Timeout was reached before node joined/i.test(e instanceof Error ? e.message : String(e))
}

/** True for "This node is already part of a swarm". */
export function isAlreadyInSwarm(e: unknown): boolean {
  return /already part of a swarm/i.test(e instanceof Error ? e.message : String(e))
}

interface RawInfo {
  ServerVersion?: string
  Swarm: {
    NodeID: string
    LocalNodeState: LocalNodeState
    ControlAvailable: boolean
    Error?: string
    RemoteManagers?: {NodeID: string; Addr: string}[] | null
    Cluster?: {ID: string} | null
  }
}

interface RawNode {
  ID: string
  CreatedAt?: string
  Version: {Index: number}
  Spec: {Role: 'manager' | 'worker'; Availability: 'active' | 'pause' | 'drain'; Labels?: Record<string, string>; Name?: string}
  Description?: {Hostname?: string; Engine?: {EngineVersion?: string}}
  Status: {State: string; Addr?: string}
  ManagerStatus?: {Leader?: boolean; Reachability?: string; Addr?: string}
}

/** A node entry of the Engine API as Belt reads it. */
function toSwarmNode(n: RawNode): SwarmNode {
  return {
    id: n.ID,
    version: n.Version.Index,
    hostname: n.Description?.Hostname ?? n.ID,
    role: n.Spec.Role,
    availability: n.Spec.Availability,
    state: n.Status.State,
    addr: n.Status.Addr,
    leader: Boolean(n.ManagerStatus?.Leader),
    reachability: n.ManagerStatus?.Reachability,
    engineVersion: n.Description?.Engine?.EngineVersion,
    labels: n.Spec.Labels ?? {},
    createdAt: n.CreatedAt,
    ...(n.Description?.Hostname ? {} : {noHostname: true}),
  }
}

/** {@link SwarmApi} over the Docker Engine API with the store's client certificate. */
export class EngineSwarmApi implements SwarmApi {
  constructor(
    private readonly tls: ClientTls,
    private readonly timeoutMs = 30_000,
  ) {}

  private req<T>(e: EngineEndpoint, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return engineRequest<T>(e.address, e.port, this.tls, method, path, body, timeoutMs)
  }

  async info(e: EngineEndpoint): Promise<NodeSwarmInfo> {
    const i = await this.req<RawInfo>(e, 'GET', '/info')
    return {
      state: i.Swarm.LocalNodeState,
      nodeId: i.Swarm.NodeID,
      clusterId: i.Swarm.Cluster?.ID,
      isManager: i.Swarm.ControlAvailable,
      remoteManagers: (i.Swarm.RemoteManagers ?? []).map((m) => m.Addr),
      error: i.Swarm.Error || undefined,
      engineVersion: i.ServerVersion,
    }
  }

  async init(e: EngineEndpoint, advertiseAddr: string, spec?: SwarmInitSpec): Promise<string> {
    return this.req<string>(e, 'POST', '/swarm/init', swarmInitRequest(advertiseAddr, spec), 120_000)
  }

  async unlockKey(manager: EngineEndpoint): Promise<string> {
    return (await this.req<{UnlockKey: string}>(manager, 'GET', '/swarm/unlockkey')).UnlockKey
  }

  async tokens(manager: EngineEndpoint): Promise<JoinTokens> {
    const s = await this.req<{ID: string; JoinTokens: {Worker: string; Manager: string}}>(manager, 'GET', '/swarm')
    return {clusterId: s.ID, worker: s.JoinTokens.Worker, manager: s.JoinTokens.Manager}
  }

  async join(e: EngineEndpoint, o: {advertiseAddr: string; remoteAddrs: string[]; token: string}): Promise<void> {
    // The daemon itself gives up after ~20 s with "Timeout was reached..." and goes on joining.
    await this.req(e, 'POST', '/swarm/join', {ListenAddr: `0.0.0.0:${SWARM_PORT}`, AdvertiseAddr: o.advertiseAddr, RemoteAddrs: o.remoteAddrs, JoinToken: o.token}, 90_000)
  }

  async leave(e: EngineEndpoint, force: boolean): Promise<void> {
    try {
      await this.req(e, 'POST', `/swarm/leave?force=${force}`, undefined, 60_000)
    } catch (err) {
      if (err instanceof EngineApiError && /not part of a swarm/i.test(err.daemonMessage)) return
      throw err
    }
  }

  async node(manager: EngineEndpoint, nodeId: string): Promise<SwarmNode | undefined> {
    try {
      return toSwarmNode(await this.req<RawNode>(manager, 'GET', `/nodes/${encodeURIComponent(nodeId)}`))
    } catch (err) {
      if (err instanceof EngineApiError && err.status === 404) return undefined
      throw err
    }
  }

  async nodes(manager: EngineEndpoint): Promise<SwarmNode[]> {
    return (await this.req<RawNode[]>(manager, 'GET', '/nodes')).map(toSwarmNode)
  }

  async updateNode(manager: EngineEndpoint, node: SwarmNode, change: {role?: 'manager' | 'worker'; availability?: 'active' | 'pause' | 'drain'; labels?: Record<string, string | undefined>}): Promise<void> {
    // A label given as undefined is removed.
    const labels = Object.fromEntries(Object.entries({...node.labels, ...change.labels}).filter(([, v]) => v !== undefined))
    const spec = {Role: change.role ?? node.role, Availability: change.availability ?? node.availability, Labels: labels}
    await this.req(manager, 'POST', `/nodes/${encodeURIComponent(node.id)}/update?version=${node.version}`, spec)
  }

  /**
   * Ingress networks this process removed. A manager lists its own engine's copy of a removed
   * ingress until the engine has released its sandbox, which can take a while ("Unable to complete
   * atomic operation, key modified ... retrying"): such a copy is not the swarm's ingress.
   */
  private readonly droppedIngress = new Set<string>()

  async removeIngress(manager: EngineEndpoint): Promise<void> {
    const list = async () => (await this.req<{Id: string; Name: string; Ingress?: boolean}[]>(manager, 'GET', '/networks')).filter((x) => x.Ingress || x.Name === 'ingress')
    for (const n of await list()) {
      await this.req(manager, 'DELETE', `/networks/${encodeURIComponent(n.Id)}`)
      this.droppedIngress.add(n.Id)
    }
    // The managers drop the network's object after the DELETE answers: wait until it is gone, or a
    // later create of the ingress collides with it.
    for (let i = 0; i < 60 && (await list()).length > 0; i++) await new Promise((r) => setTimeout(r, 250))
  }

  async swarmLabels(manager: EngineEndpoint): Promise<Record<string, string>> {
    const s = await this.req<{Spec: {Labels?: Record<string, string>}}>(manager, 'GET', '/swarm')
    return s.Spec.Labels ?? {}
  }

  async setSwarmLabel(manager: EngineEndpoint, key: string, value: string | undefined): Promise<void> {
    const s = await this.req<{Version: {Index: number}; Spec: {Labels?: Record<string, string>} & Record<string, unknown>}>(manager, 'GET', '/swarm')
    const labels = {...s.Spec.Labels}
    if (value === undefined) delete labels[key]
    else labels[key] = value
    await this.req(manager, 'POST', `/swarm/update?version=${s.Version.Index}`, {...s.Spec, Labels: labels})
  }

  async createIngress(manager: EngineEndpoint): Promise<'created' | 'exists'> {
    for (let attempt = 1; ; attempt++) {
      const nets = await this.req<{Id: string; Name: string; Ingress?: boolean}[]>(manager, 'GET', '/networks')
      if (nets.some((n) => n.Ingress && !this.droppedIngress.has(n.Id))) return 'exists'
      try {
        // No CheckDuplicate: it would also refuse the name because of the manager's own lingering
        // copy of a removed ingress; the swarm itself refuses a second ingress network.
        await this.req(manager, 'POST', '/networks/create', {Name: 'ingress', Driver: 'overlay', Ingress: true, CheckDuplicate: false})
        return 'created'
      } catch (err) {
        // A conflict: another run made it between the list and the create (the next list says so),
        // or the old ingress is still being dropped (ask again shortly).
        if (!(err instanceof EngineApiError && err.status === 409) || attempt === 20) throw err
        await new Promise((r) => setTimeout(r, 500))
      }
    }
  }

  async localIngress(e: EngineEndpoint): Promise<{sandbox: boolean; peers: number} | undefined> {
    try {
      const n = await this.req<{Ingress?: boolean; Containers?: Record<string, unknown> | null; Peers?: unknown[] | null}>(e, 'GET', '/networks/ingress')
      if (!n.Ingress) return undefined
      return {sandbox: Boolean(n.Containers?.['ingress-sbox']), peers: n.Peers?.length ?? 0}
    } catch (err) {
      if (err instanceof EngineApiError && err.status === 404) return undefined
      throw err
    }
  }

  async removeNode(manager: EngineEndpoint, nodeId: string, force: boolean): Promise<void> {
    try {
      await this.req(manager, 'DELETE', `/nodes/${encodeURIComponent(nodeId)}?force=${force}`)
    } catch (err) {
      if (err instanceof EngineApiError && err.status === 404) return
      throw err
    }
  }
}
