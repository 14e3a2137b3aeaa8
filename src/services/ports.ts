/**
 * Published ports: `belt ports ls|open|close` and `belt create --open-port`. A cluster's published
 * ports are rules of its cloud firewall (DigitalOcean: the firewall `belt-<cluster>`, applied by tag;
 * EC2: the security group `belt-<cluster>`), so they hold for every host of the cluster, present and
 * future. Drivers without a cloud firewall (local, generic) have no `setPorts`: the commands say so.
 */
import type {Driver, DriverOptions, PortChange, PortRule, PortSpec} from '../../drivers/driver.js'
import {findDriver, type DriverEntry, type DriverLookup} from '../../drivers/registry.js'
import {notFoundError, usageError, type UserError} from '../errors.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {Reporter} from '../ui/reporter.js'
import {driverContext, hostDriverOptions} from './driver-context.js'

/** SSH and the Docker TLS API: opened to `--<driver>-admin-cidr` by Belt itself, never published. */
export const ADMIN_PORTS: ReadonlySet<number> = new Set([22, 2376])

const PORT = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/i

/**
 * `80`, `80/tcp`, `53/udp`, `8000-8010/tcp` -> a PortSpec (tcp when no protocol is given, as in
 * `docker run -p`). A usage error (exit 2) naming `flag` for anything else, and for 22 and 2376,
 * which the admin CIDR governs.
 */
export function parsePort(value: string, flag: string): PortSpec {
  const m = PORT.exec(value.trim())
  const hint = 'e.g. 80, 443/tcp, 53/udp or 8000-8010/tcp'
  if (!m) throw usageError(`${flag}: '${value}' is not PORT[/tcp|udp] or FROM-TO[/tcp|udp]`, 'E_PORT', hint)
  const port = Number(m[1])
  const end = m[2] === undefined ? undefined : Number(m[2])
  if (port < 1 || port > 65535 || (end !== undefined && (end > 65535 || end < port)))
    throw usageError(`${flag}: '${value}' is out of range (ports are 1 to 65535, a range goes up)`, 'E_PORT', hint)
  const protocol = (m[3]?.toLowerCase() ?? 'tcp') as PortSpec['protocol']
  const endPort = end !== undefined && end !== port ? end : undefined
  for (const admin of ADMIN_PORTS)
    if (protocol === 'tcp' && port <= admin && admin <= (endPort ?? port))
      throw usageError(
        `${flag}: ${admin}/tcp is ${admin === 22 ? 'SSH' : 'the Docker TLS API'}, open only to the admin CIDR`,
        'E_PORT_ADMIN',
        'widen or narrow it with --<driver>-admin-cidr when the cluster is created; it is never published to any address',
      )
  return {protocol, port, ...(endPort !== undefined ? {endPort} : {})}
}

/** Several values, each checked; duplicates dropped. */
export function parsePorts(values: readonly string[], flag: string): PortSpec[] {
  const out: PortSpec[] = []
  for (const v of values) {
    const p = parsePort(v, flag)
    if (!out.some((x) => formatPort(x) === formatPort(p))) out.push(p)
  }
  return out
}

/** `80/tcp`, `8000-8010/udp`. */
export const formatPort = (p: PortSpec): string => `${p.port}${p.endPort !== undefined ? `-${p.endPort}` : ''}/${p.protocol}`

/** The refusal for a driver without a cloud firewall (exit 2), saying what is true of its hosts instead. */
export function noFirewallError(driver: string, fix = 'drop --open-port'): UserError {
  return usageError(
    `the ${driver} driver has no cloud firewall for Belt to publish ports in`,
    'E_PORTS_UNSUPPORTED',
    `every port a ${driver} host listens on is already as reachable as the host itself (local: from this machine only, on the hosts' private bridge; generic: as the machine's own firewall allows); ${fix}`,
  )
}

export interface PortsRequest {
  store: Store
  /** The cluster (`--cluster`, `BELT_CLUSTER`, default `default`). */
  cluster: string
  reporter: Reporter
  drivers?: DriverLookup
  env?: NodeJS.ProcessEnv
  signal?: AbortSignal
}

/** The firewall of one place (driver and pinned options) of a cluster, and its rules. */
export interface ClusterPorts {
  cluster: string
  driver: string
  /** The hosts of the cluster there. */
  hosts: string[]
  rules: PortRule[]
}

interface Place {
  entry: DriverEntry
  driver: Driver & Required<Pick<Driver, 'listPorts' | 'setPorts'>>
  options: DriverOptions
  hosts: string[]
}

/**
 * The places of a cluster's hosts: one per driver and set of pinned options (one firewall each),
 * with the options of its first host (pinned ones from the record, checked against the environment
 * before any API call). Refuses a cluster with no host and a driver without firewall.
 */
async function places(req: PortsRequest): Promise<Place[]> {
  const {records} = await req.store.list()
  const mine = records.filter((r) => r.cluster === req.cluster)
  if (mine.length === 0)
    throw notFoundError(`cluster ${req.cluster} has no hosts in ${req.store.dir}`, 'E_NO_CLUSTER', `create some with --open-port (belt create --driver digitalocean --cluster ${req.cluster} --open-port 80 ...), or pass --cluster`)
  const groups = new Map<string, {entry: DriverEntry; options: DriverOptions; records: HostRecord[]}>()
  for (const r of mine) {
    const entry = (req.drivers ?? findDriver)(r.driver)
    if (!entry) throw usageError(`${r.name} was created with the driver ${r.driver}, which this Belt does not have`, 'E_UNKNOWN_DRIVER')
    const options = hostDriverOptions(entry, r, req.env)
    const pinned = entry.options.filter((o) => o.pinned).map((o) => options[o.name] ?? '')
    const key = JSON.stringify([r.driver, ...pinned])
    const g = groups.get(key) ?? {entry, options, records: []}
    g.records.push(r)
    groups.set(key, g)
  }
  const out: Place[] = []
  for (const g of groups.values()) {
    const driver = await g.entry.load()
    if (!driver.setPorts || !driver.listPorts) throw noFirewallError(g.entry.name, `there is nothing for belt ports to list, open or close on cluster ${req.cluster}`)
    out.push({entry: g.entry, driver: driver as Place['driver'], options: g.options, hosts: g.records.map((r) => r.name)})
  }
  return out
}

/** The inbound rules of the cluster's firewall(s). Reads only. */
export async function listClusterPorts(req: PortsRequest): Promise<ClusterPorts[]> {
  const out: ClusterPorts[] = []
  for (const p of await places(req)) {
    const ctx = await driverContext(req.store, p.entry.name, req.reporter, {signal: req.signal})
    out.push({cluster: req.cluster, driver: p.entry.name, hosts: p.hosts, rules: await p.driver.listPorts(req.cluster, p.options, ctx)})
  }
  return out
}

/** Publishes `change.open` to any address and withdraws `change.close`, on every firewall of the cluster. */
export async function changeClusterPorts(req: PortsRequest & {change: PortChange}): Promise<ClusterPorts[]> {
  const out: ClusterPorts[] = []
  for (const p of await places(req)) {
    const ctx = await driverContext(req.store, p.entry.name, req.reporter, {signal: req.signal})
    out.push({cluster: req.cluster, driver: p.entry.name, hosts: p.hosts, rules: await p.driver.setPorts(req.cluster, req.change, p.options, ctx)})
  }
  return out
}
