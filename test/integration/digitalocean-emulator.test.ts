/**
 * The DigitalOcean driver against the emulator (in-process, 127.0.0.1, simulated backing hosts with
 * a real listener on port 22 of a loopback address). Every request the driver sends and every
 * response the emulator returns is checked against the published OpenAPI document by a validator
 * library (openapi-backend: routing, parameters, bodies and headers through ajv).
 */
import {generateKeyPairSync} from 'node:crypto'
import path from 'node:path'
import type {OpenAPIBackend} from 'openapi-backend'
import {loadDoSpec, specViolations} from '../helpers/do-spec.js'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {ClusterSpec, DriverOptions, HostSpec, Machine} from '../../drivers/driver.js'
import {DoClient} from '../../drivers/digitalocean/client.js'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle, type EmulatorOptions, type Exchange} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {createDigitalOceanDriver, type DigitalOceanDeps} from '../../drivers/digitalocean/index.js'
import {describeDriverConformance} from '../../drivers/testing/conformance.js'
import {isUserError} from '../../src/errors.js'

const TOKEN = 'dop_v1_emulator_token_for_tests_0123456789'
const REVOKED = 'dop_v1_revoked_token'

/** An OpenSSH one-line ed25519 public key. */
function sshPublicKey(comment: string): string {
  const {publicKey} = generateKeyPairSync('ed25519')
  const raw = publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(b.length)
    return Buffer.concat([len, b])
  }
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`
}

// ---- the spec validator ----------------------------------------------------------------------

type Api = OpenAPIBackend
let api: Api
const exchanges: Exchange[] = []

const loadValidator = loadDoSpec

const violations = (ex: Exchange) => specViolations(api, ex)

// ---- emulators -------------------------------------------------------------------------------

const emulators: EmulatorHandle[] = []
const fast = {perHour: 1_000_000, perMinute: 100_000}

async function emulator(opts: Partial<EmulatorOptions> = {}): Promise<EmulatorHandle> {
  const e = await startEmulator({
    backing: createSimulatedBacking({octet: 78}),
    backingContext: memoryContext(),
    bootDelayMs: 150,
    actionDelayMs: 50,
    rateLimit: fast,
    rejectTokens: [REVOKED],
    onExchange: (ex) => exchanges.push(ex),
    ...opts,
  })
  emulators.push(e)
  return e
}

/** Options for the driver pointed at `e`. */
const optionsFor = (e: EmulatorHandle, extra: Record<string, string> = {}): DriverOptions => ({
  'access-token': TOKEN,
  'api-url': e.url,
  region: 'nyc3',
  size: 's-1vcpu-1gb',
  image: 'ubuntu-24-04-x64',
  'ssh-user': 'root',
  'private-networking': 'true',
  'admin-cidr': '203.0.113.7/32',
  ...extra,
})

/** A driver with short polls; its client paces at `perMinute` (the emulators here allow plenty). */
function driverFor(clients: Map<string, DoClient>, deps: DigitalOceanDeps = {}, perMinute = 100_000) {
  return createDigitalOceanDriver({
    pollIntervalMs: 100,
    activeTimeoutMs: 20_000,
    sshTimeoutMs: 10_000,
    actionTimeoutMs: 10_000,
    client: ({apiUrl, token}) => {
      let c = clients.get(apiUrl + token)
      if (!c) clients.set(apiUrl + token, (c = new DoClient({apiUrl, token, perMinute, timeoutMs: 10_000})))
      return c
    },
    ...deps,
  })
}

const specs = (cluster: ClusterSpec, options: DriverOptions, names: string[]): HostSpec[] => names.map((name) => ({name, cluster, options}))
const countOf = (from: number, method: string, p: string | RegExp) =>
  exchanges.slice(from).filter((x) => x.method === method && (typeof p === 'string' ? x.path === p : p.test(x.path))).length

beforeAll(async () => {
  api = await loadValidator()
})

afterAll(async () => {
  for (const e of emulators) await e.close()
})

// ---- the conformance suite -------------------------------------------------------------------

const conformance = {
  emulator: undefined as EmulatorHandle | undefined,
  options: {} as Record<string, string | undefined>,
  clients: new Map<string, DoClient>(),
}
const conformanceCluster: ClusterSpec = {name: 'conf', sshPublicKey: sshPublicKey('belt-conf')}

beforeAll(async () => {
  conformance.emulator = await emulator()
  Object.assign(conformance.options, optionsFor(conformance.emulator))
})

describeDriverConformance({
  name: 'digitalocean (emulator, simulated hosts)',
  makeDriver: () => driverFor(conformance.clients),
  options: conformance.options,
  context: memoryContext(),
  cluster: conformanceCluster,
  hostNames: ['conf-a', 'conf-b'],
  listResources: async () => {
    const e = conformance.emulator!
    return [...e.droplets().map((d) => `droplet:${d.name}`), ...e.firewalls().map((f) => `firewall:${f.name}`), ...e.sshKeys().map((k) => `ssh-key:${k.name}`)].sort()
  },
  missingMachine: (): Machine => ({id: '999999', address: '127.0.0.9', ssh: {user: 'root', port: 22}, data: {dropletId: 999999}}),
  secrets: [TOKEN],
})

// ---- DigitalOcean specifics ------------------------------------------------------------------

describe('digitalocean driver against the emulator', () => {
  it('multi-create of 25 names is 3 create requests; key and firewall set up once; ids journaled at once', async () => {
    const e = await emulator()
    const clients = new Map<string, DoClient>()
    const d = driverFor(clients)
    const ctx = memoryContext()
    const cluster: ClusterSpec = {name: 'multi', sshPublicKey: sshPublicKey('belt-multi')}
    const options = optionsFor(e)
    const from = exchanges.length
    const names = Array.from({length: 25}, (_, i) => `multi-${i + 1}`)
    const results = await d.createMany(specs(cluster, options, names), ctx)
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    const machines = results as Machine[]
    expect(new Set(machines.map((m) => m.address)).size).toBe(25)
    expect(machines.map((m) => m.data.name)).toEqual(names)
    expect(countOf(from, 'POST', '/v2/droplets')).toBe(3)
    expect(exchanges.slice(from).filter((x) => x.method === 'POST' && x.path === '/v2/droplets').map((x) => (x.body as {names: string[]}).names.length)).toEqual(expect.arrayContaining([10, 10, 5]))
    expect(countOf(from, 'POST', '/v2/account/keys')).toBe(1)
    expect(countOf(from, 'POST', '/v2/firewalls')).toBe(1)
    // Polling is by tag-filtered list, never one GET per droplet.
    expect(countOf(from, 'GET', /^\/v2\/droplets\/\d+$/)).toBe(0)
    expect(exchanges.slice(from).some((x) => x.method === 'GET' && x.path === '/v2/droplets' && x.query.tag_name === 'belt-cluster-multi')).toBe(true)
    const journaled = ctx.entries.filter((j) => j.kind === 'droplet' && j.action === 'created')
    expect(journaled.map((j) => j.host).sort()).toEqual([...names].sort())
    expect(new Set(journaled.map((j) => j.id))).toEqual(new Set(machines.map((m) => m.id)))
    for (const dr of e.droplets()) expect(dr.tags).toEqual(expect.arrayContaining(['belt', 'belt-cluster-multi']))
    const fw = e.firewalls().find((f) => f.name === 'belt-multi')!
    expect(fw.tags).toEqual(['belt-cluster-multi'])
    expect(fw.inbound_rules.filter((r) => r.sources.addresses?.includes('203.0.113.7/32')).map((r) => r.ports).sort()).toEqual(['22', '2376'])
    expect(fw.inbound_rules.filter((r) => r.sources.tags?.includes('belt-cluster-multi')).map((r) => `${r.ports}/${r.protocol}`).sort()).toEqual(['0/icmp', '2377/tcp', '4789/udp', '7946/tcp', '7946/udp'])

    // A fresh client (another process) reuses the key by fingerprint and the firewall by name.
    const from2 = exchanges.length
    const other = driverFor(new Map())
    const [extra] = await other.createMany(specs(cluster, options, ['multi-26']), ctx)
    expect(extra).not.toBeInstanceOf(Error)
    expect(countOf(from2, 'POST', '/v2/account/keys')).toBe(0)
    expect(countOf(from2, 'POST', '/v2/firewalls')).toBe(0)
    expect(exchanges.slice(from2).some((x) => x.method === 'GET' && x.path.startsWith('/v2/account/keys/') && x.status === 200)).toBe(true)

    for (const m of [...machines, extra as Machine]) await d.remove(m, options, ctx)
    await d.removeCluster('multi', options, ctx)
    expect(e.droplets()).toEqual([])
  })

  it('waits for and lists droplets past 200 (pagination), and removeCluster keeps shared resources while droplets remain', async () => {
    const e = await emulator({bootDelayMs: 100})
    const d = driverFor(new Map())
    const ctx = memoryContext()
    const cluster: ClusterSpec = {name: 'big', sshPublicKey: sshPublicKey('belt-big')}
    const options = optionsFor(e)
    const from = exchanges.length
    const results = await d.createMany(specs(cluster, options, Array.from({length: 230}, (_, i) => `big-${i + 1}`)), ctx)
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    expect(countOf(from, 'POST', '/v2/droplets')).toBe(23)
    // Droplets 201..230 are only on page 2: they were found there.
    const page2 = exchanges.slice(from).filter((x) => x.method === 'GET' && x.path === '/v2/droplets' && x.query.page === '2')
    expect(page2.length).toBeGreaterThan(0)
    expect((page2.at(-1)!.responseBody as {droplets: unknown[]}).droplets).toHaveLength(30)
    expect((page2.at(-1)!.responseBody as {meta: {total: number}}).meta.total).toBe(230)

    await d.removeCluster('big', options, ctx)
    expect(e.firewalls().map((f) => f.name)).toContain('belt-big')
    expect(e.sshKeys().map((k) => k.name)).toContain('belt-big')

    for (const m of results as Machine[]) await d.remove(m, options, ctx)
    await d.removeCluster('big', options, ctx)
    expect(e.firewalls().map((f) => f.name)).not.toContain('belt-big')
    expect(e.sshKeys().map((k) => k.name)).not.toContain('belt-big')
    expect(e.tags()).not.toContain('belt-cluster-big')
    // Idempotent.
    await d.removeCluster('big', options, ctx)
    expect(ctx.entries.filter((j) => j.kind === 'firewall').map((j) => j.action)).toEqual(['created', 'deleted'])
    expect(ctx.entries.filter((j) => j.kind === 'ssh-key').map((j) => j.action)).toEqual(['created', 'deleted'])
  })

  it('answers 429s by waiting and retrying: every create succeeds', async () => {
    const e = await emulator({faults: {rate429: 0.2}, seed: 7})
    const clients = new Map<string, DoClient>()
    const d = driverFor(clients)
    const ctx = memoryContext()
    const cluster: ClusterSpec = {name: 'limited', sshPublicKey: sshPublicKey('belt-limited')}
    const options = optionsFor(e)
    await d.preflight(options, ctx)
    const results = await d.createMany(specs(cluster, options, Array.from({length: 12}, (_, i) => `lim-${i + 1}`)), ctx)
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    for (const m of results as Machine[]) await d.remove(m, options, ctx)
    await d.removeCluster('limited', options, ctx)
    const stats = clients.get(e.url + TOKEN)!.stats
    expect(e.stats.faults429).toBeGreaterThan(0)
    expect(stats.rateLimited).toBe(e.stats.faults429)
    // Each 429 carried retry-after: 1, so the client held requests back.
    expect(stats.rateLimitWaitMs).toBeGreaterThanOrEqual(1000)
    expect(e.droplets()).toEqual([])
    expect(e.firewalls()).toEqual([])
  })

  it('survives 5xx answers, including lost answers to creates, without creating a droplet twice', async () => {
    // Random 5xx on every kind of request, plus scripted ones where they hurt most: the answers to
    // the first two create requests are lost after the droplets were made, and the first firewall
    // create fails after it was made.
    const script = new Map([['POST /v2/droplets', 2], ['POST /v2/firewalls', 1]])
    const inject = (method: string, p: string) => {
      const left = script.get(`${method} ${p}`) ?? 0
      if (left <= 0) return undefined
      script.set(`${method} ${p}`, left - 1)
      return 'after' as const
    }
    const e = await emulator({faults: {rate5xx: 0.2, inject}, seed: 3})
    const clients = new Map<string, DoClient>()
    const d = driverFor(clients)
    const ctx = memoryContext()
    const cluster: ClusterSpec = {name: 'flaky', sshPublicKey: sshPublicKey('belt-flaky')}
    const options = optionsFor(e)
    const names = Array.from({length: 30}, (_, i) => `flaky-${i + 1}`)
    const results = await d.createMany(specs(cluster, options, names), ctx)
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    expect(e.stats.faults5xx).toBeGreaterThan(0)
    expect(e.stats.lostAnswers).toBeGreaterThanOrEqual(3)
    expect(e.firewalls()).toHaveLength(1)
    const listed = e.droplets().map((x) => x.name)
    expect(listed.sort()).toEqual([...names].sort())
    expect(e.stats.dropletsCreated).toBe(30)
    for (const m of results as Machine[]) await d.remove(m, options, ctx)
    await d.removeCluster('flaky', options, ctx)
    expect(e.droplets()).toEqual([])
    expect(e.firewalls()).toEqual([])
    expect(e.sshKeys()).toEqual([])
  })

  it('a droplet that never becomes active fails its host after the bounded wait and is deleted', async () => {
    const e = await emulator({faults: {neverActive: 1}})
    const d = driverFor(new Map(), {activeTimeoutMs: 1500})
    const ctx = memoryContext()
    const cluster: ClusterSpec = {name: 'stuck', sshPublicKey: sshPublicKey('belt-stuck')}
    const options = optionsFor(e)
    const results = await d.createMany(specs(cluster, options, ['stuck-1', 'stuck-2']), ctx)
    expect(results.every((r) => r instanceof Error)).toBe(true)
    expect(String(results[0])).toMatch(/stuck-1: droplet \d+ was not active within \d+ s \(still 'new'/)
    expect(e.droplets()).toEqual([])
    const droplets = ctx.entries.filter((j) => j.kind === 'droplet')
    expect(droplets.filter((j) => j.action === 'created')).toHaveLength(2)
    expect(droplets.filter((j) => j.action === 'deleted')).toHaveLength(2)
    await expect(d.create({name: 'stuck-3', cluster, options}, ctx)).rejects.toThrow(/was not active/)
    await d.removeCluster('stuck', options, ctx)
    expect(e.firewalls()).toEqual([])
  })

  it('preflight: a rejected token is a UserError; region, size-in-region and image are checked; nothing is created', async () => {
    const e = await emulator()
    const d = driverFor(new Map())
    const ctx = memoryContext()
    const err = await d.preflight({...optionsFor(e), 'access-token': REVOKED}, ctx).catch((x: unknown) => x)
    expect(isUserError(err)).toBe(true)
    expect(err).toMatchObject({code: 'E_DO_TOKEN'})
    expect(String((err as Error).message)).not.toContain(REVOKED)
    await expect(d.preflight(optionsFor(e, {region: 'xyz1'}), ctx)).rejects.toMatchObject({code: 'E_DO_REGION'})
    await expect(d.preflight(optionsFor(e, {size: 's-1vcpu-512mb-10gb'}), ctx)).rejects.toMatchObject({code: 'E_DO_SIZE_REGION'})
    await expect(d.preflight(optionsFor(e, {size: 'huge'}), ctx)).rejects.toMatchObject({code: 'E_DO_SIZE'})
    await expect(d.preflight(optionsFor(e, {image: 'windows-11'}), ctx)).rejects.toMatchObject({code: 'E_DO_IMAGE'})
    await expect(d.preflight(optionsFor(e, {'admin-cidr': '10.0.0.0/33'}), ctx)).rejects.toMatchObject({code: 'E_DO_OPTION'})
    await expect(d.preflight(optionsFor(e, {'api-url': 'http://example.com'}), ctx)).rejects.toMatchObject({code: 'E_DO_OPTION'})
    await d.preflight(optionsFor(e), ctx)
    expect([e.droplets(), e.firewalls(), e.sshKeys()]).toEqual([[], [], []])
  })

  it('emulator: 401 without a valid token, 404 shape, 10-name maximum, duplicate key, key-listing limit, rate-limit headers', async () => {
    const e = await emulator({rateLimit: {perHour: 100, perMinute: 40}})
    const call = async (method: string, p: string, body?: unknown, token: string | null = TOKEN) => {
      const headers: Record<string, string> = {'content-type': 'application/json'}
      if (token !== null) headers.authorization = `Bearer ${token}`
      const r = await fetch(e.url + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)})
      const text = await r.text()
      return {status: r.status, headers: r.headers, body: text ? JSON.parse(text) : undefined}
    }
    expect(await call('GET', '/v2/account', undefined, null)).toMatchObject({status: 401, body: {id: 'Unauthorized', message: 'Unable to authenticate you'}})
    expect((await call('GET', '/v2/account', undefined, REVOKED)).status).toBe(401)
    const acct = await call('GET', '/v2/account')
    expect(acct.status).toBe(200)
    expect(acct.headers.get('ratelimit-limit')).toBe('100')
    expect(Number(acct.headers.get('ratelimit-remaining'))).toBe(99)
    expect(Number(acct.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 + 3500)
    const nf = await call('GET', '/v2/droplets/123')
    expect(nf).toMatchObject({status: 404, body: {id: 'not_found'}})
    expect(typeof nf.body.request_id).toBe('string')
    const names = Array.from({length: 11}, (_, i) => `x${i}`)
    expect(await call('POST', '/v2/droplets', {names, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64'})).toMatchObject({status: 422, body: {id: 'unprocessable_entity'}})
    // Create by name, find by tag and by id, delete by tag.
    const made = await call('POST', '/v2/droplets', {name: 'solo', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', tags: ['solo-tag']})
    expect(made).toMatchObject({status: 202, body: {droplet: {name: 'solo', status: 'new', tags: ['solo-tag']}, links: {actions: [{rel: 'create'}]}}})
    expect((await call('GET', '/v2/tags/solo-tag')).body).toMatchObject({tag: {name: 'solo-tag', resources: {count: 1}}})
    expect((await call('GET', `/v2/droplets/${made.body.droplet.id}`)).status).toBe(200)
    expect((await call('DELETE', '/v2/droplets?tag_name=solo-tag')).status).toBe(204)
    expect((await call('GET', `/v2/droplets/${made.body.droplet.id}`)).status).toBe(404)
    expect((await call('DELETE', '/v2/droplets?tag_name=no-such-tag')).status).toBe(404)
    const key = {name: 'k', public_key: sshPublicKey('dup')}
    expect((await call('POST', '/v2/account/keys', key)).status).toBe(201)
    expect(await call('POST', '/v2/account/keys', key)).toMatchObject({status: 422, body: {message: 'SSH Key is already in use on your account'}})
    expect((await call('POST', '/v2/account/keys', {name: 'bad', public_key: 'ssh-ed25519 AAAAnotakey'})).status).toBe(422)
    for (let i = 0; i < 10; i++) expect((await call('GET', '/v2/account/keys')).status).toBe(200)
    const limited = await call('GET', '/v2/account/keys')
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    // The burst limit (40/min here): the next requests get 429 with retry-after, remaining 0.
    let burst
    for (let i = 0; i < 50 && (burst = await call('GET', '/v2/regions')).status === 200; i++);
    expect(burst!.status).toBe(429)
    expect(burst!.headers.get('ratelimit-remaining')).toBe('0')
    expect(Number(burst!.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(burst!.body).toMatchObject({id: 'too_many_requests', message: 'API Rate limit exceeded.'})
    const keyId = (await fetch(e.url + '/v2/account/keys/' + e.sshKeys()[0]!.fingerprint, {headers: {authorization: `Bearer ${TOKEN}`}})).status
    expect(keyId).toBe(429)
  })

  it('every exchange conforms to the published OpenAPI document', () => {
    expect(exchanges.length).toBeGreaterThan(300)
    const bad = exchanges.flatMap(violations)
    expect(bad.slice(0, 20)).toEqual([])
    // The exchanges cover every operation the driver uses.
    const ops = new Set(exchanges.map((x) => api.matchOperation({method: x.method.toLowerCase(), path: x.path, query: x.query, headers: x.headers})?.operationId))
    for (const op of ['account_get', 'sshKeys_get', 'sshKeys_create', 'sshKeys_list', 'sshKeys_delete', 'regions_list', 'sizes_list', 'images_get', 'droplets_list', 'droplets_create', 'droplets_get', 'droplets_destroy', 'dropletActions_post', 'dropletActions_get', 'firewalls_list', 'firewalls_create', 'firewalls_delete', 'tags_create', 'tags_delete'])
      expect(ops, op).toContain(op)
    // The validator does reject what departs from the document (it is not vacuous).
    const got = exchanges.find((x) => x.method === 'GET' && /^\/v2\/droplets\/\d+$/.test(x.path) && x.status === 200)!
    const {networks: _drop, ...incomplete} = (got.responseBody as {droplet: Record<string, unknown>}).droplet
    expect(violations({...got, responseBody: {droplet: incomplete}})).not.toEqual([])
    expect(violations({...got, responseHeaders: {...got.responseHeaders, 'ratelimit-remaining': 'many'}})).not.toEqual([])
    expect(violations({...exchanges.find((x) => x.method === 'GET' && x.path === '/v2/droplets' && x.status === 200)!, query: {per_page: '500'}})).not.toEqual([])
    expect(violations({method: 'POST', path: '/v2/droplets', query: {}, headers: {}, body: {names: 'x'}, status: 202, responseHeaders: {}, responseBody: {}})).not.toEqual([])
  })
})
