/**
 * The DigitalOcean driver: droplets tagged `belt` and `belt-cluster-<cluster>`, created up to 10 per
 * request ({@link DigitalOceanDriver.createMany}), waited for with one tag-filtered list per round,
 * behind the cluster's firewall. All HTTP goes through {@link DoClient}.
 */
import pLimit from 'p-limit'
import {ExitCode, UserError, environmentError, usageError} from '../../src/errors.js'
import type {ClusterSpec, Driver, DriverContext, DriverOptions, HostSpec, Machine, MachineState, PortChange, PortRule, ResourceId} from '../driver.js'
import {DoApiError, isNotFound, sharedClient, type DoClient} from './client.js'
import {BELT_TAG, clusterTag, ensureClusterResources, ensureFirewall, findFirewall, portRules, removeClusterResources, setFirewallPorts, type ClusterResources} from './cluster.js'
import {digitaloceanDescription, digitaloceanOptions} from './options.js'
import {realSleep, type Sleep} from './rate-gate.js'
import {imageRef, parseSettings, readUserData, type DoSettings} from './settings.js'
import {MULTI_CREATE_MAX, type DoAccount, type DoAction, type DoDroplet, type DoDropletCreate, type DoDropletStatus, type DoImage, type DoPowerActionType, type DoRegion, type DoSize} from './types.js'
import {waitForTcp, type TcpProbe} from './wait.js'
import {privateV4, publicV4, watcherFor} from './watcher.js'

/** What a DigitalOcean Machine keeps in `data`: no secret. */
export interface DoMachineData {
  dropletId: number
  name: string
  cluster: string
  region: string
  size: string
  image: string
  imageId: number
  createdAt: string
}

/** Knobs for tests and the rehearsal; the CLI uses the defaults. */
export interface DigitalOceanDeps {
  /** The API client for an URL and token (default: one shared client per URL and token in the process). */
  client?: (opts: {apiUrl: string; token: string}) => DoClient
  /** Shortest pause between list rounds while droplets boot (default 1 s; longer for many pages), and between action polls. */
  pollIntervalMs?: number
  /** Longest wait for a droplet to be active with a public IPv4 (default 5 min). */
  activeTimeoutMs?: number
  /** Longest wait for SSH (port 22) to accept once the droplet is active (default 3 min). */
  sshTimeoutMs?: number
  /** Longest wait for a power action to complete (default 5 min). */
  actionTimeoutMs?: number
  /** Create requests in flight at once within one createMany (default 3). */
  createRequests?: number
  /** SSH port probes in flight at once within one createMany (default 32). */
  sshProbes?: number
  probe?: TcpProbe
  sleep?: Sleep
}

const STATE: Record<DoDropletStatus, MachineState> = {new: 'starting', active: 'running', off: 'stopped', archive: 'missing'}

/** The tag that lists a machine's droplet: its cluster's, else every Belt droplet's. */
const tagOf = (m: Machine): string => {
  const cluster = (m.data as Partial<DoMachineData>).cluster
  return typeof cluster === 'string' && cluster ? clusterTag(cluster) : BELT_TAG
}

const dropletId = (m: Machine): number => {
  const id = Number((m.data as Partial<DoMachineData>).dropletId ?? m.id)
  if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`machine id '${m.id}' is not a droplet id`)
  return id
}

export class DigitalOceanDriver implements Driver {
  readonly name = 'digitalocean'
  readonly description = digitaloceanDescription
  readonly options = digitaloceanOptions
  private readonly deps: Required<Omit<DigitalOceanDeps, 'client' | 'probe'>> & Pick<DigitalOceanDeps, 'client' | 'probe'>

  constructor(deps: DigitalOceanDeps = {}) {
    this.deps = {
      pollIntervalMs: 1000,
      activeTimeoutMs: 300_000,
      sshTimeoutMs: 180_000,
      actionTimeoutMs: 300_000,
      createRequests: 3,
      sshProbes: 32,
      sleep: realSleep,
      ...deps,
    }
  }

  /** The token's client; its long rate-limit waits are told on `ctx`'s progress lines. */
  private client(s: DoSettings, ctx: DriverContext): DoClient {
    const c = this.deps.client ? this.deps.client({apiUrl: s.apiUrl, token: s.token}) : sharedClient({apiUrl: s.apiUrl, token: s.token})
    c.announce = (m) => ctx.log(m)
    return c
  }

  async preflight(options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = parseSettings(options)
    if (s.userDataPath) await readUserData(s.userDataPath)
    const client = this.client(s, ctx)
    const {account} = await client.get<{account: DoAccount}>('/v2/account', undefined, ctx.signal).catch((e) => {
      throw apiUserError(e, client)
    })
    if (account.status === 'locked') throw environmentError(`the DigitalOcean account is locked (${account.status_message || 'no reason given'})`, 'E_DO_ACCOUNT')
    const regions = await client.listAll<DoRegion>('/v2/regions', 'regions', {}, ctx.signal)
    const region = regions.find((r) => r.slug === s.region)
    if (!region || !region.available)
      throw usageError(`--digitalocean-region: ${s.region} is ${region ? 'not available to new droplets' : 'not a region'}`, 'E_DO_REGION', `choose one of ${regions.filter((r) => r.available).map((r) => r.slug).join(', ')}`)
    const sizes = await client.listAll<DoSize>('/v2/sizes', 'sizes', {}, ctx.signal)
    const size = sizes.find((x) => x.slug === s.size)
    if (!size) throw usageError(`--digitalocean-size: ${s.size} is not a droplet size`, 'E_DO_SIZE', `e.g. ${sizes.slice(0, 4).map((x) => x.slug).join(', ')}`)
    if (!size.available || !size.regions.includes(s.region) || (region.sizes.length > 0 && !region.sizes.includes(s.size)))
      throw usageError(`--digitalocean-size: ${s.size} is not available in ${s.region}`, 'E_DO_SIZE_REGION', `regions that offer it: ${size.regions.join(', ') || 'none'}`)
    let image: DoImage
    try {
      image = (await client.get<{image: DoImage}>(`/v2/images/${encodeURIComponent(s.image)}`, undefined, ctx.signal)).image
    } catch (e) {
      if (isNotFound(e)) throw usageError(`--digitalocean-image: ${s.image} is not an image`, 'E_DO_IMAGE', 'list distribution images with: doctl compute image list-distribution')
      throw apiUserError(e, client)
    }
    if (image.regions.length > 0 && !image.regions.includes(s.region))
      throw usageError(`--digitalocean-image: ${s.image} is not available in ${s.region}`, 'E_DO_IMAGE_REGION', `regions that have it: ${image.regions.join(', ')}`)
    if (image.status && image.status !== 'available') throw usageError(`--digitalocean-image: ${s.image} is ${image.status}`, 'E_DO_IMAGE')
    if (s.sshKeyFingerprint) {
      try {
        await client.get(`/v2/account/keys/${encodeURIComponent(s.sshKeyFingerprint)}`, undefined, ctx.signal)
      } catch (e) {
        if (isNotFound(e))
          throw usageError(`--digitalocean-ssh-key-fingerprint: no SSH key ${s.sshKeyFingerprint} in this account`, 'E_DO_SSH_KEY', 'list the account\'s keys with: doctl compute ssh-key list')
        throw apiUserError(e, client)
      }
    }
  }

  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    const [result] = await this.createBatch([spec], ctx, false)
    if (result instanceof Error) throw result
    return result!
  }

  /**
   * Creates several hosts of one cluster with the same options, up to 10 names per API request.
   * Settles every host: the result at index i is the Machine of `specs[i]` or the Error that host
   * met (its droplet removed, or left in the journal). Rejects only before any droplet exists
   * (bad options, shared setup failed), or when the specs mix clusters or options.
   */
  async createMany(specs: readonly HostSpec[], ctx: DriverContext): Promise<Array<Machine | Error>> {
    return this.createBatch(specs, ctx, true)
  }

  private async createBatch(specs: readonly HostSpec[], ctx: DriverContext, prefixLogs: boolean): Promise<Array<Machine | Error>> {
    if (specs.length === 0) return []
    const first = specs[0]!
    for (const sp of specs)
      if (sp.cluster.name !== first.cluster.name || sp.cluster.sshPublicKey !== first.cluster.sshPublicKey || JSON.stringify(sp.options) !== JSON.stringify(first.options))
        throw new Error('createMany: every spec must have the same cluster and options')
    const names = new Set(specs.map((sp) => sp.name))
    if (names.size !== specs.length) throw new Error('createMany: host names must be distinct')
    const s = parseSettings(first.options)
    const userData = s.userDataPath ? await readUserData(s.userDataPath) : undefined
    const client = this.client(s, ctx)
    const shared = await this.shared(client, first.cluster, s, ctx)
    // A batch's context is not scoped to one host: name the host in its lines and errors.
    const label = (name: string, msg: string) => (prefixLogs ? `${name}: ${msg}` : msg)

    const results: Array<Machine | Error> = new Array(specs.length)
    const createLimit = pLimit(this.deps.createRequests)
    const probeLimit = pLimit(this.deps.sshProbes)
    const watcher = watcherFor(client, clusterTag(first.cluster.name), {intervalMs: this.deps.pollIntervalMs, missingGraceMs: Math.max(60_000, 3 * this.deps.pollIntervalMs), sleep: this.deps.sleep})
    // Hosts an interrupted run left: their droplets are adopted (one list of the cluster for the
    // whole batch), and only the others are created.
    const adopted = await this.adoptLeftovers(client, specs, ctx)
    const index = new Map(specs.map((sp, i) => [sp.name, i]))
    await Promise.all(
      [...adopted].map(async ([name, d]) => {
        const spec = specs[index.get(name)!]!
        ctx.log(label(name, `adopting droplet ${d.id}, created by an interrupted run`))
        results[index.get(name)!] = await this.finish(client, spec, d, s, ctx, watcher, probeLimit, label)
      }),
    )
    const toCreate = specs.filter((sp) => !adopted.has(sp.name))
    const chunks: HostSpec[][] = []
    for (let i = 0; i < toCreate.length; i += MULTI_CREATE_MAX) chunks.push(toCreate.slice(i, i + MULTI_CREATE_MAX))

    // At most `createRequests` create requests in flight; each chunk's hosts are then waited for
    // outside that limit (one watcher list round serves them all), so booting never blocks creating.
    await Promise.all(
      chunks.map(async (chunk) => {
        const created = await createLimit(() => this.createChunk(client, chunk, s, shared, userData, ctx))
        await Promise.all(
          chunk.map(async (spec) => {
            const got = created.get(spec.name)
            results[index.get(spec.name)!] = got instanceof Error || got === undefined ? (got ?? new Error(label(spec.name, 'no droplet was created'))) : await this.finish(client, spec, got, s, ctx, watcher, probeLimit, label)
          }),
        )
      }),
    )
    return results
  }

  /** Shared setup once per cluster: under the cluster lock, and once per process. */
  private shared(client: DoClient, cluster: ClusterSpec, s: DoSettings, ctx: DriverContext): Promise<ClusterResources> {
    const key = `${client.origin}\0${cluster.name}\0${cluster.sshPublicKey}\0${s.adminCidrs.join(',')}`
    let p = setupMemo.get(client)?.get(key)
    if (!p) {
      p = ctx.withLock(`cluster-${cluster.name}`, () => ensureClusterResources(client, cluster, s.adminCidrs, ctx))
      if (!setupMemo.has(client)) setupMemo.set(client, new Map())
      setupMemo.get(client)!.set(key, p)
      p.catch(() => setupMemo.get(client)?.delete(key))
    }
    return p
  }

  /**
   * One create request for up to 10 names. Every droplet id is journaled as soon as the answer
   * arrives. A request that got no answer (or a 5xx) may have created droplets: the cluster's
   * droplets are listed and those with the requested names are taken as created (names are unique
   * in a Belt store), and only the names not found are requested again. So a retry never creates a
   * droplet twice.
   */
  private async createChunk(client: DoClient, chunk: readonly HostSpec[], s: DoSettings, shared: ClusterResources, userData: string | undefined, ctx: DriverContext): Promise<Map<string, DoDroplet | Error>> {
    const out = new Map<string, DoDroplet | Error>()
    const cluster = chunk[0]!.cluster.name
    const adopt = async (d: DoDroplet) => {
      out.set(d.name, d)
      await ctx.journal({kind: 'droplet', id: String(d.id), host: d.name, action: 'created'})
    }
    let pending = chunk.map((sp) => sp.name)
    for (let attempt = 0; pending.length > 0; attempt++) {
      const body: DoDropletCreate = {
        ...(pending.length === 1 ? {name: pending[0]} : {names: pending}),
        region: s.region,
        size: s.size,
        image: imageRef(s.image),
        ssh_keys: [shared.sshKeyId, ...(s.sshKeyFingerprint ? [/^\d+$/.test(s.sshKeyFingerprint) ? Number(s.sshKeyFingerprint) : s.sshKeyFingerprint] : [])],
        tags: [...new Set([BELT_TAG, clusterTag(cluster), ...s.tags])],
        ...(userData !== undefined ? {user_data: userData} : {}),
        ...(s.vpcUuid ? {vpc_uuid: s.vpcUuid} : {}),
        ipv6: s.ipv6,
        monitoring: s.monitoring,
        ...(s.backups ? {backups: true} : {}),
      }
      try {
        const {body: res} = await client.request<{droplet?: DoDroplet; droplets?: DoDroplet[]}>({method: 'POST', path: '/v2/droplets', body, signal: ctx.signal, letFinish: true})
        // Journaled side by side (each host's record is its own file): ten in a row cost ten fsync rounds.
        await Promise.all((res.droplets ?? (res.droplet ? [res.droplet] : [])).map(adopt))
        const missing = pending.filter((n) => !out.has(n))
        for (const n of missing) out.set(n, new Error(`the create request was accepted but returned no droplet named ${n}`))
        pending = []
      } catch (e) {
        if (e instanceof DoApiError && e.ambiguous && attempt < 3) {
          const listed = await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: clusterTag(cluster)}, ctx.signal).catch(() => undefined)
          if (listed) {
            const newest = new Map<string, DoDroplet>()
            for (const d of listed) if (pending.includes(d.name) && (!newest.has(d.name) || newest.get(d.name)!.id < d.id)) newest.set(d.name, d)
            for (const d of newest.values()) await adopt(d)
            pending = pending.filter((n) => !out.has(n))
            ctx.log(`create request failed (${e.message}); ${newest.size} droplet(s) had been created anyway, requesting ${pending.length} again`)
            continue
          }
        }
        const err = e instanceof DoApiError && e.status === 422 ? new UserError(`DigitalOcean refused the droplets: ${e.message}`, {code: 'E_DO_REFUSED', exit: ExitCode.environment, cause: e}) : e
        for (const n of pending) out.set(n, err instanceof Error ? err : new Error(String(err)))
        pending = []
      }
    }
    return out
  }

  /** Waits for one droplet to be active and SSH to accept; on failure deletes it and returns the Error. */
  private async finish(
    client: DoClient,
    spec: HostSpec,
    created: DoDroplet,
    s: DoSettings,
    ctx: DriverContext,
    watcher: ReturnType<typeof watcherFor>,
    probeLimit: ReturnType<typeof pLimit>,
    label: (name: string, msg: string) => string,
  ): Promise<Machine | Error> {
    const log = (name: string, msg: string) => ctx.log(label(name, msg))
    try {
      const d = await watcher.wait(created.id, s.activeTimeoutMs ?? this.deps.activeTimeoutMs, ctx.signal)
      const machine = this.machineOf(d, spec.cluster.name, s)
      log(spec.name, `droplet ${d.id} active at ${machine.address}, waiting for SSH`)
      await probeLimit(() => waitForTcp(machine.address, 22, {timeoutMs: this.deps.sshTimeoutMs, sleep: this.deps.sleep, probe: this.deps.probe, signal: ctx.signal}))
      return machine
    } catch (e) {
      if (ctx.signal?.aborted) {
        // Interrupted: the droplet stays, journaled; the next create of this host adopts it.
        log(spec.name, `droplet ${created.id} left for the next run to adopt (interrupted)`)
        return new Error(label(spec.name, 'interrupted while the droplet was starting'), {cause: ctx.signal.reason})
      }
      const reason = e instanceof Error ? e.message : String(e)
      try {
        await this.deleteDroplet(client, created.id, spec.name, ctx)
        log(spec.name, `removed droplet ${created.id} after: ${reason}`)
      } catch (e2) {
        log(spec.name, `could not remove droplet ${created.id} (${(e2 as Error).message}); its id is in the journal`)
      }
      return new Error(label(spec.name, reason), {cause: e})
    }
  }

  /**
   * The droplets that interrupted creates left for these hosts (`spec.leftovers`), found with one
   * list of the cluster's tag: by the journaled id, else by name. Newest first when a name has
   * several; the others are deleted, so a host never has two droplets.
   */
  private async adoptLeftovers(client: DoClient, specs: readonly HostSpec[], ctx: DriverContext): Promise<Map<string, DoDroplet>> {
    const out = new Map<string, DoDroplet>()
    const resuming = specs.filter((sp) => sp.leftovers !== undefined)
    if (resuming.length === 0) return out
    const listed = await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: clusterTag(specs[0]!.cluster.name)}, ctx.signal)
    for (const sp of resuming) {
      const ids = new Set(sp.leftovers!.filter((r) => r.kind === 'droplet').map((r) => r.id))
      const mine = listed.filter((d) => ids.has(String(d.id)) || d.name === sp.name).sort((a, b) => b.id - a.id)
      const [keep, ...extra] = mine
      for (const d of extra) await this.deleteDroplet(client, d.id, sp.name, ctx)
      if (!keep) continue
      if (!ids.has(String(keep.id))) await ctx.journal({kind: 'droplet', id: String(keep.id), host: sp.name, action: 'created'})
      out.set(sp.name, keep)
    }
    return out
  }

  /**
   * Deletes the droplets an interrupted create left for a host: the journaled ids; when none was
   * journaled (the answer to the create request was lost), the cluster's droplets named for it.
   */
  async removeLeftovers(host: {name: string; cluster: string}, leftovers: readonly ResourceId[], options: DriverOptions, ctx: DriverContext): Promise<void> {
    const client = this.client(parseSettings(options), ctx)
    let ids = leftovers.filter((r) => r.kind === 'droplet').map((r) => Number(r.id))
    if (ids.length === 0) {
      const listed = await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: clusterTag(host.cluster)}, ctx.signal)
      ids = listed.filter((d) => d.name === host.name).map((d) => d.id)
    }
    for (const id of ids) await this.deleteDroplet(client, id, host.name, ctx)
  }

  private machineOf(d: DoDroplet, cluster: string, s: DoSettings): Machine {
    const address = publicV4(d)
    if (!address) throw new Error(`droplet ${d.id} has no public IPv4 address`)
    const priv = s.privateNetworking ? privateV4(d) : undefined
    const data: DoMachineData = {
      dropletId: d.id,
      name: d.name,
      cluster,
      region: d.region.slug,
      size: d.size_slug,
      image: d.image.slug ?? String(d.image.id),
      imageId: d.image.id,
      createdAt: d.created_at,
    }
    return {id: String(d.id), address, ...(priv ? {privateAddress: priv} : {}), ssh: {user: s.sshUser, port: 22}, data: {...data}}
  }

  private async deleteDroplet(client: DoClient, id: number, host: string | undefined, ctx: DriverContext): Promise<void> {
    try {
      await client.request({method: 'DELETE', path: `/v2/droplets/${id}`, signal: ctx.signal})
    } catch (e) {
      if (!isNotFound(e)) throw e
    }
    await ctx.journal({kind: 'droplet', id: String(id), ...(host ? {host} : {}), action: 'deleted'})
  }

  async state(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<MachineState> {
    const s = parseSettings(options)
    const client = this.client(s, ctx)
    try {
      const {droplet} = await client.get<{droplet: DoDroplet}>(`/v2/droplets/${dropletId(machine)}`, undefined, ctx.signal)
      return STATE[droplet.status] ?? 'error'
    } catch (e) {
      if (isNotFound(e)) return 'missing'
      throw e
    }
  }

  async remove(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = parseSettings(options)
    await this.deleteDroplet(this.client(s, ctx), dropletId(machine), undefined, ctx)
  }

  /**
   * The states of many droplets with one paginated list of each cluster's tag (200 droplets per
   * request), never one GET per droplet. A droplet its cluster's list does not show is 'missing'.
   */
  async states(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<MachineState | Error>> {
    const client = this.client(parseSettings(options), ctx)
    const lists = new Map<string, Promise<Map<number, DoDroplet> | Error>>()
    const listOf = (m: Machine) => {
      const tag = tagOf(m)
      let p = lists.get(tag)
      if (!p) {
        p = client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: tag}, ctx.signal).then(
          (ds) => new Map(ds.map((d) => [d.id, d])),
          (e: unknown) => (apiUserError(e, client) as Error) ?? new Error(String(e)),
        )
        lists.set(tag, p)
      }
      return p
    }
    const out = await Promise.all(
      machines.map(async (m): Promise<MachineState | Error> => {
        const listed = await listOf(m)
        if (listed instanceof Error) return listed
        const d = listed.get(dropletId(m))
        return d ? (STATE[d.status] ?? 'error') : 'missing'
      }),
    )
    const failed = out.filter((x) => x instanceof Error)
    if (machines.length > 0 && failed.length === machines.length) throw failed[0]
    return out
  }

  /**
   * Removes many droplets: per cluster, one list of its tag; when every droplet carrying the tag is
   * to go, ONE `DELETE /v2/droplets?tag_name=` removes them all, otherwise one DELETE per droplet
   * still listed (paced by the token's budget). Then the tag is listed again until none of them is
   * there (bounded): only then is a droplet reported gone.
   */
  async removeMany(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<Error | undefined>> {
    const client = this.client(parseSettings(options), ctx)
    const results: Array<Error | undefined> = machines.map(() => undefined)
    const byTag = new Map<string, number[]>()
    machines.forEach((m, i) => byTag.set(tagOf(m), [...(byTag.get(tagOf(m)) ?? []), i]))
    await Promise.all(
      [...byTag].map(async ([tag, idx]) => {
        const fail = (i: number, e: unknown) => (results[i] ??= e instanceof Error ? e : new Error(String(e)))
        const ids = new Map(idx.map((i) => [dropletId(machines[i]!), i]))
        let listed: DoDroplet[]
        try {
          listed = await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: tag}, ctx.signal)
        } catch (e) {
          for (const i of idx) fail(i, apiUserError(e, client))
          return
        }
        const present = listed.filter((d) => ids.has(d.id))
        if (present.length === 0) return
        if (present.length === listed.length) {
          ctx.log(`deleting the ${present.length} droplet${present.length === 1 ? '' : 's'} tagged ${tag} with one request`)
          try {
            await client.request({method: 'DELETE', path: '/v2/droplets', query: {tag_name: tag}, signal: ctx.signal})
          } catch (e) {
            if (!isNotFound(e)) for (const d of present) fail(ids.get(d.id)!, apiUserError(e, client))
          }
        } else {
          await Promise.all(
            present.map((d) =>
              client.request({method: 'DELETE', path: `/v2/droplets/${d.id}`, signal: ctx.signal}).catch((e: unknown) => {
                if (!isNotFound(e)) fail(ids.get(d.id)!, apiUserError(e, client))
              }),
            ),
          )
        }
        // Confirmed gone only when the tag's list no longer shows them.
        let waiting = present.filter((d) => results[ids.get(d.id)!] === undefined).map((d) => d.id)
        const deadline = Date.now() + this.deps.actionTimeoutMs
        while (waiting.length > 0) {
          let still: Set<number>
          try {
            still = new Set((await client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: tag}, ctx.signal)).map((d) => d.id))
          } catch (e) {
            for (const id of waiting) fail(ids.get(id)!, new Error(`droplet ${id}: the delete was sent but could not be confirmed (${(apiUserError(e, client) as Error).message})`))
            return
          }
          await Promise.all(waiting.filter((x) => !still.has(x)).map((id) => ctx.journal({kind: 'droplet', id: String(id), action: 'deleted'})))
          waiting = waiting.filter((x) => still.has(x))
          if (waiting.length === 0) break
          if (Date.now() > deadline) {
            for (const id of waiting) fail(ids.get(id)!, new Error(`droplet ${id} was still listed ${Math.round(this.deps.actionTimeoutMs / 1000)} s after its delete`))
            return
          }
          await this.deps.sleep(Math.min(this.deps.pollIntervalMs, 2000), ctx.signal).catch((e: unknown) => {
            for (const id of waiting) fail(ids.get(id)!, e)
            waiting = []
          })
        }
      }),
    )
    return results
  }

  async start(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    return this.powerAndWait(machine, options, ctx, 'power_on')
  }

  async restart(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    return this.powerAndWait(machine, options, ctx, 'reboot')
  }

  async stop(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = parseSettings(options)
    try {
      await this.act(this.client(s, ctx), dropletId(machine), 'shutdown', ctx)
    } catch (e) {
      // A guest that ignores the ACPI shutdown leaves the action errored: cut the power instead.
      if (e instanceof DoApiError) throw e
      ctx.log(`graceful shutdown failed (${(e as Error).message}); powering off`)
      await this.act(this.client(s, ctx), dropletId(machine), 'power_off', ctx)
    }
  }

  async kill(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = parseSettings(options)
    await this.act(this.client(s, ctx), dropletId(machine), 'power_off', ctx)
  }

  private async powerAndWait(machine: Machine, options: DriverOptions, ctx: DriverContext, type: 'power_on' | 'reboot'): Promise<Machine> {
    const s = parseSettings(options)
    const client = this.client(s, ctx)
    const id = dropletId(machine)
    await this.act(client, id, type, ctx)
    const {droplet} = await client.get<{droplet: DoDroplet}>(`/v2/droplets/${id}`, undefined, ctx.signal)
    const cluster = String((machine.data as Partial<DoMachineData>).cluster ?? '')
    const m = this.machineOf(droplet, cluster, s)
    await waitForTcp(m.address, 22, {timeoutMs: this.deps.sshTimeoutMs, sleep: this.deps.sleep, probe: this.deps.probe, signal: ctx.signal})
    return m
  }

  /**
   * Runs a droplet action and waits (bounded) until it completed. The action is in the target
   * state's terms (on/off), so a repeat after a lost answer is harmless: power_on/off/shutdown are
   * retried on transient failures, reboot is not. A 422 for a droplet already in the target state
   * is success.
   */
  private async act(client: DoClient, id: number, type: DoPowerActionType, ctx: DriverContext): Promise<void> {
    const target: DoDropletStatus = type === 'power_on' || type === 'reboot' ? 'active' : 'off'
    let action: DoAction
    try {
      action = (await client.request<{action: DoAction}>({method: 'POST', path: `/v2/droplets/${id}/actions`, body: {type}, retrySafe: type !== 'reboot', signal: ctx.signal})).body.action
    } catch (e) {
      if (e instanceof DoApiError && e.status === 422 && type !== 'reboot') {
        const {droplet} = await client.get<{droplet: DoDroplet}>(`/v2/droplets/${id}`, undefined, ctx.signal)
        if (droplet.status === target) return
      }
      throw e
    }
    const deadline = Date.now() + this.deps.actionTimeoutMs
    while (action.status === 'in-progress') {
      if (Date.now() > deadline) throw new Error(`${type} of droplet ${id} did not complete within ${Math.round(this.deps.actionTimeoutMs / 1000)} s`)
      await this.deps.sleep(Math.min(this.deps.pollIntervalMs, 2000), ctx.signal)
      action = (await client.get<{action: DoAction}>(`/v2/droplets/${id}/actions/${action.id}`, undefined, ctx.signal)).action
    }
    if (action.status === 'errored') throw new Error(`${type} of droplet ${id} failed (action ${action.id} errored)`)
  }

  /** The inbound rules of the cluster's firewall `belt-<cluster>` (none when it has no firewall yet). */
  async listPorts(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]> {
    const client = this.client(parseSettings(options), ctx)
    try {
      return portRules(await findFirewall(client, cluster, ctx.signal), cluster)
    } catch (e) {
      throw apiUserError(e, client)
    }
  }

  /**
   * Publishes and closes ports on the cluster's firewall (created first, with Belt's own rules, when
   * the cluster has none yet), under the cluster lock: the firewall applies by tag to every droplet
   * of the cluster, those created later included.
   */
  async setPorts(cluster: string, change: PortChange, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]> {
    const s = parseSettings(options)
    const client = this.client(s, ctx)
    try {
      return await ctx.withLock(`cluster-${cluster}`, async () => setFirewallPorts(client, await ensureFirewall(client, cluster, s.adminCidrs, ctx), cluster, change, ctx))
    } catch (e) {
      throw apiUserError(e, client)
    }
  }

  async removeCluster(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = parseSettings(options)
    const client = this.client(s, ctx)
    await ctx.withLock(`cluster-${cluster}`, async () => {
      setupMemo.get(client)?.clear()
      await removeClusterResources(client, cluster, ctx)
    })
  }
}

/** Shared setup promises per client: a batch of 300 creates does the setup requests once. */
const setupMemo = new WeakMap<DoClient, Map<string, Promise<ClusterResources>>>()

/** An API failure the operator can act on, as a UserError; anything else unchanged. */
function apiUserError(e: unknown, client: DoClient): unknown {
  if (!(e instanceof DoApiError)) return e
  if (e.status === 401)
    return environmentError('DigitalOcean rejected the access token (401 Unable to authenticate you)', 'E_DO_TOKEN', 'check --digitalocean-access-token or DIGITALOCEAN_ACCESS_TOKEN: it must be a current token with read and write scope', e)
  if (e.status === 403) return environmentError(`the access token may not do this (${e.message})`, 'E_DO_SCOPE', 'give the token read and write scope', e)
  if (e.status === 0) return environmentError(`cannot reach the DigitalOcean API at ${client.origin} (${e.message})`, 'E_DO_UNREACHABLE', 'check the network or --digitalocean-api-url', e)
  return e
}

export function createDigitalOceanDriver(deps?: DigitalOceanDeps): DigitalOceanDriver {
  return new DigitalOceanDriver(deps)
}
