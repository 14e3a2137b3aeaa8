import type {EngineEndpoint, JoinTokens, NodeSwarmInfo, SwarmApi, SwarmNode} from '../../src/swarm/api.js'

/**
 * An in-memory swarm behind the SwarmApi interface. It enforces what real engines do (a join needs
 * the right token and an existing swarm, tokens only from managers) and fails on calls a correct
 * orchestrator never makes. It records concurrency so tests can check the invariants.
 */
export class FakeSwarm implements SwarmApi {
  readonly clusterId = 'cluster-fake-1'
  readonly tokensOf: JoinTokens = {clusterId: this.clusterId, worker: 'SWMTKN-worker-secret', manager: 'SWMTKN-manager-secret'}
  readonly nodes_ = new Map<string, SwarmNode>()
  readonly state = new Map<string, NodeSwarmInfo>()
  readonly calls: string[] = []
  inFlightJoins = {manager: 0, worker: 0}
  peakJoins = {manager: 0, worker: 0}
  tokenCalls = 0
  /** Hosts whose join answers "Timeout was reached" (and completes in the background). */
  timeoutJoin = new Set<string>()
  /** Hosts whose join is refused. */
  failJoin = new Set<string>()
  failInit = false
  /** Hosts whose first join times out and is then abandoned by the engine (state error). */
  abandonOnce = new Set<string>()
  /**
   * Ghost entries a host's join leaves in the node list before it completes (or is abandoned):
   * entries with no hostname, status unknown, as a real manager keeps for an attempt that asked for
   * its certificate and never reached the dispatcher.
   */
  ghostsOnJoin = new Map<string, number>()
  /** Hosts whose join stays pending for ever (after leaving one entry with no hostname). */
  stuckPending = new Set<string>()
  /** Node IDs removed, in order. */
  readonly removed: string[] = []
  private seq = 0

  /** Adds an entry with no hostname (a ghost, or a join that has not registered yet). */
  addAnonymous(o: {state?: string; createdAt?: Date; role?: 'manager' | 'worker'} = {}): string {
    const id = `g${++this.seq}`
    this.nodes_.set(id, {id, version: 1, hostname: id, noHostname: true, role: o.role ?? 'worker', availability: 'active', state: o.state ?? 'unknown', leader: false, labels: {}, createdAt: (o.createdAt ?? new Date()).toISOString()})
    return id
  }

  constructor(readonly hosts: readonly string[]) {
    for (const h of hosts) this.state.set(h, {state: 'inactive', nodeId: '', isManager: false, remoteManagers: []})
  }

  private host(e: EngineEndpoint): NodeSwarmInfo {
    const s = this.state.get(e.name)
    if (!s) throw new Error(`fake: unexpected host ${e.name}`)
    return s
  }

  async info(e: EngineEndpoint): Promise<NodeSwarmInfo> {
    return {...this.host(e)}
  }

  async init(e: EngineEndpoint, advertiseAddr: string): Promise<string> {
    this.calls.push(`init:${e.name}`)
    if (this.failInit) throw new Error('fake: init refused')
    if ([...this.state.values()].some((s) => s.state === 'active')) throw new Error('fake: a second swarm init')
    const s = this.host(e)
    const id = `n${++this.seq}`
    Object.assign(s, {state: 'active', nodeId: id, isManager: true, clusterId: this.clusterId, remoteManagers: [`${advertiseAddr}:2377`]})
    this.nodes_.set(id, {id, version: 1, hostname: e.name, role: 'manager', availability: 'active', state: 'ready', leader: true, labels: {}, createdAt: new Date().toISOString()})
    this.buildSandbox(e.name)
    return id
  }

  async tokens(m: EngineEndpoint): Promise<JoinTokens> {
    this.tokenCalls++
    if (!this.host(m).isManager) throw new Error('fake: tokens asked of a non-manager')
    return this.tokensOf
  }

  async join(e: EngineEndpoint, o: {advertiseAddr: string; remoteAddrs: string[]; token: string}): Promise<void> {
    const role = o.token === this.tokensOf.manager ? 'manager' : o.token === this.tokensOf.worker ? 'worker' : undefined
    if (!role) throw new Error('fake: bad token')
    if (o.remoteAddrs.length === 0) throw new Error('fake: no remote address')
    if (![...this.state.values()].some((s) => s.isManager)) throw new Error('fake: join before init')
    this.calls.push(`join:${e.name}:${role}`)
    this.inFlightJoins[role]++
    this.peakJoins[role] = Math.max(this.peakJoins[role], this.inFlightJoins[role])
    try {
      await new Promise((r) => setTimeout(r, 2))
      if (this.failJoin.has(e.name)) throw new Error('fake: join refused')
      for (let i = this.ghostsOnJoin.get(e.name) ?? 0; i > 0; i--) this.addAnonymous()
      this.ghostsOnJoin.delete(e.name)
      if (this.stuckPending.has(e.name)) {
        this.addAnonymous()
        Object.assign(this.host(e), {state: 'pending'})
        throw new Error('Timeout was reached before node joined. The attempt to join the swarm will continue in the background.')
      }
      if (this.abandonOnce.delete(e.name)) {
        Object.assign(this.host(e), {state: 'error', error: 'rpc error: code = DeadlineExceeded desc = context deadline exceeded'})
        throw new Error('Timeout was reached before node joined. The attempt to join the swarm will continue in the background.')
      }
      const s = this.host(e)
      if (s.state === 'error') throw new Error('fake: join on a node in error state without a leave first')
      if (s.state === 'active') throw new Error('This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.')
      const id = `n${++this.seq}`
      Object.assign(s, {state: 'active', nodeId: id, isManager: role === 'manager', clusterId: role === 'manager' ? this.clusterId : undefined, remoteManagers: o.remoteAddrs})
      this.nodes_.set(id, {id, version: 1, hostname: e.name, role, availability: 'active', state: 'ready', leader: false, labels: {}, createdAt: new Date().toISOString()})
      if (this.ingress) this.joinsWithIngress++
      this.buildSandbox(e.name)
      if (this.timeoutJoin.has(e.name)) throw new Error('Timeout was reached before node joined. The attempt to join the swarm will continue in the background.')
    } finally {
      this.inFlightJoins[role]--
    }
  }

  async leave(e: EngineEndpoint): Promise<void> {
    this.calls.push(`leave:${e.name}`)
    Object.assign(this.host(e), {state: 'inactive', nodeId: '', isManager: false, clusterId: undefined, remoteManagers: []})
  }

  async nodes(m: EngineEndpoint): Promise<SwarmNode[]> {
    if (!this.host(m).isManager) throw new Error('fake: nodes asked of a non-manager')
    return [...this.nodes_.values()].map((n) => ({...n}))
  }

  async updateNode(m: EngineEndpoint, node: SwarmNode, change: {role?: 'manager' | 'worker'; availability?: 'active' | 'pause' | 'drain'; labels?: Record<string, string | undefined>}): Promise<void> {
    if (!this.host(m).isManager) throw new Error('fake: update through a non-manager')
    const n = this.nodes_.get(node.id)
    if (!n || n.version !== node.version) throw new Error('fake: stale node version')
    const labels = Object.fromEntries(Object.entries({...n.labels, ...change.labels}).filter(([, v]) => v !== undefined)) as Record<string, string>
    const labelText = change.labels ? Object.entries(change.labels).map(([k, v]) => `${k}=${v ?? ''}`).join(',') : ''
    this.calls.push(`update:${n.hostname}:${change.role ?? ''}${change.availability ?? ''}${labelText}`)
    const specChanged = (change.role !== undefined && change.role !== n.role) || (change.availability !== undefined && change.availability !== n.availability) || JSON.stringify(labels) !== JSON.stringify(n.labels)
    Object.assign(n, {role: change.role ?? n.role, availability: change.availability ?? n.availability, labels, version: n.version + 1})
    this.nodeUpdated(n.hostname, specChanged)
    if (change.role) Object.assign(this.state.get(n.hostname)!, {isManager: change.role === 'manager', clusterId: change.role === 'manager' ? this.clusterId : undefined})
  }

  ingress = true
  async removeIngress(m: EngineEndpoint): Promise<void> {
    if (!this.host(m).isManager) throw new Error('fake: network removal through a non-manager')
    if ([...this.state.values()].filter((s) => s.state === 'active').length > 1) throw new Error('fake: ingress removed after nodes joined')
    this.calls.push('remove-ingress')
    this.ingress = false
    this.sandboxes.clear()
    this.gotAddress.clear()
    this.failedSetup.clear()
  }

  /** The swarm's spec labels. */
  readonly labels: Record<string, string> = {}
  /**
   * Hosts whose engine has built its ingress sandbox. As on a real swarm, a node builds it when the
   * allocator gives it an ingress address: when it joins while the ingress exists, or when its
   * entry is updated after the ingress was created.
   */
  readonly sandboxes = new Set<string>()
  /** Hosts that never build their sandbox (a broken engine). */
  readonly noSandbox = new Set<string>()
  /** Joins made while the swarm had an ingress network (each built its sandbox then). */
  joinsWithIngress = 0

  private manager(m: EngineEndpoint, what: string): void {
    if (!this.host(m).isManager) throw new Error(`fake: ${what} through a non-manager`)
  }

  async swarmLabels(m: EngineEndpoint): Promise<Record<string, string>> {
    this.manager(m, 'swarm inspect')
    return {...this.labels}
  }

  async setSwarmLabel(m: EngineEndpoint, key: string, value: string | undefined): Promise<void> {
    this.manager(m, 'swarm update')
    this.calls.push(`label:${key}=${value ?? ''}`)
    if (value === undefined) delete this.labels[key]
    else this.labels[key] = value
  }

  async createIngress(m: EngineEndpoint): Promise<'created' | 'exists'> {
    this.manager(m, 'network create')
    if (this.ingress) return 'exists'
    this.calls.push('create-ingress')
    this.ingress = true
    return 'created'
  }

  async localIngress(e: EngineEndpoint): Promise<{sandbox: boolean; peers: number} | undefined> {
    if (this.host(e).state !== 'active') throw new Error(`fake: ingress asked of ${e.name}, which is not in the swarm`)
    if (!this.ingress) return undefined
    return {sandbox: this.sandboxes.has(e.name), peers: this.sandboxes.size}
  }

  /**
   * Hosts whose first ingress set-up fails, as Docker 20.10's does when its ingress worker runs
   * before the node's address is recorded: the engine sets the ingress up again only when its node
   * entry changes in a way it compares (role, availability, labels), not on an unchanged re-update.
   */
  readonly setupRace = new Set<string>()
  /** Hosts whose ingress set-up failed and waits for a spec change. */
  private readonly failedSetup = new Set<string>()
  /** The ingress network this node's engine was last given an address in (its set-up ran once for it). */
  private readonly gotAddress = new Set<string>()

  /** A node that gets an ingress address builds its sandbox (unless told not to, or its set-up races). */
  protected buildSandbox(name: string): void {
    if (!this.ingress || this.noSandbox.has(name)) return
    if (this.setupRace.has(name) && !this.gotAddress.has(name)) {
      this.gotAddress.add(name)
      this.failedSetup.add(name)
      return
    }
    this.gotAddress.add(name)
    this.sandboxes.add(name)
  }

  private nodeUpdated(name: string, specChanged: boolean): void {
    if (!this.ingress) return
    if (!this.gotAddress.has(name)) return this.buildSandbox(name)
    if (this.failedSetup.has(name) && specChanged) {
      this.failedSetup.delete(name)
      this.buildSandbox(name)
    }
  }

  async removeNode(m: EngineEndpoint, nodeId: string, force: boolean): Promise<void> {
    if (!this.host(m).isManager) throw new Error('fake: node removal through a non-manager')
    const n = this.nodes_.get(nodeId)
    if (!n) throw new Error(`fake: removal of ${nodeId}, which is not in the node list`)
    if (n.state === 'ready') throw new Error(`fake: removal of ${nodeId}, which is Ready`)
    if (!force) throw new Error(`fake: node ${nodeId} is not down and can't be removed without force`)
    if (n.role === 'manager' && !n.noHostname) throw new Error(`node ${nodeId} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`)
    this.calls.push(`remove:${nodeId}`)
    this.removed.push(nodeId)
    this.nodes_.delete(nodeId)
  }
}
