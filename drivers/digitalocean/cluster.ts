/**
 * Cluster-wide DigitalOcean resources, found by name and tag (never by a remembered id, so nothing
 * is orphaned when a record is lost): the cluster's SSH key `belt-<cluster>` and the cloud firewall
 * `belt-<cluster>`, applied by tag to every droplet tagged `belt-cluster-<cluster>`.
 */
import {createHash} from 'node:crypto'
import net from 'node:net'
import type {ClusterSpec, DriverContext, PortChange, PortRule, PortSpec} from '../driver.js'
import {DoApiError, isNotFound, type DoClient} from './client.js'
import type {DoDroplet, DoFirewall, DoFirewallRule, DoFirewallTarget, DoSshKey} from './types.js'

export const BELT_TAG = 'belt'
export const clusterTag = (cluster: string): string => `belt-cluster-${cluster}`
/** Name of the cluster's SSH key and firewall. */
export const resourceName = (cluster: string): string => `belt-${cluster}`

/** DigitalOcean's SSH key fingerprint: MD5 of the key blob, as colon-separated hex pairs. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1]
  if (!blob) throw new Error('not an OpenSSH public key (expected "type base64 [comment]")')
  const hex = createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex')
  return hex.match(/../g)!.join(':')
}

/** Parses `--digitalocean-admin-cidr`: comma-separated IPv4/IPv6 addresses or CIDRs. Returns an error message or the list. */
export function parseCidrs(value: string): string[] | string {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (items.length === 0) return 'no address given'
  for (const item of items) {
    const [addr, prefix, ...rest] = item.split('/')
    const family = net.isIP(addr ?? '')
    if (family === 0 || rest.length > 0) return `'${item}' is not an IPv4/IPv6 address or CIDR`
    if (prefix !== undefined) {
      const n = Number(prefix)
      if (!/^\d+$/.test(prefix) || n > (family === 4 ? 32 : 128)) return `'${item}' has a bad prefix length`
    }
  }
  return items
}

type Inbound = DoFirewallRule & {sources: DoFirewallTarget}
type Outbound = DoFirewallRule & {destinations: DoFirewallTarget}

/**
 * The firewall's rules: Docker swarm ports (2377/tcp management, 7946/tcp+udp gossip, 4789/udp
 * VXLAN overlay) and ICMP only between the cluster's droplets (by tag, public or VPC address); SSH
 * and the Docker TLS API (2376) only from `adminCidrs`; all outbound traffic (a DigitalOcean
 * firewall without outbound rules blocks it all). ESP (IP protocol 50, for encrypted overlays) cannot
 * be opened: DigitalOcean firewalls know only tcp, udp and icmp.
 */
export function firewallRules(cluster: string, adminCidrs: readonly string[]): {inbound_rules: Inbound[]; outbound_rules: Outbound[]} {
  const peers: DoFirewallTarget = {tags: [clusterTag(cluster)]}
  const admin: DoFirewallTarget = {addresses: [...adminCidrs]}
  const anywhere: DoFirewallTarget = {addresses: ['0.0.0.0/0', '::/0']}
  return {
    inbound_rules: [
      {protocol: 'tcp', ports: '22', sources: admin},
      {protocol: 'tcp', ports: '2376', sources: admin},
      {protocol: 'tcp', ports: '2377', sources: peers},
      {protocol: 'tcp', ports: '7946', sources: peers},
      {protocol: 'udp', ports: '7946', sources: peers},
      {protocol: 'udp', ports: '4789', sources: peers},
      {protocol: 'icmp', ports: '0', sources: peers},
    ],
    outbound_rules: [
      {protocol: 'tcp', ports: '0', destinations: anywhere},
      {protocol: 'udp', ports: '0', destinations: anywhere},
      {protocol: 'icmp', ports: '0', destinations: anywhere},
    ],
  }
}

export interface ClusterResources {
  sshKeyId: number
  firewallId: string
}

/**
 * Makes sure the cluster's tag, SSH key and firewall exist; creates what is missing. Idempotent and
 * safe after an ambiguous failure: each create is preceded by a lookup (key by fingerprint, firewall
 * by name), so a POST whose answer was lost is found instead of made twice. Call it under
 * `ctx.withLock`, so concurrent processes do it once.
 */
export async function ensureClusterResources(client: DoClient, cluster: ClusterSpec, adminCidrs: readonly string[], ctx: DriverContext): Promise<ClusterResources> {
  const tag = clusterTag(cluster.name)
  const name = resourceName(cluster.name)
  await ensureTag(client, tag, ctx.signal)

  const fingerprint = sshFingerprint(cluster.sshPublicKey)
  let sshKeyId: number | undefined
  for (let attempt = 0; sshKeyId === undefined; attempt++) {
    try {
      const {ssh_key} = await client.get<{ssh_key: DoSshKey}>(`/v2/account/keys/${fingerprint}`, undefined, ctx.signal)
      sshKeyId = ssh_key.id
      break
    } catch (e) {
      if (!isNotFound(e) || attempt >= 3) throw e
    }
    try {
      const {body} = await client.request<{ssh_key: DoSshKey}>({
        method: 'POST',
        path: '/v2/account/keys',
        body: {name, public_key: cluster.sshPublicKey.trim()},
        signal: ctx.signal,
      })
      sshKeyId = body.ssh_key.id
      await ctx.journal({kind: 'ssh-key', id: String(sshKeyId), action: 'created'})
      ctx.log(`uploaded SSH key ${name} (${fingerprint})`)
    } catch (e) {
      // 422 "already in use": another process uploaded it meanwhile; an ambiguous failure may have
      // uploaded it. Either way the next lookup by fingerprint finds it.
      if (!(e instanceof DoApiError && (e.status === 422 || e.ambiguous))) throw e
    }
  }

  const firewall = await ensureFirewall(client, cluster.name, adminCidrs, ctx)
  return {sshKeyId, firewallId: firewall.id}
}

/**
 * The cluster's firewall `belt-<cluster>`, found by name or created with {@link firewallRules} and
 * the cluster tag (the tag made first). Idempotent, like {@link ensureClusterResources}: a POST whose
 * answer was lost is found by the next lookup. Call it under the cluster lock.
 */
export async function ensureFirewall(client: DoClient, cluster: string, adminCidrs: readonly string[], ctx: DriverContext): Promise<DoFirewall> {
  const tag = clusterTag(cluster)
  const name = resourceName(cluster)
  await ensureTag(client, tag, ctx.signal)
  const wanted = firewallRules(cluster, adminCidrs)
  for (let attempt = 0; ; attempt++) {
    const existing = (await client.listAll<DoFirewall>('/v2/firewalls', 'firewalls', {}, ctx.signal)).find((f) => f.name === name)
    if (existing) {
      if (!(existing.tags ?? []).includes(tag))
        await client.request({method: 'POST', path: `/v2/firewalls/${existing.id}/tags`, body: {tags: [tag]}, retrySafe: true, signal: ctx.signal})
      const adminNow = existing.inbound_rules?.find((r) => r.protocol === 'tcp' && r.ports === '22')?.sources.addresses ?? []
      if ([...adminNow].sort().join(',') !== [...adminCidrs].sort().join(','))
        ctx.log(`firewall ${name} allows SSH from ${adminNow.join(', ') || 'nobody'}, not ${adminCidrs.join(', ')}: change it in the control panel, or remove the cluster to recreate it`)
      return existing
    }
    try {
      const {body} = await client.request<{firewall: DoFirewall}>({
        method: 'POST',
        path: '/v2/firewalls',
        body: {name, ...wanted, tags: [tag]},
        signal: ctx.signal,
      })
      await ctx.journal({kind: 'firewall', id: body.firewall.id, action: 'created'})
      ctx.log(`created firewall ${name}: swarm ports between ${tag} droplets, 22 and 2376 from ${adminCidrs.join(', ')}`)
      return body.firewall
    } catch (e) {
      if (!(e instanceof DoApiError && e.ambiguous) || attempt >= 3) throw e
    }
  }
}

/** Creates a tag; an existing tag is success (the API answers 201 or 422 for it). */
export async function ensureTag(client: DoClient, tag: string, signal?: AbortSignal): Promise<void> {
  try {
    await client.request({method: 'POST', path: '/v2/tags', body: {name: tag}, retrySafe: true, signal})
  } catch (e) {
    if (!(e instanceof DoApiError && e.status === 422)) throw e
  }
}

/**
 * Deletes the cluster's firewall, SSH key and tag once no droplet carries the cluster tag.
 * Idempotent: what is already gone is skipped. Resolves with how many droplets still carry the tag
 * (0 when the resources were removed).
 */
export async function removeClusterResources(client: DoClient, cluster: string, ctx: DriverContext): Promise<number> {
  const tag = clusterTag(cluster)
  const name = resourceName(cluster)
  const left = await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: tag}, ctx.signal)
  if (left.length > 0) {
    ctx.log(`${left.length} droplet${left.length === 1 ? '' : 's'} still tagged ${tag}: keeping the cluster's firewall and SSH key`)
    return left.length
  }
  const del = async (path: string) => {
    try {
      await client.request({method: 'DELETE', path, signal: ctx.signal})
      return true
    } catch (e) {
      if (isNotFound(e)) return false
      throw e
    }
  }
  for (const f of await client.listAll<DoFirewall>('/v2/firewalls', 'firewalls', {}, ctx.signal))
    if (f.name === name && (await del(`/v2/firewalls/${f.id}`))) await ctx.journal({kind: 'firewall', id: f.id, action: 'deleted'})
  for (const k of await client.listAll<DoSshKey>('/v2/account/keys', 'ssh_keys', {}, ctx.signal))
    if (k.name === name && (await del(`/v2/account/keys/${k.id}`))) await ctx.journal({kind: 'ssh-key', id: String(k.id), action: 'deleted'})
  await del(`/v2/tags/${tag}`)
  return 0
}

/** Any IPv4 or IPv6 address: the sources of a published port. */
export const ANYWHERE: readonly string[] = ['0.0.0.0/0', '::/0']

/** Ports Belt's own rules hold (SSH and the Docker API from the admin CIDR): never published or closed by `setPorts`. */
export const ADMIN_PORTS: ReadonlySet<number> = new Set([22, 2376])

const portString = (p: PortSpec): string => (p.endPort !== undefined && p.endPort !== p.port ? `${p.port}-${p.endPort}` : String(p.port))

/** The inbound rule that publishes `p` to any address. */
export const publishedRule = (p: PortSpec): Inbound => ({protocol: p.protocol, ports: portString(p), sources: {addresses: [...ANYWHERE]}})

/** A firewall's inbound rules as Belt reports them: the cluster's (by tag), SSH/Docker TLS (admin), and published ports. */
export function portRules(f: Pick<DoFirewall, 'inbound_rules'> | undefined, cluster: string): PortRule[] {
  const tag = clusterTag(cluster)
  return (f?.inbound_rules ?? []).map((r): PortRule => {
    const fromCluster = (r.sources.tags ?? []).includes(tag)
    const sources = [...(r.sources.addresses ?? []), ...(fromCluster ? ['cluster'] : []), ...(r.sources.tags ?? []).filter((t) => t !== tag).map((t) => `tag:${t}`)]
    const first = Number(r.ports.split('-')[0])
    const role: PortRule['role'] = fromCluster ? 'cluster' : r.protocol === 'tcp' && ADMIN_PORTS.has(first) && !r.ports.includes('-') ? 'admin' : 'published'
    return {protocol: r.protocol as PortRule['protocol'], ports: r.protocol === 'icmp' ? 'all' : r.ports === '0' ? 'all' : r.ports, sources, role}
  })
}

const sameRule = (a: {protocol: string; ports: string}, b: {protocol: string; ports: string}) => a.protocol === b.protocol && a.ports === b.ports
const isPublished = (r: Inbound) => [...ANYWHERE].every((x) => r.sources.addresses?.includes(x)) && (r.sources.addresses?.length ?? 0) === ANYWHERE.length && !r.sources.tags?.length && !r.sources.droplet_ids?.length

/**
 * Publishes and withdraws ports on the cluster's firewall: one `POST /v2/firewalls/{id}/rules` with
 * the rules it lacks, one `DELETE /v2/firewalls/{id}/rules` with the published rules to close (only
 * rules whose sources are exactly any address, so SSH from a wide admin CIDR is never taken for a
 * published port). Resolves with the firewall's rules after the change.
 */
export async function setFirewallPorts(client: DoClient, firewall: DoFirewall, cluster: string, change: PortChange, ctx: DriverContext): Promise<PortRule[]> {
  let inbound = [...(firewall.inbound_rules ?? [])] as Inbound[]
  const add = change.open.map(publishedRule).filter((w, i, all) => all.findIndex((x) => sameRule(x, w)) === i && !inbound.some((r) => isPublished(r) && sameRule(r, w)))
  const del = change.close.map(publishedRule).flatMap((w) => inbound.filter((r) => isPublished(r) && sameRule(r, w)))
  if (add.length > 0) {
    await client.request({method: 'POST', path: `/v2/firewalls/${firewall.id}/rules`, body: {inbound_rules: add}, retrySafe: true, signal: ctx.signal})
    inbound = [...inbound, ...add]
    ctx.log(`firewall ${firewall.name}: published ${add.map((r) => `${r.ports}/${r.protocol}`).join(', ')} to any address`)
  }
  if (del.length > 0) {
    try {
      await client.request({method: 'DELETE', path: `/v2/firewalls/${firewall.id}/rules`, body: {inbound_rules: del}, retrySafe: true, signal: ctx.signal})
    } catch (e) {
      if (!isNotFound(e)) throw e
    }
    inbound = inbound.filter((r) => !del.includes(r))
    ctx.log(`firewall ${firewall.name}: closed ${del.map((r) => `${r.ports}/${r.protocol}`).join(', ')}`)
  }
  return portRules({inbound_rules: inbound}, cluster)
}

/** The cluster's firewall, found by name; undefined when it has none. */
export async function findFirewall(client: DoClient, cluster: string, signal?: AbortSignal): Promise<DoFirewall | undefined> {
  const name = resourceName(cluster)
  return (await client.listAll<DoFirewall>('/v2/firewalls', 'firewalls', {}, signal)).find((f) => f.name === name)
}
