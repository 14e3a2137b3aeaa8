/**
 * The DigitalOcean driver's bulk paths against the emulator (in-process, 127.0.0.1, simulated
 * backing hosts with a real listener on port 22 of a loopback address), through the real fetch
 * client: states of many droplets with one tag list per cluster, removal by tag in ONE request when
 * the whole cluster goes and by id otherwise, readiness polled by list. Every exchange is checked
 * against the published OpenAPI document (openapi-backend), like the rest of the emulator's API.
 */
import {generateKeyPairSync} from 'node:crypto'
import type {OpenAPIBackend} from 'openapi-backend'
import {loadDoSpec, specViolations} from '../helpers/do-spec.js'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {ClusterSpec, DriverOptions, HostSpec, Machine} from '../../drivers/driver.js'
import {DoClient} from '../../drivers/digitalocean/client.js'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle, type Exchange} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {createDigitalOceanDriver} from '../../drivers/digitalocean/index.js'

const TOKEN = 'dop_v1_emulator_token_for_bulk_tests_0123'

function sshPublicKey(comment: string): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`
}

let api: OpenAPIBackend
const exchanges: Exchange[] = []
let emu: EmulatorHandle
let options: DriverOptions
const clients = new Map<string, DoClient>()

const driver = () =>
  createDigitalOceanDriver({
    pollIntervalMs: 100,
    activeTimeoutMs: 20_000,
    sshTimeoutMs: 10_000,
    actionTimeoutMs: 10_000,
    client: ({apiUrl, token}) => {
      let c = clients.get(apiUrl + token)
      if (!c) clients.set(apiUrl + token, (c = new DoClient({apiUrl, token, perMinute: 100_000, timeoutMs: 10_000})))
      return c
    },
  })
const specs = (cluster: ClusterSpec, names: string[]): HostSpec[] => names.map((name) => ({name, cluster, options}))
const count = (from: number, method: string, p: string | RegExp, q?: (x: Exchange) => boolean) =>
  exchanges.slice(from).filter((x) => x.method === method && (typeof p === 'string' ? x.path === p : p.test(x.path)) && (!q || q(x))).length

beforeAll(async () => {
  api = await loadDoSpec()
  emu = await startEmulator({
    backing: createSimulatedBacking({octet: 83}),
    backingContext: memoryContext(),
    bootDelayMs: 100,
    actionDelayMs: 20,
    rateLimit: {perHour: 1_000_000, perMinute: 100_000},
    onExchange: (ex) => exchanges.push(ex),
  })
  options = {'access-token': TOKEN, 'api-url': emu.url, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', 'ssh-user': 'root', 'admin-cidr': '203.0.113.7/32'}
})

afterAll(async () => {
  await emu?.close()
})

describe('digitalocean bulk paths against the emulator', () => {
  it('creates 230 hosts polled by list only; states() reads them with one tag list per cluster (its pages), no GET per droplet', async () => {
    const d = driver()
    const big: ClusterSpec = {name: 'bulk-big', sshPublicKey: sshPublicKey('belt-bulk-big')}
    const small: ClusterSpec = {name: 'bulk-small', sshPublicKey: sshPublicKey('belt-bulk-small')}
    const from = exchanges.length
    const made = await d.createMany(specs(big, Array.from({length: 230}, (_, i) => `big${i + 1}`)), memoryContext())
    const made2 = await d.createMany(specs(small, ['small1', 'small2']), memoryContext())
    expect([...made, ...made2].filter((x) => x instanceof Error)).toEqual([])
    // Readiness: by tag-filtered lists, never one GET per droplet.
    expect(count(from, 'GET', /^\/v2\/droplets\/\d+$/)).toBe(0)

    const machines = [...made, ...made2] as Machine[]
    const missing: Machine = {id: '424242', address: '127.0.0.9', ssh: {user: 'root', port: 22}, data: {dropletId: 424242, cluster: 'bulk-small'}}
    const before = exchanges.length
    const states = await driver().states([...machines, missing], options, memoryContext())
    expect(states.slice(0, -1).every((s) => s === 'running')).toBe(true)
    expect(states.at(-1)).toBe('missing')
    // 230 droplets: two pages of the big cluster's tag, one of the small one's; nothing per droplet.
    expect(count(before, 'GET', '/v2/droplets', (x) => x.query.tag_name === 'belt-cluster-bulk-big')).toBe(2)
    expect(count(before, 'GET', '/v2/droplets', (x) => x.query.tag_name === 'belt-cluster-bulk-small')).toBe(1)
    expect(exchanges.length - before).toBe(3)

    // A subset of a cluster goes by id (the tag still has other droplets), confirmed by the tag list.
    const ctx = memoryContext()
    const b = exchanges.length
    const some = machines.slice(0, 3)
    expect(await driver().removeMany(some, options, ctx)).toEqual([undefined, undefined, undefined])
    expect(count(b, 'DELETE', '/v2/droplets')).toBe(0)
    expect(count(b, 'DELETE', /^\/v2\/droplets\/\d+$/)).toBe(3)
    expect(emu.droplets().filter((x) => some.some((m) => m.id === String(x.id)))).toEqual([])
    expect(ctx.entries.filter((e) => e.action === 'deleted').map((e) => e.id).sort()).toEqual(some.map((m) => m.id).sort())

    // The rest of both clusters (and a droplet that is gone already): ONE delete by tag per cluster.
    const c = exchanges.length
    const rest = [...machines.slice(3), missing, some[0]!]
    const res = await driver().removeMany(rest, options, memoryContext())
    expect(res.every((x) => x === undefined)).toBe(true)
    expect(count(c, 'DELETE', /^\/v2\/droplets\/\d+$/)).toBe(0)
    expect(count(c, 'DELETE', '/v2/droplets', (x) => x.query.tag_name === 'belt-cluster-bulk-big')).toBe(1)
    expect(count(c, 'DELETE', '/v2/droplets', (x) => x.query.tag_name === 'belt-cluster-bulk-small')).toBe(1)
    expect(emu.droplets()).toEqual([])
    expect(await driver().states(rest, options, memoryContext())).toEqual(rest.map(() => 'missing'))
    // Idempotent: nothing left to delete, no delete request.
    const e2 = exchanges.length
    expect(await driver().removeMany(rest, options, memoryContext())).toEqual(rest.map(() => undefined))
    expect(count(e2, 'DELETE', /^\/v2\/droplets/)).toBe(0)
    for (const cl of ['bulk-big', 'bulk-small']) await driver().removeCluster(cl, options, memoryContext())
  }, 120_000)

  it('states() of an unreachable API rejects (the caller shows Unknown), and names the endpoint', async () => {
    const off = {...options, 'api-url': 'http://127.0.0.1:9'}
    const m: Machine = {id: '1', address: '127.0.0.9', ssh: {user: 'root', port: 22}, data: {dropletId: 1, cluster: 'x'}}
    await expect(driver().states([m], off, memoryContext())).rejects.toThrow(/cannot reach the DigitalOcean API at http:\/\/127\.0\.0\.1:9/)
  }, 60_000)

  it('every exchange conforms to the published OpenAPI document (delete by tag included)', () => {
    expect(exchanges.some((x) => x.method === 'DELETE' && x.path === '/v2/droplets' && x.query.tag_name)).toBe(true)
    expect(exchanges.flatMap((ex) => specViolations(api, ex))).toEqual([])
  })
})
