/**
 * Pure decisions for forming a swarm (table-tested): how many managers, which address to
 * advertise, whether managers take work, and who is already in which swarm.
 */
import type {Machine} from '../../drivers/driver.js'
import {usageError} from '../errors.js'
import {SWARM_PORT, type NodeSwarmInfo} from './api.js'

/** Raft needs a majority: more than 7 managers only slows every write down. */
export const MAX_MANAGERS = 7

/** Refuses an even, zero or too large manager count with a usage error naming the fix. */
export function checkManagers(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw usageError(`--managers must be a whole number of at least 1, got ${n}`, 'E_MANAGERS')
  if (n > MAX_MANAGERS) throw usageError(`--managers ${n} is more than ${MAX_MANAGERS}: a larger Raft group only slows every write`, 'E_MANAGERS', 'use 3, 5 or 7')
  if (n % 2 === 0) throw usageError(`--managers ${n} is even: a Raft group of ${n} tolerates no more failures than one of ${n - 1}`, 'E_MANAGERS', `use ${n - 1} or ${n + 1}`)
}

export type AdvertiseType = 'auto' | 'public' | 'private'

/** The address a node advertises: the private one when the host has one (auto), or as asked. */
export function advertiseAddress(name: string, machine: Machine, type: AdvertiseType): string {
  if (type === 'public') return machine.address
  if (type === 'private') {
    if (!machine.privateAddress)
      throw usageError(`${name} has no private address`, 'E_NO_PRIVATE_ADDRESS', 'use --advertise-addr-type public, or create hosts with private networking')
    return machine.privateAddress
  }
  return machine.privateAddress ?? machine.address
}

/**
 * From this many nodes on, managers are drained by default (`--manager-availability auto`): they
 * then only run Raft and the dispatcher. Measured here: the managers of a 100-node swarm spend most
 * of a core on heartbeats and Raft, and at 200 nodes a CPU-starved manager lost leadership; tasks
 * scheduled on managers compete with exactly that. Below 10 nodes, draining 3 managers would take
 * a third or more of the capacity away, so they work.
 */
export const DRAIN_MANAGERS_FROM = 10

export type Availability = 'active' | 'drain'
export function managerAvailability(flag: 'auto' | Availability, swarmSize: number): Availability {
  if (flag !== 'auto') return flag
  return swarmSize >= DRAIN_MANAGERS_FROM ? 'drain' : 'active'
}

/** A host of the cluster as its engine describes itself (or why it could not be asked). */
export interface HostSwarmState {
  name: string
  /** The advertise address this host would use / uses. */
  advertiseAddr: string
  info?: NodeSwarmInfo
  error?: string
  /** The swarm this host joined, as recorded by Belt. */
  recordedClusterId?: string
}

export interface SwarmPlan {
  /** The swarm the cluster's managers are in, if any. */
  clusterId?: string
  /** Managers of that swarm among the cluster's hosts. */
  managers: string[]
  /** Hosts already in that swarm: nothing to do. */
  members: string[]
  /** Hosts in some other swarm, or in a state Belt will not touch, with why. */
  foreign: {name: string; why: string}[]
  /** Hosts whose engine did not answer, with why. */
  unreachable: {name: string; why: string}[]
  /** Hosts free to join, in the order given. */
  free: string[]
}

/**
 * Sorts the cluster's hosts into members of its swarm, free hosts, hosts in another swarm and
 * unreachable ones. Throws a usage error when the managers belong to two different swarms.
 */
export function planSwarm(states: readonly HostSwarmState[]): SwarmPlan {
  const managerClusters = new Map<string, string[]>()
  for (const s of states)
    if (s.info?.state === 'active' && s.info.isManager && s.info.clusterId) managerClusters.set(s.info.clusterId, [...(managerClusters.get(s.info.clusterId) ?? []), s.name])
  if (managerClusters.size > 1) {
    const desc = [...managerClusters].map(([id, names]) => `${id.slice(0, 12)} (managers ${names.join(', ')})`).join(' and ')
    throw usageError(`the hosts belong to two swarms: ${desc}`, 'E_TWO_SWARMS', 'name the hosts of one swarm, or make the others leave with belt swarm leave')
  }
  const first: [string | undefined, string[]] = [...managerClusters][0] ?? [undefined, []]
  const [clusterId, managers] = first
  const managerAddrs = new Set<string>()
  for (const s of states) {
    if (!s.info || !managers.includes(s.name)) continue
    managerAddrs.add(`${s.advertiseAddr}:${SWARM_PORT}`)
    for (const a of s.info.remoteManagers) managerAddrs.add(a)
  }
  const plan: SwarmPlan = {clusterId, managers: [...managers], members: [], foreign: [], unreachable: [], free: []}
  for (const s of states) {
    if (!s.info) {
      plan.unreachable.push({name: s.name, why: s.error ?? 'no answer'})
      continue
    }
    const i = s.info
    if (i.state === 'inactive') plan.free.push(s.name)
    else if (i.state === 'active' && i.isManager) {
      if (i.clusterId === clusterId) plan.members.push(s.name)
    } else if (i.state === 'active') {
      const ours = (clusterId !== undefined && s.recordedClusterId === clusterId) || i.remoteManagers.some((a) => managerAddrs.has(a))
      if (ours) plan.members.push(s.name)
      else plan.foreign.push({name: s.name, why: `it is a worker of another swarm (managers ${i.remoteManagers.join(', ') || 'unknown'}); run belt swarm leave ${s.name} first`})
    } else plan.foreign.push({name: s.name, why: `its swarm state is ${i.state}${i.error ? ` (${i.error})` : ''}; run belt swarm leave ${s.name} to reset it`})
  }
  return plan
}
