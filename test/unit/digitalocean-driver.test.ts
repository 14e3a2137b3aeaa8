/**
 * The DigitalOcean driver's decisions against a fake API that records any call it has no answer
 * for (each test asserts there was none): option parsing, firewall rules, state mapping, idempotent
 * removal, create reconciliation after a lost answer, cleanup of droplets that fail, power actions.
 */
import {afterEach, describe, expect, it} from 'vitest'
import type {ClusterSpec, DriverOptions, HostSpec, Machine} from '../../drivers/driver.js'
import {DoClient} from '../../drivers/digitalocean/client.js'
import {firewallRules, parseCidrs, sshFingerprint} from '../../drivers/digitalocean/cluster.js'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {createDigitalOceanDriver, type DigitalOceanDeps} from '../../drivers/digitalocean/index.js'
import {digitaloceanOptions} from '../../drivers/digitalocean/options.js'
import {parseSettings} from '../../drivers/digitalocean/settings.js'
import type {DoDroplet} from '../../drivers/digitalocean/types.js'
import {isUserError} from '../../src/errors.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINSGh8rAyVOpmXaEaYRn8AAf+/a2VtrboGaPMDYCQpwN test'
const FP = 'd4:3d:5d:4d:c4:26:ee:d7:70:ce:17:2e:8a:c2:f0:e1' // ssh-keygen -l -E md5
const TOKEN = 'dop_v1_unit_token'
const OPTIONS: DriverOptions = {'access-token': TOKEN, 'api-url': 'https://api.example.test', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', 'admin-cidr': '198.51.100.0/24'}
const CLUSTER: ClusterSpec = {name: 'c1', sshPublicKey: KEY}

type Handler = (req: {query: URLSearchParams; body: any; n: number}) => {status?: number; body?: unknown}

/** A fake API: routes `METHOD /path` to handlers; anything else is recorded as unexpected and answered 418. */
class FakeApi {
  readonly calls: string[] = []
  readonly bodies: {route: string; body: any}[] = []
  readonly unexpected: string[] = []
  private readonly routes = new Map<string, Handler>()
  private readonly counts = new Map<string, number>()

  on(route: string, h: Handler): this {
    this.routes.set(route, h)
    return this
  }

  readonly fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input))
    const route = `${init?.method ?? 'GET'} ${url.pathname}`
    this.calls.push(route)
    const body = init?.body ? JSON.parse(String(init.body)) : undefined
    this.bodies.push({route, body})
    const h = this.routes.get(route)
    if (!h) {
      this.unexpected.push(route)
      return new Response(JSON.stringify({id: 'teapot', message: 'unexpected call'}), {status: 418})
    }
    const n = (this.counts.get(route) ?? 0) + 1
    this.counts.set(route, n)
    const r = h({query: url.searchParams, body, n})
    const status = r.status ?? 200
    return new Response(status === 204 ? null : JSON.stringify(r.body ?? {}), {status, headers: {'content-type': 'application/json'}})
  }) as typeof fetch
}

let apis: FakeApi[] = []
afterEach(() => {
  for (const a of apis) expect(a.unexpected).toEqual([])
  apis = []
})

function setup(deps: DigitalOceanDeps = {}) {
  const api = new FakeApi()
  apis.push(api)
  const client = new DoClient({apiUrl: 'https://api.example.test', token: TOKEN, fetch: api.fetch, sleep: async () => undefined, random: () => 0.5})
  const driver = createDigitalOceanDriver({client: () => client, sleep: async () => undefined, pollIntervalMs: 1, probe: async () => true, ...deps})
  return {api, client, driver, ctx: memoryContext()}
}

function droplet(id: number, name: string, status: DoDroplet['status'] = 'active', ip = `198.51.100.${id % 250}`): DoDroplet {
  return {
    id,
    name,
    status,
    memory: 1024,
    vcpus: 1,
    disk: 25,
    locked: false,
    kernel: null,
    created_at: '2025-01-01T00:00:00Z',
    features: [],
    backup_ids: [],
    next_backup_window: null,
    snapshot_ids: [],
    image: {id: 1, slug: 'ubuntu-24-04-x64', name: 'u', type: 'base', distribution: 'Ubuntu', public: true, regions: ['nyc3'], created_at: '', min_disk_size: 7, size_gigabytes: 1, tags: [], status: 'available'},
    volume_ids: [],
    size: {slug: 's-1vcpu-1gb', memory: 1024, vcpus: 1, disk: 25, transfer: 1, price_monthly: 6, price_hourly: 0.009, regions: ['nyc3'], available: true, description: 'Basic'},
    size_slug: 's-1vcpu-1gb',
    networks: {
      v4:
        status === 'active'
          ? [
              {ip_address: ip, netmask: '255.255.255.0', gateway: '198.51.100.1', type: 'public'},
              {ip_address: `10.10.0.${id % 250}`, netmask: '255.255.0.0', gateway: '10.10.0.1', type: 'private'},
            ]
          : [],
      v6: [],
    },
    region: {slug: 'nyc3', name: 'New York 3', features: [], available: true, sizes: []},
    tags: ['belt', 'belt-cluster-c1'],
  }
}

/** Routes for the cluster's shared setup when the key and firewall already exist. */
const sharedExisting = (api: FakeApi) =>
  api
    .on('POST /v2/tags', () => ({status: 201, body: {tag: {name: 'belt-cluster-c1', resources: {count: 0, droplets: {count: 0}}}}}))
    .on(`GET /v2/account/keys/${FP}`, () => ({body: {ssh_key: {id: 5, fingerprint: FP, public_key: KEY, name: 'belt-c1'}}}))
    .on('GET /v2/firewalls', () => ({
      body: {firewalls: [{id: 'fw-1', name: 'belt-c1', tags: ['belt-cluster-c1'], inbound_rules: firewallRules('c1', ['198.51.100.0/24']).inbound_rules}], links: {}, meta: {total: 1}},
    }))

const specs = (names: string[]): HostSpec[] => names.map((name) => ({name, cluster: CLUSTER, options: OPTIONS}))

describe('digitalocean options and pure helpers', () => {
  it('declares every option the CLI exposes, the token secret and required', () => {
    expect(digitaloceanOptions.map((o) => o.name)).toEqual(['access-token', 'api-url', 'region', 'size', 'image', 'ssh-user', 'private-networking', 'vpc-uuid', 'admin-cidr', 'user-data', 'ipv6', 'monitoring', 'backups', 'ssh-key-fingerprint', 'tags', 'active-timeout'])
    expect(digitaloceanOptions[0]).toMatchObject({env: 'DIGITALOCEAN_ACCESS_TOKEN', required: true, secret: true})
    expect(digitaloceanOptions.find((o) => o.name === 'admin-cidr')!.description).toMatch(/0\.0\.0\.0\/0,::\/0 is ANYWHERE/)
  })

  it.each([
    [{'access-token': ''}, /missing --digitalocean-access-token/],
    [{'active-timeout': '0'}, /--digitalocean-active-timeout: '0' is not a whole number of seconds/],
    [{'active-timeout': '5m'}, /--digitalocean-active-timeout: '5m' is not a whole number of seconds/],
    [{'api-url': 'http://api.example.test'}, /would receive the token unencrypted/],
    [{'api-url': 'not a url'}, /is not a URL/],
    [{'admin-cidr': '10.0.0.0/33'}, /bad prefix length/],
    [{'admin-cidr': 'example.com'}, /not an IPv4\/IPv6 address/],
    [{tags: 'ok,not ok'}, /'not ok' is not a tag/],
    [{'vpc-uuid': 'vpc-1'}, /is not a UUID/],
    [{'private-networking': 'yes'}, /neither true nor false/],
    [{'ssh-user': 'Root User'}, /is not a user name/],
  ])('rejects %j as a usage error', (over, message) => {
    let err: unknown
    try {
      parseSettings({...OPTIONS, ...over})
    } catch (e) {
      err = e
    }
    expect(isUserError(err)).toBe(true)
    expect(String((err as Error).message)).toMatch(message)
    expect(String((err as Error).message)).not.toContain(TOKEN)
  })

  it('accepts loopback http for an emulator, and defaults', () => {
    const s = parseSettings({'access-token': 't', 'api-url': 'http://127.0.0.1:8600'})
    expect(s).toMatchObject({region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshUser: 'root', privateNetworking: true, adminCidrs: ['0.0.0.0/0', '::/0'], tags: []})
    expect(parseCidrs('203.0.113.7, 2001:db8::/32')).toEqual(['203.0.113.7', '2001:db8::/32'])
  })

  it("computes DigitalOcean's fingerprint (MD5 of the key blob) as ssh-keygen does", () => {
    expect(sshFingerprint(KEY)).toBe(FP)
  })

  it('firewall: swarm ports between the cluster droplets by tag, 22 and 2376 from the admin CIDR only, all outbound', () => {
    const {inbound_rules, outbound_rules} = firewallRules('prod', ['203.0.113.7/32'])
    const rows = inbound_rules.map((r) => `${r.protocol}/${r.ports} <- ${r.sources.tags?.join(',') ?? r.sources.addresses?.join(',')}`)
    expect(rows).toEqual([
      'tcp/22 <- 203.0.113.7/32',
      'tcp/2376 <- 203.0.113.7/32',
      'tcp/2377 <- belt-cluster-prod',
      'tcp/7946 <- belt-cluster-prod',
      'udp/7946 <- belt-cluster-prod',
      'udp/4789 <- belt-cluster-prod',
      'icmp/0 <- belt-cluster-prod',
    ])
    expect(outbound_rules.map((r) => `${r.protocol}/${r.ports}`)).toEqual(['tcp/0', 'udp/0', 'icmp/0'])
    for (const r of outbound_rules) expect(r.destinations.addresses).toEqual(['0.0.0.0/0', '::/0'])
  })
})

describe('digitalocean driver decisions', () => {
  it.each([
    ['new', 'starting'],
    ['active', 'running'],
    ['off', 'stopped'],
    ['archive', 'missing'],
  ] as const)("state maps droplet status '%s' to '%s'", async (status, state) => {
    const {api, driver, ctx} = setup()
    api.on('GET /v2/droplets/11', () => ({body: {droplet: droplet(11, 'a', status)}}))
    expect(await driver.state({id: '11', address: 'x', ssh: {user: 'root', port: 22}, data: {dropletId: 11}}, OPTIONS, ctx)).toBe(state)
  })

  it("state is 'missing' for 404 and remove of a missing droplet succeeds and journals it deleted", async () => {
    const {api, driver, ctx} = setup()
    api.on('GET /v2/droplets/12', () => ({status: 404, body: {id: 'not_found', message: 'The resource you were accessing could not be found.'}}))
    api.on('DELETE /v2/droplets/12', () => ({status: 404, body: {id: 'not_found', message: 'gone'}}))
    const m: Machine = {id: '12', address: 'x', ssh: {user: 'root', port: 22}, data: {dropletId: 12}}
    expect(await driver.state(m, OPTIONS, ctx)).toBe('missing')
    await driver.remove(m, OPTIONS, ctx)
    expect(ctx.entries).toEqual([{kind: 'droplet', id: '12', action: 'deleted'}])
  })

  it('a create whose answer was lost is reconciled by name under the cluster tag: no droplet is made twice', async () => {
    const {api, driver, ctx} = setup()
    sharedExisting(api)
    const made = [droplet(101, 'n1'), droplet(102, 'n2')]
    api.on('POST /v2/droplets', ({n, body}) => {
      if (n === 1) return {status: 500, body: {id: 'server_error', message: 'Server Error'}}
      expect(body).toMatchObject({name: 'n3'})
      made.push(droplet(103, 'n3', 'new'))
      return {status: 202, body: {droplet: made.at(-1), links: {actions: []}}}
    })
    api.on('GET /v2/droplets', ({query}) => {
      expect(query.get('tag_name')).toBe('belt-cluster-c1')
      return {body: {droplets: made.map((d) => (d.id === 103 ? droplet(103, 'n3') : d)), links: {}, meta: {total: made.length}}}
    })
    const results = await driver.createMany(specs(['n1', 'n2', 'n3']), ctx)
    expect(results.map((r) => (r instanceof Error ? r.message : r.id))).toEqual(['101', '102', '103'])
    const creates = api.bodies.filter((b) => b.route === 'POST /v2/droplets').map((b) => b.body.names ?? [b.body.name])
    expect(creates).toEqual([['n1', 'n2', 'n3'], ['n3']])
    expect(api.bodies.find((b) => b.route === 'POST /v2/droplets')!.body).toMatchObject({region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', ssh_keys: [5], tags: ['belt', 'belt-cluster-c1']})
    expect(ctx.entries.filter((e) => e.kind === 'droplet').map((e) => `${e.host}:${e.id}:${e.action}`)).toEqual(['n1:101:created', 'n2:102:created', 'n3:103:created'])
    const m = results[0] as Machine
    expect(m).toEqual({
      id: '101',
      address: '198.51.100.101',
      privateAddress: '10.10.0.101',
      ssh: {user: 'root', port: 22},
      data: {dropletId: 101, name: 'n1', cluster: 'c1', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', imageId: 1, createdAt: '2025-01-01T00:00:00Z'},
    })
  })

  it('a refused create (422) fails each of its hosts with a UserError and waits for nothing', async () => {
    const {api, driver, ctx} = setup()
    sharedExisting(api)
    api.on('POST /v2/droplets', () => ({status: 422, body: {id: 'unprocessable_entity', message: 'creating this/these droplet(s) will exceed your droplet limit'}}))
    const results = await driver.createMany(specs(['a1', 'a2']), ctx)
    for (const r of results) {
      expect(isUserError(r)).toBe(true)
      expect((r as Error).message).toMatch(/droplet limit/)
    }
    expect(api.calls.filter((c) => c === 'GET /v2/droplets')).toEqual([])
  })

  it('a droplet whose SSH never answers is deleted and its host fails; the others succeed', async () => {
    const {api, driver, ctx} = setup({probe: async (host) => host !== '198.51.100.2', sshTimeoutMs: 30})
    sharedExisting(api)
    api.on('POST /v2/droplets', () => ({status: 202, body: {droplets: [droplet(1, 'ok', 'new'), droplet(2, 'mute', 'new')], links: {actions: []}}}))
    api.on('GET /v2/droplets', () => ({body: {droplets: [droplet(1, 'ok'), droplet(2, 'mute')], links: {}, meta: {total: 2}}}))
    api.on('DELETE /v2/droplets/2', () => ({status: 204}))
    const [ok, mute] = await driver.createMany(specs(['ok', 'mute']), ctx)
    expect(ok).not.toBeInstanceOf(Error)
    expect(String(mute)).toMatch(/mute: 198\.51\.100\.2:22 did not accept SSH connections/)
    expect(ctx.entries.filter((e) => e.host === 'mute').map((e) => e.action)).toEqual(['created', 'deleted'])
  })

  it('uploads the key and creates the tag and firewall when missing (the key once, even under concurrency)', async () => {
    const {api, driver, ctx} = setup()
    let keyExists = false
    let firewall: unknown
    api
      .on('POST /v2/tags', () => ({status: 201, body: {tag: {name: 'belt-cluster-c1'}}}))
      .on(`GET /v2/account/keys/${FP}`, () => (keyExists ? {body: {ssh_key: {id: 9, fingerprint: FP, public_key: KEY, name: 'belt-c1'}}} : {status: 404, body: {id: 'not_found', message: 'nf'}}))
      .on('POST /v2/account/keys', ({body}) => {
        expect(body).toEqual({name: 'belt-c1', public_key: KEY})
        keyExists = true
        return {status: 201, body: {ssh_key: {id: 9, fingerprint: FP, public_key: KEY, name: 'belt-c1'}}}
      })
      .on('GET /v2/firewalls', () => ({body: {firewalls: firewall ? [firewall] : [], links: {}, meta: {total: firewall ? 1 : 0}}}))
      .on('POST /v2/firewalls', ({body}) => {
        expect(body.name).toBe('belt-c1')
        expect(body.tags).toEqual(['belt-cluster-c1'])
        firewall = {...body, id: 'fw-9'}
        return {status: 202, body: {firewall}}
      })
      .on('POST /v2/droplets', ({body}) => ({status: 202, body: {droplet: droplet(body.name === 'x1' ? 1 : 2, body.name, 'new'), links: {actions: []}}}))
      .on('GET /v2/droplets', () => ({body: {droplets: [droplet(1, 'x1'), droplet(2, 'x2')], links: {}, meta: {total: 2}}}))
    const ms = await Promise.all([driver.create(specs(['x1'])[0]!, ctx), driver.create(specs(['x2'])[0]!, ctx)])
    expect(ms.map((m) => m.id)).toEqual(['1', '2'])
    expect(api.calls.filter((c) => c === 'POST /v2/account/keys')).toHaveLength(1)
    expect(api.calls.filter((c) => c === 'POST /v2/firewalls')).toHaveLength(1)
    expect(ctx.entries.filter((e) => e.kind !== 'droplet')).toEqual([
      {kind: 'ssh-key', id: '9', action: 'created'},
      {kind: 'firewall', id: 'fw-9', action: 'created'},
    ])
  })

  it('stop of a droplet that is already off succeeds without waiting (422 then state check)', async () => {
    const {api, driver, ctx} = setup()
    api.on('POST /v2/droplets/21/actions', () => ({status: 422, body: {id: 'unprocessable_entity', message: 'Droplet is already powered off.'}}))
    api.on('GET /v2/droplets/21', () => ({body: {droplet: droplet(21, 'o', 'off')}}))
    await driver.stop({id: '21', address: 'x', ssh: {user: 'root', port: 22}, data: {dropletId: 21}}, OPTIONS, ctx)
    expect(api.calls).toEqual(['POST /v2/droplets/21/actions', 'GET /v2/droplets/21'])
  })

  it('start powers on, polls the action until completed, and returns the machine once SSH answers', async () => {
    const {api, driver, ctx} = setup()
    api.on('POST /v2/droplets/22/actions', ({body}) => {
      expect(body).toEqual({type: 'power_on'})
      return {status: 201, body: {action: {id: 7, status: 'in-progress', type: 'power_on'}}}
    })
    api.on('GET /v2/droplets/22/actions/7', ({n}) => ({body: {action: {id: 7, status: n < 3 ? 'in-progress' : 'completed', type: 'power_on'}}}))
    api.on('GET /v2/droplets/22', () => ({body: {droplet: droplet(22, 'p')}}))
    const m = await driver.start({id: '22', address: 'x', ssh: {user: 'root', port: 22}, data: {dropletId: 22, cluster: 'c1'}}, OPTIONS, ctx)
    expect(m.address).toBe('198.51.100.22')
    expect(api.calls.filter((c) => c.endsWith('/actions/7'))).toHaveLength(3)
  })

  it("tells a long rate-limit wait on the calling command's progress lines", async () => {
    const {api} = setup()
    // The client's clock is fake: its sleeps move it on, so the 10-minute wait takes no time.
    let now = Date.UTC(2026, 0, 1, 12, 0, 0)
    const client = new DoClient({apiUrl: 'https://api.example.test', token: TOKEN, fetch: api.fetch, now: () => now, sleep: async (ms) => void (now += ms), random: () => 0.5})
    const driver = createDigitalOceanDriver({client: () => client, sleep: async () => undefined, pollIntervalMs: 1, probe: async () => true})
    const lines: string[] = []
    const ctx = memoryContext((m) => lines.push(m))
    api.on('GET /v2/droplets/22', () => ({body: {droplet: droplet(22, 'p')}}))
    client.gate.pauseUntil(now + 600_000) // as after a 429 whose Retry-After is 10 min
    expect(await driver.state({id: '22', address: 'x', ssh: {user: 'root', port: 22}, data: {dropletId: 22, cluster: 'c1'}}, OPTIONS, ctx)).toBe('running')
    expect(lines).toEqual([expect.stringMatching(/^DigitalOcean API: rate limited \(429\); every request of this token waits 10 min, until 12:10:00 UTC$/)])
  })

  it('preflight turns 401 into a UserError naming the token flag, without the token', async () => {
    const {api, driver, ctx} = setup()
    api.on('GET /v2/account', () => ({status: 401, body: {id: 'Unauthorized', message: 'Unable to authenticate you'}}))
    const err = await driver.preflight(OPTIONS, ctx).catch((e: unknown) => e)
    expect(err).toMatchObject({code: 'E_DO_TOKEN', hint: expect.stringMatching(/--digitalocean-access-token/)})
    expect(JSON.stringify(err) + String(err)).not.toContain(TOKEN)
  })

  it('removeCluster keeps shared resources while a droplet has the tag, and deletes firewall, key and tag after', async () => {
    const {api, driver, ctx} = setup()
    let left = [droplet(1, 'z')]
    api
      .on('GET /v2/droplets', () => ({body: {droplets: left, links: {}, meta: {total: left.length}}}))
      .on('GET /v2/firewalls', () => ({body: {firewalls: [{id: 'fw-1', name: 'belt-c1'}, {id: 'fw-2', name: 'belt-c10'}], links: {}, meta: {total: 2}}}))
      .on('DELETE /v2/firewalls/fw-1', () => ({status: 204}))
      .on('GET /v2/account/keys', () => ({body: {ssh_keys: [{id: 5, name: 'belt-c1', fingerprint: FP, public_key: KEY}, {id: 6, name: 'mine', fingerprint: 'x', public_key: 'y'}], links: {}, meta: {total: 2}}}))
      .on('DELETE /v2/account/keys/5', () => ({status: 204}))
      .on('DELETE /v2/tags/belt-cluster-c1', () => ({status: 204}))
    await driver.removeCluster('c1', OPTIONS, ctx)
    expect(api.calls).toEqual(['GET /v2/droplets'])
    left = []
    await driver.removeCluster('c1', OPTIONS, ctx)
    expect(api.calls.slice(1)).toEqual(['GET /v2/droplets', 'GET /v2/firewalls', 'DELETE /v2/firewalls/fw-1', 'GET /v2/account/keys', 'DELETE /v2/account/keys/5', 'DELETE /v2/tags/belt-cluster-c1'])
    expect(ctx.entries).toEqual([
      {kind: 'firewall', id: 'fw-1', action: 'deleted'},
      {kind: 'ssh-key', id: '5', action: 'deleted'},
    ])
  })
})
