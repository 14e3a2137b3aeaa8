import {oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled, window, type Window} from '../scheduler/pool.js'
import {isAlreadyInSwarm, isJoinTimeout, SWARM_PORT, type EngineEndpoint, type JoinTokens, type SwarmApi, type SwarmNode} from './api.js'
import {classifyNodes, removeGhosts, type GhostRemoval, type NodeVerdict} from './ghosts.js'
import type {Availability} from './plan.js'

/** How many times a join the engine abandoned is tried (reset with a forced leave in between). */
export const JOIN_ATTEMPTS = 3

/** The swarm label that says its ingress network is still to be made (set at init, removed once every node has its sandbox). */
export const INGRESS_LABEL = 'belt.ingress'
export const INGRESS_DEFERRED = 'deferred'
/** Nodes building their ingress sandbox at once (see completeIngress). */
export const INGRESS_WINDOW = 10
/**
 * A node whose sandbox is not built this long after its entry was updated (or three times the
 * median build so far, if longer, up to INGRESS_NUDGE_MAX_WAIT_MS), while a node updated with it or
 * after it has built its own, is nudged (see completeIngress).
 */
export const INGRESS_RETOUCH_MS = 8_000
/**
 * The longest wait before a nudge, however slow the builds (at 100 nodes on 2 cores, 3x the median
 * outlasted the deadline: no nudge, 2 nodes left unbuilt).
 */
export const INGRESS_NUDGE_MAX_WAIT_MS = 30_000
/** Nudges of one node at most (each one wait as above after the last) before the deadline decides. */
export const INGRESS_NUDGES = 4
/** The node label a nudge sets (a spec change makes the engine set its ingress up again); removed once done. */
export const INGRESS_NUDGE_LABEL = 'belt.ingress-nudge'

/** What {@link SwarmFormation.completeIngress} did. */
export interface IngressCompletion {
  /** Whether this call created the ingress network (else it existed, from an earlier run). */
  created: boolean
  /** Nodes whose engine has its ingress sandbox. */
  ready: string[]
  /** Nodes whose engine has no ingress sandbox yet at the deadline, with what it said. */
  notReady: Map<string, string>
  ms: number
}

/** How one host's join ended. */
export interface JoinResult {
  name: string
  ok: boolean
  role?: 'manager' | 'worker'
  nodeId?: string
  clusterId?: string
  /** The engine answered "Timeout was reached before node joined" and was verified afterwards. */
  timedOut?: boolean
  /** It was already a member: nothing was done. */
  already?: boolean
  /** Not started because the operator pressed Ctrl-C: not a failure. */
  interrupted?: boolean
  error?: string
}

export interface FormationOptions {
  api: SwarmApi
  /** Managers wanted in total (existing ones count). */
  managers: number
  /** Worker joins at once (a sliding window, not waves). */
  workerConcurrency: number
  /** Availability given to managers as they join. */
  managerAvailability: Availability
  endpoint(name: string): EngineEndpoint
  advertiseAddr(name: string): string
  /**
   * Remove the ingress network right after init, before anyone joins: no routing mesh, and no
   * ingress sandbox (namespace, iptables, VXLAN) built on every node as it joins.
   */
  noIngress?: boolean
  /**
   * Form a new swarm without its ingress network and create it once every node has joined
   * ({@link SwarmFormation.completeIngress}): the routing mesh is kept, and joins do not each wait
   * for an ingress sandbox and a gossip round with every node before them. The swarm carries the
   * label {@link INGRESS_LABEL} until the ingress is complete, so an interrupted run's successor
   * finishes it.
   */
  deferIngress?: boolean
  /** The swarm that already exists: its managers (names). */
  existing?: {clusterId: string; managers: string[]}
  /** The run's cancellation: no join starts after it aborts; joins in flight finish and are verified. */
  signal?: AbortSignal
  /** Persist a host's join (called once per successful join, before its outcome resolves). */
  onJoined?(r: JoinResult): Promise<void>
  log(name: string, message: string): void
  /** How long a join may take to show up as active after a timeout answer (default 300 s). */
  settleMs?: number
  sleep?(ms: number): Promise<void>
  /** The clock of completeIngress's nudges (ms since the epoch; default Date.now). */
  now?(): number
}

/**
 * Forms (or grows) one swarm from hosts that arrive one by one, as in the create pipeline: the
 * first arrival initialises the swarm when none exists, the next ones take the free manager slots
 * and join ONE AT A TIME through the leader, all others join as workers through a bounded sliding
 * window once the swarm exists. Join tokens are fetched once and kept in memory only.
 */
export class SwarmFormation {
  private managerSlots: number
  private managerChain: Promise<unknown> = Promise.resolve()
  private readonly workers: Window
  private leader?: string
  private clusterId?: string
  private tokens?: Promise<JoinTokens>
  private readonly managerAddrs: string[] = []
  private ready!: Promise<void>
  private resolveReady!: () => void
  private rejectReady!: (e: Error) => void
  private managerCount = 0
  private workerTurn = 0
  private readonly managerNames: string[] = []
  private readonly joinedWorkers: {name: string; nodeId: string}[] = []
  readonly timeouts: string[] = []
  /** When this formation's first join started (ms since the epoch); ghost entries made since are its own. */
  joinsStartedAt?: number

  constructor(private readonly o: FormationOptions) {
    this.workers = window(o.workerConcurrency, o.signal)
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res
      this.rejectReady = rej
    })
    this.ready.catch(() => undefined)
    // A Ctrl-C before the swarm exists: workers waiting for it must settle, not wait for ever (an
    // empty event loop with a pending promise ends the process with 13, not 130).
    const onAbort = () => this.rejectReady(o.signal!.reason instanceof Error ? o.signal!.reason : new Error('interrupted'))
    if (o.signal?.aborted) onAbort()
    else o.signal?.addEventListener('abort', onAbort, {once: true})
    const existing = o.existing?.managers ?? []
    this.managerSlots = Math.max(0, o.managers - existing.length)
    if (o.existing && existing.length > 0) {
      this.clusterId = o.existing.clusterId
      this.leader = existing[0]
      for (const m of existing) this.managerAddrs.push(`${o.advertiseAddr(m)}:${SWARM_PORT}`)
      this.managerCount = existing.length
      this.resolveReady()
    }
  }

  /** The manager Belt talks to for tokens and node lists. */
  get leaderName(): string | undefined {
    return this.leader
  }

  /** Joins `name` in the role it is due (or the one forced). Never throws: the result says. */
  add(name: string, role?: 'manager' | 'worker'): Promise<JoinResult> {
    const asManager = role === 'manager' || (role === undefined && this.managerSlots > 0)
    if (asManager) {
      if (this.managerSlots > 0) this.managerSlots--
      const p = this.managerChain.then(() => {
        this.o.signal?.throwIfAborted()
        return this.joinManager(name)
      })
      this.managerChain = p.catch(() => undefined)
      return p.then(
        (r) => {
          if (!r.ok && role === undefined) this.managerSlots++ // a later arrival takes the slot
          return r
        },
        (e) => ({name, ok: false, error: oneLine(e), interrupted: isInterruption(e)}),
      )
    }
    // Workers start as soon as the swarm exists, alongside the other managers' joins. (Measured at
    // 100 nodes: waiting for all managers and sending every worker to the leader first was slower,
    // 120-133 s against 99 s.)
    return this.ready.then(
      () => this.workers(() => this.joinWorker(name)).catch((e) => ({name, ok: false, error: oneLine(e), interrupted: isInterruption(e)})),
      (e: Error) => ({name, ok: false, error: `not joined: ${e.message}`, interrupted: isInterruption(e)}),
    )
  }

  private async joinManager(name: string): Promise<JoinResult> {
    const {api} = this.o
    const e = this.o.endpoint(name)
    const addr = this.o.advertiseAddr(name)
    if (!this.leader) {
      this.o.log(name, 'initialising the swarm')
      try {
        const nodeId = await api.init(e, addr)
        this.leader = name
        this.managerAddrs.push(`${addr}:${SWARM_PORT}`)
        this.tokens = api.tokens(e)
        const t = await this.tokens
        this.clusterId = t.clusterId
        await this.setAvailability(nodeId)
        if (this.o.noIngress) await api.removeIngress(e)
        else if (this.o.deferIngress) {
          // The label first: a run cut off between the two leaves a swarm its successor completes.
          await api.setSwarmLabel(e, INGRESS_LABEL, INGRESS_DEFERRED)
          await api.removeIngress(e)
        }
        this.managerCount++
        this.resolveReady()
        const r: JoinResult = {name, ok: true, role: 'manager', nodeId, clusterId: t.clusterId}
        await this.o.onJoined?.(r)
        this.o.log(name, `swarm ${t.clusterId.slice(0, 12)} initialised; ${name} is its leader`)
        return r
      } catch (err) {
        const why = `swarm init on ${name} failed: ${oneLine(err)}`
        this.rejectReady(new Error(why))
        return {name, ok: false, error: why}
      }
    }
    const t = await this.getTokens()
    const r = await this.joinAs(name, 'manager', t.manager, [`${this.o.advertiseAddr(this.leader)}:${SWARM_PORT}`])
    if (r.ok) {
      this.managerCount++
      this.managerNames.push(name)
      this.managerAddrs.push(`${addr}:${SWARM_PORT}`)
      await this.setAvailability(r.nodeId!)
      await this.o.onJoined?.(r)
    }
    return r
  }

  private async joinWorker(name: string): Promise<JoinResult> {
    const t = await this.getTokens()
    // Spread first contact over the managers; all of them are listed so that any can answer.
    const n = this.managerAddrs.length
    const k = this.workerTurn++ % Math.max(1, n)
    const remotes = [...this.managerAddrs.slice(k), ...this.managerAddrs.slice(0, k)]
    const r = await this.joinAs(name, 'worker', t.worker, remotes)
    if (r.ok) {
      this.joinedWorkers.push({name, nodeId: r.nodeId!})
      await this.o.onJoined?.(r)
    }
    return r
  }

  /**
   * When manager joins failed and every host already had its role, the swarm is short of managers:
   * promote joined workers, one at a time, until it has the managers asked for. Returns the
   * promoted hosts; their records are updated through `onJoined`.
   */
  async topUpManagers(): Promise<string[]> {
    const promoted: string[] = []
    if (!this.leader) return promoted
    const leader = this.o.endpoint(this.leader)
    while (this.managerCount < this.o.managers && this.joinedWorkers.length > 0) {
      const w = this.joinedWorkers.shift()!
      const node = (await this.o.api.nodes(leader)).find((n) => n.id === w.nodeId)
      if (!node) continue
      this.o.log(w.name, 'promoted to manager (a manager join failed)')
      await this.o.api.updateNode(leader, node, {role: 'manager'})
      const settled = await this.waitActive(w.name, 'manager')
      if (!settled.ok) continue
      this.managerCount++
      this.managerNames.push(w.name)
      this.managerAddrs.push(`${this.o.advertiseAddr(w.name)}:${SWARM_PORT}`)
      await this.setAvailability(w.nodeId)
      await this.o.onJoined?.({name: w.name, ok: true, role: 'manager', nodeId: w.nodeId, clusterId: this.clusterId})
      promoted.push(w.name)
    }
    return promoted
  }

  private getTokens(): Promise<JoinTokens> {
    this.tokens ??= this.o.api.tokens(this.o.endpoint(this.leader!))
    return this.tokens
  }

  /**
   * One join, with "Timeout was reached" treated as "still joining": verified, not failed. A join
   * that the engine itself abandons (its swarm state turns to error, e.g. "context deadline
   * exceeded" from a CPU-starved leader) is reset with a forced leave and tried again, up to
   * {@link JOIN_ATTEMPTS} times with backoff.
   */
  private async joinAs(name: string, role: 'manager' | 'worker', token: string, remoteAddrs: string[]): Promise<JoinResult> {
    const {api} = this.o
    const e = this.o.endpoint(name)
    const sleep = this.o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    let timedOut = false
    let last = ''
    this.joinsStartedAt ??= Date.now()
    for (let attempt = 1; attempt <= JOIN_ATTEMPTS; attempt++) {
      this.o.log(name, attempt === 1 ? `joining as ${role}` : `joining as ${role} again (attempt ${attempt} of ${JOIN_ATTEMPTS}: ${last})`)
      try {
        await api.join(e, {advertiseAddr: this.o.advertiseAddr(name), remoteAddrs, token})
      } catch (err) {
        if (isJoinTimeout(err)) {
          if (!timedOut) this.timeouts.push(name)
          timedOut = true
          this.o.log(name, 'the engine says the join goes on in the background; verifying')
        } else if (!isAlreadyInSwarm(err)) {
          return {name, ok: false, role, error: `join failed: ${oneLine(err)}`}
        }
      }
      const settled = await this.waitActive(name, role)
      if (settled.ok) return {name, ok: true, role, nodeId: settled.nodeId, clusterId: this.clusterId, timedOut}
      last = settled.error
      if (!settled.retry || attempt === JOIN_ATTEMPTS) break
      await api.leave(e, true).catch(() => undefined)
      await sleep(2000 * attempt * (0.5 + Math.random()))
    }
    return {name, ok: false, role, timedOut, error: last}
  }

  /** Polls the engine until it reports itself active in the swarm (and a manager, for managers). */
  private async waitActive(name: string, role: 'manager' | 'worker'): Promise<{ok: true; nodeId: string} | {ok: false; error: string; retry: boolean}> {
    const deadline = Date.now() + (this.o.settleMs ?? 300_000)
    const sleep = this.o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    let last = 'no answer'
    for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
      try {
        const i = await this.o.api.info(this.o.endpoint(name))
        if (i.state === 'active' && (role === 'worker' || i.isManager)) return {ok: true, nodeId: i.nodeId}
        last = `swarm state ${i.state}${i.error ? `: ${i.error}` : ''}`
        if (i.state === 'error' || i.state === 'inactive') return {ok: false, error: `join did not complete (${last})`, retry: true}
      } catch (err) {
        last = oneLine(err)
      }
      if (Date.now() + delay > deadline) return {ok: false, error: `not active in the swarm after ${Math.round((this.o.settleMs ?? 300_000) / 1000)} s (${last})`, retry: false}
      await sleep(delay)
    }
  }

  private async setAvailability(nodeId: string): Promise<void> {
    if (this.o.managerAvailability !== 'drain') return
    const leader = this.o.endpoint(this.leader!)
    const node = (await this.o.api.nodes(leader)).find((n) => n.id === nodeId)
    if (node && node.availability !== 'drain') await this.o.api.updateNode(leader, node, {availability: 'drain'})
  }

  /**
   * Waits until every named node is Ready in the leader's node list (bounded); returns those that
   * are not, with their state. Tries the other managers when the leader does not answer.
   */
  async verify(nodeIds: ReadonlyMap<string, string>, timeoutMs = 180_000): Promise<Map<string, string>> {
    const sleep = this.o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    const deadline = Date.now() + timeoutMs
    for (;;) {
      let nodes: SwarmNode[] | undefined
      let why = ''
      try {
        nodes = await this.listNodes()
      } catch (e) {
        why = oneLine(e) // a busy leader: ask again until the deadline
      }
      const notReady = new Map<string, string>()
      const byId = new Map((nodes ?? []).map((n) => [n.id, n]))
      for (const [name, id] of nodeIds) {
        const n = byId.get(id)
        if (!nodes) notReady.set(name, why)
        else if (!n || n.state !== 'ready') notReady.set(name, n ? n.state : 'not in the node list')
      }
      if (notReady.size === 0 || Date.now() > deadline) return notReady
      await sleep(1000)
    }
  }

  /** The node list from the leader, else from any manager that answers. */
  async listNodes(): Promise<SwarmNode[]> {
    return (await this.answeringManager()).nodes
  }

  private async answeringManager(): Promise<{manager: EngineEndpoint; nodes: SwarmNode[]}> {
    const names = [this.leader, ...this.managerNames, ...(this.o.existing?.managers ?? [])].filter((x): x is string => Boolean(x))
    let last: unknown
    for (const m of [...new Set(names)]) {
      try {
        const manager = this.o.endpoint(m)
        return {manager, nodes: await this.o.api.nodes(manager)}
      } catch (e) {
        last = e
      }
    }
    throw new Error(`no manager answered: ${oneLine(last)}`)
  }

  /**
   * Once every join has ended, for a swarm whose ingress was deferred at init ({@link INGRESS_LABEL}):
   * creates the ingress network, has every Ready node build its ingress sandbox, waits (bounded)
   * until each store host's engine reports it, then removes the label. Undefined when there is
   * nothing to do. A node gets its ingress address from the managers' allocator only when its
   * entry changes, so each Ready node is updated once with its spec unchanged (one Raft write each).
   *
   * Docker 20.10 races with itself there: the engine queues the ingress set-up before it records
   * the node's ingress address, and a set-up that runs first fails ("failed to find a load balancer
   * IP to use for network", seen about once in five 3-node runs). The engine sets the ingress up
   * again only when its node entry changes in a way it compares (an unchanged re-update is ignored),
   * so a node that looks stuck is nudged: its entry gets the label {@link INGRESS_NUDGE_LABEL},
   * which is removed once the ingress is done (also when an earlier, cut-off run set it). Stuck, not
   * slow: not built after {@link INGRESS_RETOUCH_MS} (or three times the median build so far, up to
   * {@link INGRESS_NUDGE_MAX_WAIT_MS}), while a node updated with it or after it has built its sandbox.
   */
  async completeIngress(o: {timeoutMs?: number} = {}): Promise<IngressCompletion | undefined> {
    if (!this.leader) return undefined
    const {api} = this.o
    const sleep = this.o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)))
    const now = this.o.now ?? Date.now
    const t0 = now()
    const {manager} = await this.answeringManager()
    if ((await api.swarmLabels(manager))[INGRESS_LABEL] !== INGRESS_DEFERRED) return undefined
    this.o.signal?.throwIfAborted()
    const created = (await api.createIngress(manager)) === 'created'
    const names = new Map<string, EngineEndpoint>()
    /** A node's current entry: one GET when the API has it, else the whole list; undefined when gone. */
    const entry = async (id: string) => (api.node ? api.node(manager, id) : (await api.nodes(manager)).find((n) => n.id === id))
    /** Updates a node's entry (with `labels` changed, if given), reading it again when it changed meanwhile. */
    const update = async (node: SwarmNode, labels?: Record<string, string | undefined>) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await api.updateNode(manager, node, labels ? {labels} : {})
        } catch (e) {
          // "update out of sequence": the entry changed since it was read; read it again.
          if (attempt === 3) throw e
          const fresh = await entry(node.id)
          if (!fresh) return
          node = fresh
        }
      }
    }
    const nodes = (await api.nodes(manager)).filter((n) => n.state === 'ready' && !n.noHostname)
    for (const n of nodes) {
      try {
        names.set(n.hostname, this.o.endpoint(n.hostname))
      } catch {
        /* a node that is not a host of the store: touched, not waited for */
      }
    }
    // Nodes that are not hosts of the store are touched at once and not waited for.
    const strangers = nodes.filter((n) => !names.has(n.hostname))
    await mapSettled(strangers, (n) => update(n), {concurrency: 8, signal: this.o.signal})
    // Store hosts go through a window: at most INGRESS_WINDOW nodes building their sandbox at once.
    // Measured at 100 nodes on 2 cores: all at once is a storm (load 160, Raft writes timing out,
    // 44-53 of 100 sandboxes not built after 120 s); 10 at a time took ~6.5 s per 10 nodes.
    const queue = nodes.filter((n) => names.has(n.hostname))
    const notReady = new Map<string, string>()
    const ready: string[] = []
    /** Per node being built: its entry, when it was first updated, when last updated or nudged, how often. */
    const building = new Map<string, {node: SwarmNode; first: number; since: number; touches: number}>()
    /** First updates of the nodes that built their sandbox, and how long each took. */
    const builtFirst: number[] = []
    const buildMs: number[] = []
    const deadline = t0 + (o.timeoutMs ?? 60_000 + 2000 * queue.length)
    const touch = async (node: SwarmNode, touches: number) => {
      try {
        if (touches === 1) await update(node)
        else await update(node, {[INGRESS_NUDGE_LABEL]: String(touches - 1)})
        const t = now()
        building.set(node.hostname, {node, first: building.get(node.hostname)?.first ?? t, since: t, touches})
        notReady.set(node.hostname, 'its ingress sandbox is being built')
      } catch (e) {
        if (isInterruption(e)) throw e
        notReady.set(node.hostname, `its entry could not be updated: ${oneLine(e)}`)
      }
    }
    for (let delay = 250; ; ) {
      this.o.signal?.throwIfAborted()
      while (building.size < INGRESS_WINDOW && queue.length > 0) await touch(queue.shift()!, 1)
      if (building.size === 0) break
      await sleep(delay)
      const seen = await mapSettled([...building.keys()], async (name) => api.localIngress(names.get(name)!), {concurrency: 32, signal: this.o.signal})
      let progress = false
      for (const r of seen) {
        if (r.ok && r.value?.sandbox) {
          const b = building.get(r.item)!
          builtFirst.push(b.first)
          buildMs.push(now() - b.first)
          building.delete(r.item)
          ready.push(r.item)
          notReady.delete(r.item)
          progress = true
          continue
        }
        notReady.set(r.item, r.ok ? (r.value ? 'ingress network known, sandbox not built yet' : 'no ingress network yet') : oneLine(r.error))
        // Nudged only when it looks stuck rather than slow: a node updated with it (within a second)
        // or after it has built its sandbox, and it waited longer than the builds usually take. At
        // 100 nodes on 2 cores every build is slow; the one run that nudged every node not built
        // after 8 s ended with the managers out of Raft quorum.
        const b = building.get(r.item)!
        const wait = Math.min(INGRESS_NUDGE_MAX_WAIT_MS, Math.max(INGRESS_RETOUCH_MS, 3 * median(buildMs)))
        if (b.touches <= INGRESS_NUDGES && now() - b.since > wait && builtFirst.some((f) => f >= b.first - 1000)) {
          const fresh = await entry(b.node.id).catch(() => undefined)
          if (fresh) {
            this.o.log(r.item, `ingress sandbox not built ${Math.round((now() - b.first) / 1000)} s after its entry was updated: nudged (node label ${INGRESS_NUDGE_LABEL})`)
            await touch(fresh, b.touches + 1)
          }
        }
      }
      delay = progress ? 250 : Math.min(delay * 2, 2000)
      if (now() > deadline) break
    }
    for (const n of queue) notReady.set(n.hostname, 'not reached before the deadline')
    // The nudge labels go, this run's and those a cut-off run left (each removal is one more
    // update, harmless to a built sandbox).
    const labelled = (await api.nodes(manager)).filter((n) => n.labels[INGRESS_NUDGE_LABEL] !== undefined)
    await mapSettled(labelled, (n) => update(n, {[INGRESS_NUDGE_LABEL]: undefined}), {concurrency: 8, signal: this.o.signal})
    if (notReady.size === 0) await api.setSwarmLabel(manager, INGRESS_LABEL, undefined)
    return {created, ready, notReady, ms: now() - t0}
  }

  /**
   * Once every join of this formation has ended: removes the node entries its joins left behind
   * that never completed (no hostname, Unknown/Down, created since the first join started) and
   * Down entries whose hostname is Ready under another node ID. While a host whose join failed
   * still says it is joining, entries with no hostname are kept (they may be its join). Real Down
   * hosts are never removed. `failed`: this run's hosts whose join did not succeed.
   */
  async pruneGhosts(o: {storeHosts: Iterable<string>; failed: readonly string[]}): Promise<GhostRemoval & {kept: NodeVerdict[]}> {
    if (this.joinsStartedAt === undefined || !this.leader) return {removed: [], failed: [], kept: []}
    const joining: string[] = []
    for (const name of o.failed) {
      const i = await (async () => this.o.api.info(this.o.endpoint(name)))().catch(() => undefined)
      if (i?.state === 'pending') joining.push(name)
    }
    const {manager, nodes} = await this.answeringManager()
    const c = classifyNodes(nodes, {storeHosts: o.storeHosts, now: Date.now(), runJoinsSince: this.joinsStartedAt, joining})
    return {...(await removeGhosts(this.o.api, manager, c.ghosts)), kept: c.kept}
  }
}

/** The median of `xs` (0 for none). */
function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
