import {Flags} from '@oclif/core'
import {usageError} from './errors.js'
import {DEFAULT_JOIN_CONCURRENCY, type SwarmSettings} from './services/swarm.js'
import {SWARM_PORT, type SwarmInitSpec} from './swarm/api.js'
import {MAX_MANAGERS} from './swarm/plan.js'

/** Flags of `belt swarm init` and `belt create --swarm`. */
export const swarmFlags = {
  managers: Flags.integer({description: `managers in the swarm: odd, at most ${MAX_MANAGERS}`, default: 3, helpGroup: 'SWARM'}),
  'join-concurrency': Flags.integer({description: 'worker joins at once (a sliding window); measured: 16 joins 100 hosts with no timeout on 2 cores', default: DEFAULT_JOIN_CONCURRENCY, min: 1, helpGroup: 'SWARM'}),
  'manager-availability': Flags.string({
    description: 'availability of managers: auto drains them from 10 nodes on, so they only run Raft and the dispatcher',
    options: ['auto', 'active', 'drain'],
    default: 'auto',
    helpGroup: 'SWARM',
  }),
  ingress: Flags.boolean({
    description: "keep Docker's ingress network (routing mesh) in a new swarm; --no-ingress removes it before nodes join, so none builds its sandbox (for large experiments)",
    default: true,
    allowNo: true,
    helpGroup: 'SWARM',
  }),
  'defer-ingress': Flags.boolean({
    description:
      'new swarm: form it without the ingress network and create that once every node joined (joins then take no ingress work; measured on 2 cores: 50 hosts gained, 100 hosts lost to the sandbox storm afterwards)',
    default: false,
    helpGroup: 'SWARM',
  }),
  'advertise-addr-type': Flags.string({description: 'address nodes advertise: auto is the private one when hosts have one', options: ['auto', 'public', 'private'], default: 'auto', helpGroup: 'SWARM'}),
  'swarm-label': Flags.string({description: 'node label key=value given to these hosts once they joined (repeatable)', multiple: true, helpGroup: 'SWARM'}),
  // The options of a new swarm: docker swarm init's flags, under the same names.
  'default-addr-pool': Flags.string({description: 'new swarm: CIDR overlay networks take subnets from (repeatable) [default: 10.0.0.0/8]', multiple: true, helpGroup: 'NEW SWARM'}),
  'default-addr-pool-mask-length': Flags.integer({description: 'new swarm: prefix length of each overlay network subnet [default: 24]', helpGroup: 'NEW SWARM'}),
  'data-path-port': Flags.integer({description: 'new swarm: UDP port of the VXLAN data path, 1024-49151 [default: 4789]', helpGroup: 'NEW SWARM'}),
  'cert-expiry': Flags.string({description: 'new swarm: validity of node certificates, e.g. 720h, 30d (at least 1h) [default: 2160h]', helpGroup: 'NEW SWARM'}),
  'dispatcher-heartbeat': Flags.string({description: 'new swarm: how often nodes report to managers, e.g. 5s, 20s [default: 5s]', helpGroup: 'NEW SWARM'}),
  'snapshot-interval': Flags.integer({description: 'new swarm: Raft log entries between snapshots [default: 10000]', helpGroup: 'NEW SWARM'}),
  'max-snapshots': Flags.integer({description: 'new swarm: older Raft snapshots kept [default: 0]', helpGroup: 'NEW SWARM'}),
  autolock: Flags.boolean({description: 'new swarm: managers need the unlock key after a restart; the key is printed once and never stored', helpGroup: 'NEW SWARM'}),
}

/** The swarm flags whose values {@link swarmSettingsFrom} reads (all optional but the four above). */
export interface SwarmFlagValues {
  managers: number
  'join-concurrency': number
  'manager-availability': string
  'advertise-addr-type': string
  ingress?: boolean
  'defer-ingress'?: boolean
  'swarm-label'?: string[]
  'default-addr-pool'?: string[]
  'default-addr-pool-mask-length'?: number
  'data-path-port'?: number
  'cert-expiry'?: string
  'dispatcher-heartbeat'?: string
  'snapshot-interval'?: number
  'max-snapshots'?: number
  autolock?: boolean
}

const UNIT_S: Record<string, number> = {ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86_400}

/** A Go-style duration (`90s`, `1h30m`, `2160h`) or days (`30d`), in seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim()
  if (!/^((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d))+$/.test(t)) return undefined
  let total = 0
  for (const m of t.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_S[m[2]!]!
  return total
}

/** `a.b.c.d/n` as [address as a number, prefix length]; undefined when malformed. */
function parseCidr(text: string): [number, number] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim())
  if (!m) return undefined
  const octets = m.slice(1, 5).map(Number)
  const len = Number(m[5])
  if (octets.some((o) => o > 255) || len > 32) return undefined
  return [octets.reduce((a, o) => a * 256 + o, 0), len]
}

const dotted = (n: number) => [24, 16, 8, 0].map((sh) => Math.floor(n / 2 ** sh) % 256).join('.')
const bad = (flag: string, message: string, hint: string) => usageError(`--${flag} ${message}`, 'E_SWARM_OPTION', hint)

/**
 * The options of a new swarm from the flags, validated: one usage error (exit 2) naming the flag,
 * the value and what is accepted, before anything is created. Undefined when none is given.
 */
export function initSpecFrom(f: SwarmFlagValues): SwarmInitSpec | undefined {
  const spec: SwarmInitSpec = {}
  const pools = f['default-addr-pool'] ?? []
  const parsed: [string, number, number][] = []
  for (const p of pools) {
    const c = parseCidr(p)
    if (!c) throw bad('default-addr-pool', `'${p}' is not an IPv4 CIDR`, 'give one like 10.20.0.0/16')
    const [addr, len] = c
    const size = 2 ** (32 - len)
    if (addr % size !== 0) throw bad('default-addr-pool', `'${p}' has host bits set`, `use ${dotted(addr - (addr % size))}/${len}`)
    for (const [q, a2, l2] of parsed)
      if (addr < a2 + 2 ** (32 - l2) && a2 < addr + size) throw bad('default-addr-pool', `'${p}' overlaps '${q}'`, 'give pools that do not overlap')
    parsed.push([p.trim(), addr, len])
  }
  if (parsed.length) spec.defaultAddrPool = parsed.map(([p]) => p)
  const mask = f['default-addr-pool-mask-length']
  if (mask !== undefined) {
    const widest = parsed.length ? Math.max(...parsed.map(([, , l]) => l)) : 8
    if (!Number.isInteger(mask) || mask < widest || mask > 29)
      throw bad('default-addr-pool-mask-length', `${mask} is out of range`, `give ${widest} to 29: at least the pools' own prefix length (${parsed.length ? 'the longest is /' + widest : 'the default pool is 10.0.0.0/8'}), at most 29 (8 addresses)`)
    spec.subnetSize = mask
  } else if (parsed.some(([, , l]) => l > 24))
    throw bad('default-addr-pool', `'${parsed.find(([, , l]) => l > 24)![0]}' is smaller than a /24 network`, 'give --default-addr-pool-mask-length at least its prefix length, or a larger pool')
  const port = f['data-path-port']
  if (port !== undefined) {
    if (!Number.isInteger(port) || port < 1024 || port > 49151) throw bad('data-path-port', `${port} is out of range`, 'give a port from 1024 to 49151 (Docker refuses others)')
    if ([2376, SWARM_PORT, 7946].includes(port)) throw bad('data-path-port', `${port} is taken`, '2376 is the engine API, 2377 the swarm managers, 7946 the gossip: pick another')
    spec.dataPathPort = port
  }
  const expiry = f['cert-expiry']
  if (expiry !== undefined) {
    const sec = parseDuration(expiry)
    if (sec === undefined) throw bad('cert-expiry', `'${expiry}' is not a duration`, 'give one like 720h or 30d')
    if (sec < 3600) throw bad('cert-expiry', `'${expiry}' is shorter than an hour`, 'give at least 1h (swarmkit refuses less)')
    spec.certExpirySeconds = sec
  }
  const beat = f['dispatcher-heartbeat']
  if (beat !== undefined) {
    const sec = parseDuration(beat)
    if (sec === undefined) throw bad('dispatcher-heartbeat', `'${beat}' is not a duration`, 'give one like 5s or 20s')
    if (sec < 1) throw bad('dispatcher-heartbeat', `'${beat}' is shorter than a second`, 'give at least 1s')
    spec.heartbeatSeconds = sec
  }
  const interval = f['snapshot-interval']
  if (interval !== undefined) {
    if (!Number.isInteger(interval) || interval < 1) throw bad('snapshot-interval', `${interval} is out of range`, 'give a number of Raft log entries, at least 1')
    spec.snapshotInterval = interval
  }
  const keep = f['max-snapshots']
  if (keep !== undefined) {
    if (!Number.isInteger(keep) || keep < 0) throw bad('max-snapshots', `${keep} is out of range`, 'give 0 or more')
    spec.keepOldSnapshots = keep
  }
  if (f.autolock) spec.autolock = true
  return Object.keys(spec).length ? spec : undefined
}

/** `--swarm-label key=value` (or `key`, an empty value) as a map; one usage error per bad label. */
export function parseSwarmLabels(labels: readonly string[] | undefined): Record<string, string> | undefined {
  if (!labels?.length) return undefined
  const out: Record<string, string> = {}
  for (const l of labels) {
    const eq = l.indexOf('=')
    const key = eq < 0 ? l : l.slice(0, eq)
    const value = eq < 0 ? '' : l.slice(eq + 1)
    if (!/^[A-Za-z0-9][A-Za-z0-9._\/-]*$/.test(key)) throw bad('swarm-label', `'${l}' has no valid key`, 'give key=value; a key is letters, digits and . _ - /, e.g. zone=eu-1')
    if (key in out && out[key] !== value) throw bad('swarm-label', `gives ${key} twice (${out[key]}, ${value})`, 'give each key once')
    out[key] = value
  }
  return out
}

export function swarmSettingsFrom(f: SwarmFlagValues): SwarmSettings {
  const init = initSpecFrom(f)
  const nodeLabels = parseSwarmLabels(f['swarm-label'])
  return {
    ...(init ? {init} : {}),
    ...(nodeLabels ? {nodeLabels} : {}),
    noIngress: f.ingress === false,
    ...(f['defer-ingress'] && f.ingress !== false ? {deferIngress: true} : {}),
    managers: f.managers,
    concurrency: f['join-concurrency'],
    availability: f['manager-availability'] as SwarmSettings['availability'],
    advertiseType: f['advertise-addr-type'] as SwarmSettings['advertiseType'],
  }
}

/** `create` without --swarm: a swarm option would do nothing, so it is refused (exit 2) rather than ignored. */
export function refuseSwarmOptionsWithoutSwarm(f: Partial<SwarmFlagValues>): undefined {
  const given = (['swarm-label', 'default-addr-pool', 'default-addr-pool-mask-length', 'data-path-port', 'cert-expiry', 'dispatcher-heartbeat', 'snapshot-interval', 'max-snapshots', 'autolock'] as const).filter((k) => {
    const v = f[k]
    return v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0)
  })
  if (given.length > 0) throw usageError(`--${given[0]} is an option of the swarm`, 'E_SWARM_OPTION', 'add --swarm, or use it with belt swarm init')
  return undefined
}
