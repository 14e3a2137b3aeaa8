import {oneLine} from '../errors.js'
import type {EngineEndpoint, SwarmApi, SwarmNode} from './api.js'

/**
 * Ghost node entries: entries in a swarm's node list that never completed a join. A joining engine
 * asks a manager for its certificate first, and the manager creates the node entry then; the entry
 * gets its hostname only when the node reaches the dispatcher. A join abandoned in between (the
 * engine starved of CPU or network, killed, reset and retried) leaves an entry with no hostname,
 * status Unknown, that Docker keeps for ever. The other kind: a Down entry whose hostname is Ready
 * under another node ID (an old identity of a host that joined again).
 */

/** Entries younger than this may be joins still registering, when no run vouches for them. */
export const GHOST_MIN_AGE_MS = 60_000
/** Margin for the clocks of Belt's machine and the managers when comparing `createdAt` to a run's start. */
export const RUN_CLOCK_MARGIN_MS = 30_000

export interface GhostContext {
  /** Host names of the store (the swarm's cluster). */
  storeHosts: Iterable<string>
  /** Now, on Belt's clock (ms since the epoch). */
  now: number
  /**
   * This run's joins, all ended: when the first one started (ms since the epoch). Entries with no
   * hostname created since then are this run's abandoned attempts.
   */
  runJoinsSince?: number
  /**
   * Hosts of the store whose engine says it is joining (swarm state pending): an entry with no
   * hostname may be its join in progress, so none is removed while there is one.
   */
  joining?: readonly string[]
}

export interface NodeVerdict {
  node: SwarmNode
  /** The store host it is (by hostname). */
  host?: string
  why: string
}

export interface NodeClassification {
  ready: NodeVerdict[]
  /** Real Down (or Unknown, Disconnected) nodes: reported, never removed. */
  down: NodeVerdict[]
  /** Entries that never completed a join: to remove. */
  ghosts: NodeVerdict[]
  /** Entries with no hostname not removed now (may be joins in progress, or older than this run): kept, and said so. */
  kept: NodeVerdict[]
}

const ghostStates = new Set(['unknown', 'down'])
const short = (id: string) => id.slice(0, 12)

/** Sorts a swarm's node entries into Ready, real Down, ghosts and kept ones. Pure. */
export function classifyNodes(nodes: readonly SwarmNode[], ctx: GhostContext): NodeClassification {
  const store = new Set(ctx.storeHosts)
  const readyByHostname = new Map<string, SwarmNode>()
  for (const n of nodes) if (n.state === 'ready' && !n.noHostname) readyByHostname.set(n.hostname, n)
  const out: NodeClassification = {ready: [], down: [], ghosts: [], kept: []}
  for (const node of nodes) {
    const host = !node.noHostname && store.has(node.hostname) ? node.hostname : undefined
    if (node.state === 'ready') {
      out.ready.push({node, host, why: 'ready'})
      continue
    }
    if (node.noHostname) {
      const created = node.createdAt ? Date.parse(node.createdAt) : Number.NaN
      const age = Number.isFinite(created) ? `created ${Math.max(0, Math.round((ctx.now - created) / 1000))} s ago` : 'creation time unknown'
      if (!ghostStates.has(node.state)) out.kept.push({node, why: `no hostname, status ${node.state}: may be a join in progress`})
      else if (ctx.joining && ctx.joining.length > 0)
        out.kept.push({node, why: `no hostname, status ${node.state}, ${age}: may be the join of ${ctx.joining.join(', ')} (still joining)`})
      else if (ctx.runJoinsSince !== undefined && Number.isFinite(created) && created >= ctx.runJoinsSince - RUN_CLOCK_MARGIN_MS)
        out.ghosts.push({node, why: `no hostname, status ${node.state}: made by one of this run's joins that never completed`})
      else if (ctx.runJoinsSince !== undefined) out.kept.push({node, why: `no hostname, status ${node.state}, from before this run: belt swarm prune checks it`})
      else if (Number.isFinite(created) && ctx.now - created >= GHOST_MIN_AGE_MS)
        out.ghosts.push({node, why: `no hostname, status ${node.state}, ${age}: a join that never completed`})
      else out.kept.push({node, why: `no hostname, status ${node.state}, ${age}: may be a join still registering`})
      continue
    }
    const twin = readyByHostname.get(node.hostname)
    if (twin && ghostStates.has(node.state)) {
      out.ghosts.push({node, host, why: `an old entry of ${node.hostname}, which is Ready as node ${short(twin.id)}`})
      continue
    }
    out.down.push({node, host, why: host ? `host ${host} is ${node.state}` : `${node.hostname} is ${node.state} and is not a host of the store`})
  }
  return out
}

export interface GhostRemoval {
  removed: NodeVerdict[]
  failed: (NodeVerdict & {error: string})[]
}

/**
 * Removes ghost entries through a manager (`DELETE /nodes/{id}?force=true`), one at a time (each
 * is a Raft write). An entry of a manager that is a Raft member must be demoted first.
 */
export async function removeGhosts(api: SwarmApi, manager: EngineEndpoint, ghosts: readonly NodeVerdict[]): Promise<GhostRemoval> {
  const out: GhostRemoval = {removed: [], failed: []}
  for (const g of ghosts) {
    try {
      try {
        await api.removeNode(manager, g.node.id, true)
      } catch (e) {
        if (g.node.role !== 'manager' || !/demote/i.test(oneLine(e))) throw e
        await api.updateNode(manager, g.node, {role: 'worker'})
        await api.removeNode(manager, g.node.id, true)
      }
      out.removed.push(g)
    } catch (e) {
      out.failed.push({...g, error: oneLine(e)})
    }
  }
  return out
}

/** `8eb3a4853b1c (no hostname, status unknown: ...)` */
export function describeVerdict(v: NodeVerdict): string {
  return `${v.node.noHostname ? short(v.node.id) : `${v.node.hostname} (${short(v.node.id)})`}: ${v.why}`
}
