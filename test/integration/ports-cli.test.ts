/**
 * Published ports through the built `belt` binary, against both emulators in this process
 * (simulated backing hosts: a listener on port 22 of a loopback address, so `--no-bootstrap`):
 * `belt create --open-port`, then `belt ports open|close|ls`. What counts is what the emulators
 * hold afterwards: the DigitalOcean firewall's inbound rules and the EC2 security group's ingress.
 * Every DigitalOcean exchange is checked against the published OpenAPI document (openapi-backend).
 */
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {OpenAPIBackend} from 'openapi-backend'
import {loadDoSpec, specViolations} from '../helpers/do-spec.js'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Ec2Emulator, createSimulatedBacking as ec2Backing, type SimulatedBacking} from '../../drivers/amazonec2/emulator/index.js'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle, type Exchange} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking as doBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {belt} from '../helpers/cli.js'

const TOKEN = 'dop_v1_ports_cli_test_token_0123456789'
const AWS = {AWS_ACCESS_KEY_ID: 'AKIDPORTSTEST', AWS_SECRET_ACCESS_KEY: 'ports-test-secret', AWS_EC2_METADATA_DISABLED: 'true', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: ''}

let api: OpenAPIBackend
const exchanges: Exchange[] = []
let doEmu: EmulatorHandle
let ec2: Ec2Emulator
let ec2Hosts: SimulatedBacking
const ec2Calls: {action: string; params: Record<string, unknown>}[] = []
const stores: string[] = []

const violations = (ex: Exchange) => specViolations(api, ex)

const newStore = () => {
  const s = mkdtempSync(path.join(os.tmpdir(), 'belt-ports-'))
  stores.push(s)
  return s
}

beforeAll(async () => {
  api = await loadDoSpec()
  doEmu = await startEmulator({
    backing: doBacking({octet: 91}),
    backingContext: memoryContext(),
    bootDelayMs: 100,
    actionDelayMs: 20,
    rateLimit: {perHour: 1_000_000, perMinute: 100_000},
    onExchange: (ex) => exchanges.push(ex),
  })
  ec2Hosts = ec2Backing({secondOctet: 191})
  ec2 = await Ec2Emulator.start({backing: ec2Hosts, bootDelayMs: 100, onRequest: (action, params) => ec2Calls.push({action, params: {...params}})})
}, 60_000)

afterAll(async () => {
  await doEmu?.close()
  await ec2?.close()
  await ec2Hosts?.close()
  for (const s of stores) rmSync(s, {recursive: true, force: true})
})

describe('published ports on DigitalOcean (emulator)', () => {
  const env = {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}
  let store: string
  const run = (args: string[]) => belt(args, {store, env})
  const firewall = () => doEmu.firewalls().find((f) => f.name === 'belt-web')
  const published = () =>
    (firewall()?.inbound_rules ?? [])
      .filter((r) => (r.sources.addresses ?? []).join(',') === '0.0.0.0/0,::/0' && r.ports !== '22' && r.ports !== '2376')
      .map((r) => `${r.ports}/${r.protocol}`)
      .sort()

  afterAll(async () => {
    if (store) await run(['rm', '-y', '--force', '*'])
  })

  it('create --open-port 80 --open-port 53/udp publishes both on the cluster firewall, with Belt\'s own rules kept', async () => {
    store = newStore()
    const from = exchanges.length
    const r = await run(['create', '--driver', 'digitalocean', '--digitalocean-api-url', doEmu.url, '--cluster', 'web', '--no-bootstrap', '--open-port', '80', '--open-port', '53/udp', '--count', '2'])
    expect(r.stderr).toContain('Published 80/tcp, 53/udp')
    expect(r.code).toBe(0)
    expect(published()).toEqual(['53/udp', '80/tcp'])
    const f = firewall()!
    // SSH and Docker TLS from the admin CIDR, swarm ports between the cluster's droplets: untouched.
    expect(f.inbound_rules.find((x) => x.ports === '22')?.sources.addresses).toEqual(['0.0.0.0/0', '::/0'])
    expect(f.inbound_rules.filter((x) => x.sources.tags?.includes('belt-cluster-web')).map((x) => `${x.ports}/${x.protocol}`).sort()).toEqual(['0/icmp', '2377/tcp', '4789/udp', '7946/tcp', '7946/udp'])
    expect(f.tags).toEqual(['belt-cluster-web'])
    const ex = exchanges.slice(from)
    expect(ex.filter((x) => x.method === 'POST' && /^\/v2\/firewalls\/[^/]+\/rules$/.test(x.path))).toHaveLength(1)
    expect(ex.flatMap(violations)).toEqual([])
  })

  it('ports open / ls / close change exactly the published rules, idempotently, and conform to the spec', async () => {
    const from = exchanges.length
    const open = await run(['ports', 'open', '443', '8000-8010/tcp', '--cluster', 'web'])
    expect(open.code).toBe(0)
    expect(published()).toEqual(['443/tcp', '53/udp', '8000-8010/tcp', '80/tcp'].sort())
    expect(open.stdout).toMatch(/443\s+tcp\s+0\.0\.0\.0\/0,::\/0\s+published/)

    const again = await run(['ports', 'open', '443', '--cluster', 'web'])
    expect(again.code).toBe(0)
    expect(firewall()!.inbound_rules.filter((x) => x.ports === '443')).toHaveLength(1)

    const ls = await run(['ports', 'ls', '--cluster', 'web', '--json'])
    expect(ls.code).toBe(0)
    const list = JSON.parse(ls.stdout) as {driver: string; hosts: string[]; rules: {ports: string; protocol: string; role: string}[]}[]
    expect(list).toHaveLength(1)
    expect(list[0]!.hosts).toEqual(['node1', 'node2'])
    expect(list[0]!.rules.filter((x) => x.role === 'published').map((x) => `${x.ports}/${x.protocol}`).sort()).toEqual(['443/tcp', '53/udp', '8000-8010/tcp', '80/tcp'].sort())
    expect(list[0]!.rules.filter((x) => x.role === 'admin').map((x) => x.ports).sort()).toEqual(['22', '2376'])

    const close = await run(['ports', 'close', '80', '53/udp', '8000-8010', '9999', '--cluster', 'web'])
    expect(close.code).toBe(0)
    expect(published()).toEqual(['443/tcp'])
    expect(firewall()!.inbound_rules.some((x) => x.ports === '22')).toBe(true)
    const all = await run(['ports', 'ls', '--all', '--cluster', 'web'])
    expect(all.stdout).toMatch(/2377\s+tcp\s+cluster\s+cluster/)
    expect(exchanges.slice(from).flatMap(violations)).toEqual([])
  })

  it('refuses SSH and Docker TLS ports, bad ports and an unknown cluster in one line, changing nothing', async () => {
    const before = JSON.stringify(firewall())
    const n = exchanges.length
    for (const [args, code, text] of [
      [['ports', 'open', '22', '--cluster', 'web'], 2, 'SSH, open only to the admin CIDR'],
      [['ports', 'close', '2000-2400/tcp', '--cluster', 'web'], 2, 'Docker TLS API'],
      [['ports', 'open', '70000', '--cluster', 'web'], 2, 'out of range'],
      [['ports', 'open', '80/sctp', '--cluster', 'web'], 2, 'is not PORT[/tcp|udp]'],
      [['ports', 'ls', '--cluster', 'nosuch'], 3, 'cluster nosuch has no hosts'],
    ] as const) {
      const r = await run([...args])
      expect(r.code, r.stderr).toBe(code)
      expect(r.stderr).toContain(text)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
    expect(exchanges.length).toBe(n)
    expect(JSON.stringify(firewall())).toBe(before)
  })

  it('a bad --open-port is exit 2 before any request or record', async () => {
    const s = newStore()
    const n = exchanges.length
    const r = await belt(['create', '--driver', 'digitalocean', '--digitalocean-api-url', doEmu.url, '--no-bootstrap', '--open-port', '80/icmp', 'x1'], {store: s, env})
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')[0]).toContain("--open-port: '80/icmp' is not PORT[/tcp|udp]")
    expect(exchanges.length).toBe(n)
    const ls = await belt(['ls', '--json'], {store: s, env})
    expect(JSON.parse(ls.stdout)).toEqual([])
  })
})

describe('published ports on EC2 (emulator)', () => {
  let store: string
  const run = (args: string[]) => belt(args, {store, env: AWS})
  const group = () => [...ec2.cloud.world("us-east-1").groups.values()].find((g) => g.name === 'belt-api')
  const anywhere = () =>
    (group()?.ingress ?? [])
      .filter((r) => r.cidr === '0.0.0.0/0' && r.from !== 22 && r.from !== 2376)
      .map((r) => `${r.from === r.to ? r.from : `${r.from}-${r.to}`}/${r.protocol}`)
      .sort()

  afterAll(async () => {
    if (store) await run(['rm', '-y', '--force', '*'])
  })

  it('create --open-port 80 adds the ingress rule to the cluster security group', async () => {
    store = newStore()
    const r = await run(['create', '--driver', 'amazonec2', '--amazonec2-endpoint', ec2.endpoint, '--amazonec2-region', 'us-east-1', '--cluster', 'api', '--no-bootstrap', '--open-port', '80', 'api1'])
    expect(r.code, r.stderr).toBe(0)
    expect(anywhere()).toEqual(['80/tcp'])
    // The instance is in that group.
    const inst = [...ec2.cloud.world('us-east-1').instances.values()].find((i) => i.tags.get('Name') === 'api1')!
    expect(inst.groupIds).toContain(group()!.id)
  })

  it('ports open / close: AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress of exactly those rules', async () => {
    const from = ec2Calls.length
    expect((await run(['ports', 'open', '443', '5000-5010/udp', '--cluster', 'api'])).code).toBe(0)
    expect(anywhere()).toEqual(['443/tcp', '5000-5010/udp', '80/tcp'].sort())
    expect((await run(['ports', 'open', '443', '--cluster', 'api'])).code).toBe(0)
    expect(group()!.ingress.filter((r) => r.from === 443)).toHaveLength(1)
    const close = await run(['ports', 'close', '80', '5000-5010/udp', '--cluster', 'api'])
    expect(close.code, close.stderr).toBe(0)
    expect(anywhere()).toEqual(['443/tcp'])
    // Belt's own rules stay: SSH and Docker TLS from the admin CIDR, the swarm ports from the group itself.
    expect(group()!.ingress.filter((r) => r.groupId === group()!.id).map((r) => `${r.from}/${r.protocol}`).sort()).toEqual(['2377/tcp', '4789/udp', '7946/tcp', '7946/udp'])
    expect(group()!.ingress.some((r) => r.from === 22 && r.cidr === '0.0.0.0/0')).toBe(true)
    const actions = ec2Calls.slice(from).map((c) => c.action)
    expect(actions.filter((a) => a === 'AuthorizeSecurityGroupIngress')).toHaveLength(1)
    expect(actions.filter((a) => a === 'RevokeSecurityGroupIngress')).toHaveLength(1)
    const ls = await run(['ports', 'ls', '--cluster', 'api', '--json'])
    expect(JSON.parse(ls.stdout)[0].rules.filter((x: {role: string}) => x.role === 'published')).toEqual([{protocol: 'tcp', ports: '443', sources: ['0.0.0.0/0'], role: 'published'}])
  })
})

describe('drivers without a cloud firewall', () => {
  it('local: --open-port is refused before anything is created, saying what is true instead', async () => {
    const s = newStore()
    const r = await belt(['create', '--driver', 'local', '--local-subnet', '10.228.0.0/16', '--no-bootstrap', '--open-port', '80', 'l1'], {store: s})
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('the local driver has no cloud firewall for Belt to publish ports in')
    expect(r.stderr).toContain('from this machine only')
    const ls = await belt(['ls', '--json'], {store: s})
    expect(JSON.parse(ls.stdout)).toEqual([])
  })

  it('local: belt ports on a cluster of local hosts refuses in one line (exit 2) and says why', async () => {
    const s = newStore()
    try {
      const made = await belt(['create', '--driver', 'local', '--local-subnet', '10.228.0.0/16', '--cluster', 'loc', '--no-bootstrap', 'lp1'], {store: s})
      expect(made.code, made.stderr).toBe(0)
      for (const args of [['ports', 'ls'], ['ports', 'open', '80'], ['ports', 'close', '80']]) {
        const r = await belt([...args, '--cluster', 'loc'], {store: s})
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toContain('the local driver has no cloud firewall')
        expect(r.stderr).toContain('nothing for belt ports to list, open or close on cluster loc')
        expect(r.stderr).not.toMatch(/\n\s+at /)
      }
    } finally {
      const rm = await belt(['rm', '-y', '--force', '*'], {store: s})
      expect(rm.code, rm.stderr).toBe(0)
    }
  })
})
