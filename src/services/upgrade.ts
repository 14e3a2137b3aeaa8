/**
 * `belt upgrade` (docker-machine's `upgrade`): the engine of each host upgraded and restarted, one
 * host at a time; a swarm node is drained first, and made active again once it is back Ready.
 */
import {upgradeScript, installEngineCommand, privileged} from '../bootstrap/commands.js'
import {engineRequest, type ClientTls} from '../bootstrap/engine-api.js'
import {oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {execOk} from '../ssh/remote.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {EngineSwarmApi, type EngineEndpoint, type SwarmApi, type SwarmNode} from '../swarm/api.js'
import {seconds, type Reporter} from '../ui/reporter.js'
import {SSH_WAIT_MS, bootstrapOne, prepareBootstrap, type BootstrapSetup} from './bootstrap-hosts.js'
import type {HostOutcome} from './create-hosts.js'
import {openHost} from './host-access.js'
import {clusterRecords, endpointOf, storeClientTls} from './swarm.js'

/** What the upgrade does to a host and its swarm, injectable for tests. */
export interface UpgradeSteps {
  swarm: SwarmApi
  /** Tasks still running (or starting) on a node, by their actual state, as a manager sees them. */
  runningTasks(manager: EngineEndpoint, nodeId: string): Promise<number>
  /** Upgrades the host's engine packages and restarts the engine (over SSH). */
  upgradeEngine(r: HostRecord): Promise<void>
  /** The bootstrapper on the host again: configuration checked, engine awaited over TLS, record updated. */
  bootstrap(name: string): Promise<HostOutcome>
}

export interface UpgradeRequest {
  store: Store
  hosts: readonly HostRecord[]
  reporter: Reporter
  signal?: AbortSignal
  /** How long a drained node's tasks may take to move away (default 120 s); then the upgrade goes on with a warning. */
  drainTimeoutMs?: number
  /** How long the node may take to be Ready again in the swarm (default 120 s). */
  readyTimeoutMs?: number
  /** Poll interval for the drain and Ready waits (default 1 s). */
  pollMs?: number
  steps?: UpgradeSteps
}

/** The real steps: SSH and the bootstrapper for the engine, the Engine API for the swarm. */
export async function upgradeSteps(store: Store, reporter: Reporter, signal?: AbortSignal): Promise<UpgradeSteps> {
  const tls: ClientTls = await storeClientTls(store)
  let setup: BootstrapSetup | undefined
  return {
    swarm: new EngineSwarmApi(tls),
    async runningTasks(manager, nodeId) {
      // By actual state, not desired state: a drained node's tasks are desired `shutdown` at once,
      // while their containers still run until they stop.
      const filters = encodeURIComponent(JSON.stringify({node: [nodeId]}))
      const tasks = await engineRequest<{Status?: {State?: string}}[]>(manager.address, manager.port, tls, 'GET', `/tasks?filters=${filters}`)
      return tasks.filter((t) => ['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'].includes(t.Status?.State ?? '')).length
    },
    async upgradeEngine(r) {
      setup ??= await prepareBootstrap(store)
      const script = upgradeScript(r.engine?.config ?? {labels: [], opts: [], insecureRegistries: [], registryMirrors: []}, {script: setup.templates.installScript})
      const remote = await openHost(store, r, {waitMs: SSH_WAIT_MS, signal})
      try {
        await execOk(remote, privileged(installEngineCommand, r.machine!.ssh.user), {stdin: script, timeoutMs: 900_000, what: 'the engine upgrade'})
      } finally {
        await remote.close()
      }
    },
    async bootstrap(name) {
      setup ??= await prepareBootstrap(store)
      return bootstrapOne(setup, name, {reporter, signal})
    },
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), {once: true})
  })

/** A manager to speak to the swarm of `r` through: another manager when there is one, else `r` itself. */
function managerFor(r: HostRecord, cluster: readonly HostRecord[]): HostRecord | undefined {
  const managers = cluster.filter((m) => m.swarm?.role === 'manager' && m.engine)
  return managers.find((m) => m.name !== r.name) ?? managers.find((m) => m.name === r.name)
}

/**
 * Upgrades hosts one at a time, in the order given. For a swarm node: drain it (through another
 * manager when there is one), wait (bounded) for its tasks to move, upgrade and restart the engine,
 * bootstrap again, wait until the node is Ready, and make it active again if it was active before.
 * The first host that fails stops the run: a rolling upgrade does not go on past a broken node, and
 * a failed node stays drained (its hint says how to reactivate it). Hosts not reached are outcomes
 * with `interrupted` set when the operator stopped the run, and failures naming the host that stopped it otherwise.
 */
export async function upgradeHosts(req: UpgradeRequest): Promise<HostOutcome[]> {
  const {store, reporter, signal} = req
  const steps = req.steps ?? (await upgradeSteps(store, reporter, signal))
  const poll = req.pollMs ?? 1000
  const out: HostOutcome[] = []
  let stoppedBy: string | undefined
  for (const host of req.hosts) {
    if (stoppedBy !== undefined || signal?.aborted) {
      out.push({name: host.name, ok: false, phase: host.phase, address: host.machine?.address, ...(signal?.aborted ? {interrupted: true, error: 'interrupted'} : {error: `not upgraded: the upgrade stopped at ${stoppedBy}`})})
      continue
    }
    const t0 = Date.now()
    let drained: {manager: EngineEndpoint; nodeId: string; wasActive: boolean} | undefined
    try {
      if (!host.engine) throw new Error(`it has no engine yet (its state is ${host.phase}): bootstrap it with belt provision ${host.name}`)
      const r = await store.get(host.name)
      if (r.swarm?.nodeId) {
        const via = managerFor(r, await clusterRecords(store, r.cluster))
        if (!via) throw new Error('it is in a swarm but no manager of that swarm has an engine record')
        const manager = endpointOf(via)
        const node = (await steps.swarm.nodes(manager)).find((n) => n.id === r.swarm!.nodeId)
        if (!node) throw new Error(`its node ${r.swarm.nodeId} is not in the swarm's node list (belt swarm status)`)
        drained = {manager, nodeId: node.id, wasActive: node.availability === 'active'}
        if (node.availability !== 'drain') {
          await steps.swarm.updateNode(manager, node, {availability: 'drain'})
          reporter.host(host.name, `drained (through ${via.name})`)
        }
        await waitDrained(steps, manager, node.id, req.drainTimeoutMs ?? 120_000, poll, reporter, host.name, signal)
      }
      reporter.host(host.name, 'upgrading and restarting the engine')
      await steps.upgradeEngine(r)
      const b = await steps.bootstrap(host.name)
      if (!b.ok) throw new Error(b.error ?? 'the bootstrap after the upgrade failed')
      if (drained) {
        const node = await waitReady(steps, drained.manager, drained.nodeId, req.readyTimeoutMs ?? 120_000, poll, signal)
        reporter.host(host.name, 'Ready in the swarm again')
        if (drained.wasActive) {
          await steps.swarm.updateNode(drained.manager, node, {availability: 'active'})
          reporter.host(host.name, 'active again')
        }
      }
      const version = (await store.get(host.name)).engine?.serverVersion
      reporter.host(host.name, `upgraded: engine ${version ?? '?'} (${seconds(Date.now() - t0)})`)
      out.push({name: host.name, ok: true, phase: b.phase, address: host.machine?.address, ms: Date.now() - t0})
    } catch (e) {
      const interrupted = isInterruption(e) || Boolean(signal?.aborted)
      const left = drained?.wasActive ? `; the node is left drained: reactivate it with docker node update --availability active ${host.name}` : ''
      const error = interrupted ? `interrupted${left}` : `${oneLine(e)}${left}`
      reporter.host(host.name, interrupted ? `upgrade interrupted${left}` : `upgrade failed: ${error}`)
      out.push({name: host.name, ok: false, phase: host.phase, address: host.machine?.address, error, ...(interrupted ? {interrupted: true} : {})})
      stoppedBy = host.name
    }
  }
  return out
}

async function waitDrained(steps: UpgradeSteps, manager: EngineEndpoint, nodeId: string, timeoutMs: number, poll: number, reporter: Reporter, name: string, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let first = true; ; first = false) {
    const n = await steps.runningTasks(manager, nodeId)
    if (n === 0) return
    if (first) reporter.host(name, `waiting for ${n} task${n === 1 ? '' : 's'} to move off the node`)
    if (Date.now() + poll > deadline) {
      reporter.warn(`${name}: ${n} task${n === 1 ? '' : 's'} still on the node after ${seconds(timeoutMs)}; upgrading anyway`)
      return
    }
    await sleep(poll, signal)
  }
}

async function waitReady(steps: UpgradeSteps, manager: EngineEndpoint, nodeId: string, timeoutMs: number, poll: number, signal?: AbortSignal): Promise<SwarmNode> {
  const deadline = Date.now() + timeoutMs
  let last = 'not listed'
  for (;;) {
    try {
      const node = (await steps.swarm.nodes(manager)).find((n) => n.id === nodeId)
      if (node?.state === 'ready') return node
      last = node ? node.state : 'not listed'
    } catch (e) {
      last = oneLine(e) // a manager restarting answers nothing for a moment
    }
    if (Date.now() + poll > deadline) throw new Error(`the node was not Ready in the swarm within ${seconds(timeoutMs)} (last: ${last})`)
    await sleep(poll, signal)
  }
}
