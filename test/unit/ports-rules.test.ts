/**
 * Published ports, pure parts and services: PORT[/proto] parsing, how each cloud's rules are read
 * back (published / admin / cluster), the DigitalOcean rule changes against a fake client that fails
 * on any request it was not told to expect, Machine's flag spellings and variables, and
 * `createHosts` publishing `--open-port` after preflight and before any host (refused, with no
 * driver call at all, for a driver without a firewall).
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {DriverContext, DriverOptions, PortChange, PortRule} from '../../drivers/driver.js'
import {clusterPortRules, PUBLISHED} from '../../drivers/amazonec2/cluster.js'
import {parseSettings as ec2Settings, parseTags} from '../../drivers/amazonec2/settings.js'
import type {DoClient} from '../../drivers/digitalocean/client.js'
import {firewallRules, portRules, setFirewallPorts} from '../../drivers/digitalocean/cluster.js'
import {parseSettings as doSettings} from '../../drivers/digitalocean/settings.js'
import type {DoFirewall} from '../../drivers/digitalocean/types.js'
import {findDriver} from '../../drivers/registry.js'
import {isUserError} from '../../src/errors.js'
import {createHosts} from '../../src/services/create-hosts.js'
import {resolveDriverOptions} from '../../src/services/driver-context.js'
import {formatPort, parsePort, parsePorts} from '../../src/services/ports.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'
import {FakeDriver, fakeRegistry} from '../fakes/fake-driver.js'

const ctx: DriverContext = {stateDir: '/nonexistent', withLock: (_n, fn) => fn(), journal: async () => undefined, log: () => undefined}

const refusal = (fn: () => unknown): {code: string; exit: number; message: string} => {
  try {
    fn()
  } catch (e) {
    if (!isUserError(e)) throw e
    return {code: e.code, exit: e.exit, message: e.message}
  }
  throw new Error('expected a refusal')
}

describe('parsePort', () => {
  it.each([
    ['80', {protocol: 'tcp', port: 80}],
    ['443/TCP', {protocol: 'tcp', port: 443}],
    ['53/udp', {protocol: 'udp', port: 53}],
    ['8000-8010/tcp', {protocol: 'tcp', port: 8000, endPort: 8010}],
    ['9000-9000', {protocol: 'tcp', port: 9000}],
    ['22/udp', {protocol: 'udp', port: 22}],
  ])('%s', (v, want) => expect(parsePort(v, '--open-port')).toEqual(want))

  it.each([
    ['', 'E_PORT'],
    ['http', 'E_PORT'],
    ['0', 'E_PORT'],
    ['65536', 'E_PORT'],
    ['90-80', 'E_PORT'],
    ['80/sctp', 'E_PORT'],
    ['22', 'E_PORT_ADMIN'],
    ['2376/tcp', 'E_PORT_ADMIN'],
    ['2000-3000', 'E_PORT_ADMIN'],
  ])('refuses %s (%s, exit 2)', (v, code) => {
    const r = refusal(() => parsePort(v, '--open-port'))
    expect(r).toMatchObject({code, exit: 2})
    expect(r.message.startsWith('--open-port: ')).toBe(true)
  })

  it('drops duplicates and formats back', () => {
    expect(parsePorts(['80', '80/tcp', '53/udp', '8000-8001'], 'x').map(formatPort)).toEqual(['80/tcp', '53/udp', '8000-8001/tcp'])
  })
})

describe('DigitalOcean firewall rules', () => {
  const base = (): DoFirewall =>
    ({
      id: 'fw-1',
      name: 'belt-web',
      status: 'succeeded',
      created_at: '2026-01-01T00:00:00Z',
      pending_changes: [],
      droplet_ids: [],
      tags: ['belt-cluster-web'],
      ...firewallRules('web', ['0.0.0.0/0', '::/0']),
    }) as DoFirewall

  it("reads Belt's own rules as admin and cluster, and nothing as published", () => {
    const rules = portRules(base(), 'web')
    expect(rules.filter((r) => r.role === 'admin').map((r) => r.ports)).toEqual(['22', '2376'])
    expect(rules.filter((r) => r.role === 'cluster').map((r) => `${r.ports}/${r.protocol}`)).toEqual(['2377/tcp', '7946/tcp', '7946/udp', '4789/udp', 'all/icmp'])
    expect(rules.filter((r) => r.role === 'published')).toEqual([])
    expect(portRules(undefined, 'web')).toEqual([])
  })

  /** A client that accepts exactly the requests in `expected`, in order, and fails on any other. */
  const fakeClient = (expected: {method: string; path: string}[]) => {
    const seen: {method: string; path: string; body: unknown}[] = []
    const client = {
      request: async (req: {method: string; path: string; body?: unknown}) => {
        const want = expected[seen.length]
        seen.push({method: req.method, path: req.path, body: req.body})
        if (!want || want.method !== req.method || want.path !== req.path) throw new Error(`unexpected request ${req.method} ${req.path}`)
        return {status: 204, body: undefined}
      },
    }
    return {client: client as unknown as DoClient, seen}
  }

  it('opens only what is missing and closes only published rules, one request each', async () => {
    const f = base()
    f.inbound_rules.push({protocol: 'tcp', ports: '80', sources: {addresses: ['0.0.0.0/0', '::/0']}})
    const {client, seen} = fakeClient([
      {method: 'POST', path: '/v2/firewalls/fw-1/rules'},
      {method: 'DELETE', path: '/v2/firewalls/fw-1/rules'},
    ])
    const change: PortChange = {open: [{protocol: 'tcp', port: 80}, {protocol: 'udp', port: 53}, {protocol: 'udp', port: 53}], close: [{protocol: 'tcp', port: 80}, {protocol: 'tcp', port: 9}]}
    const after = await setFirewallPorts(client, f, 'web', change, ctx)
    expect(seen[0]!.body).toEqual({inbound_rules: [{protocol: 'udp', ports: '53', sources: {addresses: ['0.0.0.0/0', '::/0']}}]})
    expect(seen[1]!.body).toEqual({inbound_rules: [{protocol: 'tcp', ports: '80', sources: {addresses: ['0.0.0.0/0', '::/0']}}]})
    expect(after.filter((r) => r.role === 'published').map((r) => `${r.ports}/${r.protocol}`)).toEqual(['53/udp'])
  })

  it('sends nothing when there is nothing to change (SSH open to anywhere is not a published port)', async () => {
    const {client, seen} = fakeClient([])
    await setFirewallPorts(client, base(), 'web', {open: [], close: [{protocol: 'tcp', port: 8080}]}, ctx)
    expect(seen).toEqual([])
  })
})

describe('EC2 security group rules', () => {
  it('tells published, admin and cluster rules apart', () => {
    const rules = clusterPortRules([
      {
        GroupId: 'sg-1',
        IpPermissions: [
          {IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{CidrIp: '203.0.113.7/32', Description: 'SSH from the admin CIDR'}]},
          {IpProtocol: 'tcp', FromPort: 2377, ToPort: 2377, UserIdGroupPairs: [{GroupId: 'sg-1'}]},
          {IpProtocol: 'tcp', FromPort: 80, ToPort: 80, IpRanges: [{CidrIp: '0.0.0.0/0', Description: PUBLISHED}]},
          {IpProtocol: 'udp', FromPort: 5000, ToPort: 5010, IpRanges: [{CidrIp: '0.0.0.0/0', Description: PUBLISHED}]},
          {IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, UserIdGroupPairs: [{GroupId: 'sg-other'}]},
        ],
      },
    ])
    const by = (role: PortRule['role']) => rules.filter((r) => r.role === role)
    expect(by('admin')).toEqual([{protocol: 'tcp', ports: '22', sources: ['203.0.113.7/32'], role: 'admin'}])
    expect(by('cluster')).toEqual([{protocol: 'tcp', ports: '2377', sources: ['cluster'], role: 'cluster'}])
    expect(by('published').map((r) => `${r.ports}/${r.protocol} ${r.sources.join(',')}`)).toEqual(['80/tcp 0.0.0.0/0', '5000-5010/udp 0.0.0.0/0', '5432/tcp sg-other'])
  })
})

describe("Machine's flags: parsing and spellings", () => {
  const ec2 = (o: DriverOptions) => ec2Settings({region: 'us-east-1', ...o}, {})

  it('amazonec2 tags in both forms; reserved and odd lists refused', () => {
    expect(parseTags('team,web,env,prod')).toEqual([{Key: 'team', Value: 'web'}, {Key: 'env', Value: 'prod'}])
    expect(parseTags('team=web, env=')).toEqual([{Key: 'team', Value: 'web'}, {Key: 'env', Value: ''}])
    expect(parseTags(undefined)).toEqual([])
    for (const bad of ['a,b,c', 'a=b,c', 'belt:cluster,x', 'aws:x=1', 'k,1,k,2']) expect(refusal(() => parseTags(bad)).exit).toBe(2)
  })

  it('amazonec2 zone, volume type, profile, booleans, key pair', () => {
    expect(ec2({zone: 'b'}).zone).toBe('us-east-1b')
    expect(ec2({zone: 'us-east-1d'}).zone).toBe('us-east-1d')
    expect(ec2({}).volumeType).toBe('gp3')
    expect(ec2({'iam-instance-profile': 'arn:aws:iam::123456789012:instance-profile/x'}).iamInstanceProfile).toEqual({Arn: 'arn:aws:iam::123456789012:instance-profile/x'})
    expect(ec2({'iam-instance-profile': 'web'}).iamInstanceProfile).toEqual({Name: 'web'})
    expect(ec2({'private-address-only': 'true', monitoring: 'yes'})).toMatchObject({privateAddressOnly: true, monitoring: true, usePrivateAddress: false})
    expect(ec2({'keypair-name': 'k', 'ssh-keypath': 'rel/key.pem'}).sshKeyPath).toBe(path.resolve('rel/key.pem'))
    for (const o of [{zone: 'eu-west-1a'}, {zone: '1'}, {'volume-type': 'ssd'}, {'security-group': 'sg-xyz'}, {'keypair-name': 'k'}, {'ssh-keypath': '/k'}, {monitoring: 'maybe'}])
      expect(refusal(() => ec2(o)).exit).toBe(2)
  })

  it('DigitalOcean booleans and ssh-key-fingerprint', () => {
    const base = {'access-token': 't'}
    expect(doSettings(base)).toMatchObject({ipv6: false, monitoring: false, backups: false})
    expect(doSettings({...base, ipv6: 'true', backups: 'true'})).toMatchObject({ipv6: true, backups: true})
    expect(doSettings({...base, 'ssh-key-fingerprint': '3B:16:BF:E4:8B:00:8B:B8:59:8C:A9:D3:F0:19:45:FA'}).sshKeyFingerprint).toBe('3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa')
    expect(doSettings({...base, 'ssh-key-fingerprint': '512190'}).sshKeyFingerprint).toBe('512190')
    expect(refusal(() => doSettings({...base, 'ssh-key-fingerprint': 'ab:cd'})).message).toContain('--digitalocean-ssh-key-fingerprint')
    expect(refusal(() => doSettings({...base, ipv6: 'yes please'})).exit).toBe(2)
  })

  it("Machine's variables are read after Belt's own (DIGITALOCEAN_USERDATA behind DIGITALOCEAN_USER_DATA)", () => {
    const entry = findDriver('digitalocean')!
    expect(resolveDriverOptions(entry, {}, undefined, {DIGITALOCEAN_USERDATA: '/m.yaml'}).options['user-data']).toBe('/m.yaml')
    expect(resolveDriverOptions(entry, {}, undefined, {DIGITALOCEAN_USERDATA: '/m.yaml', DIGITALOCEAN_USER_DATA: '/b.yaml'}).options['user-data']).toBe('/b.yaml')
    expect(resolveDriverOptions(entry, {'user-data': '/flag.yaml'}, undefined, {DIGITALOCEAN_USERDATA: '/m.yaml'}).options['user-data']).toBe('/flag.yaml')
    expect(entry.options.find((o) => o.name === 'user-data')!.aliases).toEqual(['userdata'])
  })
})

/** A fake driver with a firewall: records setPorts among its calls. */
class FirewallFake extends FakeDriver {
  readonly published: string[] = []
  async listPorts(): Promise<PortRule[]> {
    this.calls.push('listPorts')
    return this.published.map((p) => ({protocol: 'tcp', ports: p, sources: ['0.0.0.0/0'], role: 'published'}))
  }
  async setPorts(cluster: string, change: PortChange): Promise<PortRule[]> {
    this.calls.push(`setPorts:${cluster}:${change.open.map(formatPort).join(',')}`)
    if (this.forbidCalls) throw new Error('unexpected call setPorts')
    for (const p of change.open) this.published.push(String(p.port))
    return this.listPorts()
  }
}

describe('createHosts with --open-port', () => {
  let dir: string
  let store: Store
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'belt-ports-unit-'))
    store = new Store(path.join(dir, 'store'))
  })
  afterEach(async () => rm(dir, {recursive: true, force: true}))

  const request = (driver: FakeDriver) => ({
    store,
    driver: fakeRegistry(driver).entry,
    options: {token: 't', size: 's1'},
    persistable: {size: 's1'},
    selection: {patterns: ['p1', 'p2']},
    cluster: 'web',
    concurrency: 2,
    reporter: silentReporter,
    openPorts: [{protocol: 'tcp' as const, port: 80}],
  })

  it('publishes once, after preflight and before any host is created', async () => {
    const d = new FirewallFake()
    const out = await createHosts(request(d))
    expect(out.every((o) => o.ok)).toBe(true)
    const i = d.calls.indexOf('setPorts:web:80/tcp')
    expect(i).toBeGreaterThan(d.calls.indexOf('preflight'))
    expect(d.calls.filter((c) => c.startsWith('setPorts'))).toHaveLength(1)
    expect(d.calls.findIndex((c) => c.startsWith('create:'))).toBeGreaterThan(i)
  })

  it('a driver without a firewall is refused (exit 2) before any driver call or record', async () => {
    const d = new FakeDriver()
    d.forbidCalls = true
    await expect(createHosts(request(d))).rejects.toMatchObject({code: 'E_PORTS_UNSUPPORTED', exit: 2})
    expect(d.calls).toEqual([])
    expect((await store.list()).records).toEqual([])
  })
})
