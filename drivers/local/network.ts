/**
 * Pure address and name arithmetic for the local driver (table-tested). A local "network" is one
 * IPv4 /16: the machine's side of it (the gateway) is .0.1, host number i is
 * .(1 + (i-1) div 254).(1 + (i-1) mod 254), so addresses never end in .0 or .255.
 */

export interface LocalNetwork {
  /** `10.213.0.0/16` */
  cidr: string
  /** `10.213` */
  prefix: string
  /** `10-213`: used in namespace and link names. */
  tag: string
  /** The hub namespace that holds the bridge. */
  hub: string
  /** The gateway link in the machine's namespace (at most 15 characters: IFNAMSIZ). */
  gatewayLink: string
  /** `10.213.0.1` */
  gatewayAddress: string
}

/** A bridge holds at most 1,024 ports; one is the uplink. */
export const MAX_HOSTS_PER_NETWORK = 1000

/**
 * Parses `--local-subnet`. Only /16 networks inside the private ranges are accepted, so a host can
 * never be given a public address. Returns an error message instead of throwing.
 */
export function parseLocalSubnet(cidr: string): LocalNetwork | string {
  const m = /^(\d{1,3})\.(\d{1,3})\.0\.0\/16$/.exec(cidr.trim())
  if (!m) return `--local-subnet ${cidr} is not an IPv4 /16 written A.B.0.0/16 (e.g. 10.213.0.0/16)`
  const a = Number(m[1])
  const b = Number(m[2])
  const priv = a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)
  if (a > 255 || b > 255 || !priv) return `--local-subnet ${cidr} is not a private network: use 10.X.0.0/16, 172.16-31.0.0/16 or 192.168.0.0/16`
  const prefix = `${a}.${b}`
  const tag = `${a}-${b}`
  return {cidr: `${prefix}.0.0/16`, prefix, tag, hub: `belt-hub-${tag}`, gatewayLink: `belt-${tag}`, gatewayAddress: `${prefix}.0.1`}
}

/** The address of host number `index` (1-based). */
export function hostAddress(net: LocalNetwork, index: number): string {
  if (!Number.isInteger(index) || index < 1 || index > MAX_HOSTS_PER_NETWORK) throw new RangeError(`host index ${index} is out of range`)
  return `${net.prefix}.${1 + Math.floor((index - 1) / 254)}.${1 + ((index - 1) % 254)}`
}

/** The network namespace of host `index` named `name`: unique per network, readable in `ip netns`. */
export function hostNamespace(net: LocalNetwork, index: number, name: string): string {
  return `belt-${net.tag}-${index}-${name}`
}

/** The host's port on the hub bridge (at most 15 characters). */
export const hubPort = (index: number): string => `h${index}`

/** The host indices that `ip -o link show` in the hub reports as taken. */
export function takenIndices(ipLinkOutput: string): Set<number> {
  const taken = new Set<number>()
  for (const line of ipLinkOutput.split('\n')) {
    const m = /^\d+:\s+h(\d+)[@:]/.exec(line)
    if (m) taken.add(Number(m[1]))
  }
  return taken
}

/** The smallest free host index, or undefined when the network is full. */
export function firstFreeIndex(taken: ReadonlySet<number>): number | undefined {
  for (let i = 1; i <= MAX_HOSTS_PER_NETWORK; i++) if (!taken.has(i)) return i
  return undefined
}

/**
 * Routes of this machine (`ip -o -4 route show`) that overlap `net` and do not belong to Belt's own
 * gateway link: a subnet already used on this machine would make hosts unreachable or hijack
 * traffic, so it is refused.
 */
export function overlappingRoutes(net: LocalNetwork, ipRouteOutput: string): string[] {
  const out: string[] = []
  const [a, b] = net.prefix.split('.').map(Number) as [number, number]
  const ours = ((a << 24) | (b << 16)) >>> 0
  for (const line of ipRouteOutput.split('\n')) {
    const m = /^(default|(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?)\s.*?\bdev\s+(\S+)/.exec(line.trim())
    if (!m || m[1] === 'default' || m[7] === net.gatewayLink) continue
    const addr = ((Number(m[2]) << 24) | (Number(m[3]) << 16) | (Number(m[4]) << 8) | Number(m[5])) >>> 0
    const len = m[6] === undefined ? 32 : Number(m[6])
    const common = Math.min(len, 16)
    const mask = common === 0 ? 0 : (~0 << (32 - common)) >>> 0
    if (((addr & mask) >>> 0) === ((ours & mask) >>> 0)) out.push(line.trim())
  }
  return out
}
