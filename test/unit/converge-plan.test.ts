import {describe, expect, it} from 'vitest'
import {parseClusterFile} from '../../src/services/cluster-file.js'
import {engineChanges, labelChanges, parseDuration, planConvergence, type ObservedHost, type ObservedNode} from '../../src/services/converge.js'
import {newRecord} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'

const NOW = Date.parse('2026-12-02T12:00:00Z')
const MIN = 60_000
const file = (web = 4, extra = '') =>
  parseClusterFile(
    `cluster: demo
driver: local
engine:
  labels: {env: prod}
groups:
  - {name: mgr, role: manager, count: 3}
  - {name: web, role: worker, count: ${web}, labels: {tier: web}}
${extra}`,
    'c.yaml',
  )
const engine = {labels: ['env=prod'], opts: [], insecureRegistries: [], registryMirrors: []}

/** A joined host of cluster demo with a Ready node, as observeCluster would report it. */
function host(name: string, o: {role?: 'manager' | 'worker'; node?: Partial<ObservedNode> | null; record?: Partial<HostRecord>; live?: string; busy?: boolean} = {}): ObservedHost {
  const role = o.role ?? (name.startsWith('mgr') ? 'manager' : 'worker')
  const record: HostRecord = {
    ...newRecord({name, cluster: 'demo', driver: 'local', driverOptions: {}}),
    phase: 'joined',
    machine: {id: name, address: '10.0.0.1', data: {}} as HostRecord['machine'],
    engine: {url: 'tcp://10.0.0.1:2376', id: 'e', name, serverVersion: '20.10', labels: [], config: {...engine}, certNotAfter: new Date(NOW + 365 * 24 * 60 * MIN).toISOString()},
    swarm: {nodeId: `id-${name}`, role, labels: role === 'worker' ? ['tier'] : []},
    ...o.record,
  }
  const node: ObservedNode | undefined =
    o.node === null
      ? undefined
      : {id: `id-${name}`, version: 1, hostname: name, role, availability: 'active', state: 'ready', leader: name === 'mgr1', reachability: role === 'manager' ? 'reachable' : undefined, labels: role === 'worker' ? {tier: 'web'} : {}, ...o.node}
  return {record, live: o.live ?? 'running', node, busy: o.busy}
}
const full = () => ['mgr1', 'mgr2', 'mgr3', 'web1', 'web2', 'web3', 'web4'].map((n) => host(n))
const plan = (hosts: ObservedHost[], spec = file(), replaceAfterMs = 5 * MIN) => planConvergence(spec, {hosts, swarmKnown: true}, {now: NOW, replaceAfterMs})
const kinds = (p: ReturnType<typeof plan>) => p.actions.map((a) => `${a.kind} ${a.host}`)

describe('planConvergence', () => {
  it('an empty store: every host of every group is created, managers first', () => {
    const p = planConvergence(file(), {hosts: [], swarmKnown: false}, {now: NOW, replaceAfterMs: 5 * MIN})
    expect(kinds(p)).toEqual(['create mgr1', 'create mgr2', 'create mgr3', 'create web1', 'create web2', 'create web3', 'create web4'])
    expect(p.actions.filter((a) => a.kind === 'create' && a.role === 'manager').map((a) => a.host)).toEqual(['mgr1', 'mgr2', 'mgr3'])
  })

  it('a cluster that matches the file: no action', () => {
    const p = plan(full())
    expect(p.actions).toEqual([])
    expect(p.blocked).toEqual([])
    expect(p.waiting).toEqual([])
  })

  it('unfinished hosts are resumed; a Missing machine is replaced at once', () => {
    const hosts = full()
    hosts[4] = host('web2', {record: {phase: 'bootstrapped'}, node: null})
    hosts[5] = host('web3', {record: {phase: 'creating', machine: undefined}, node: null})
    hosts[6] = host('web4', {live: 'missing'})
    expect(kinds(plan(hosts))).toEqual(['resume web2', 'resume web3', 'replace web4'])
  })

  it('a swarm member left in error by a failed roll is rolled again in place, not joined again', () => {
    const hosts = full()
    hosts[1] = host('mgr2', {record: {phase: 'error', error: {phase: 'bootstrapping', message: 'x', at: ''}}})
    const p = plan(hosts)
    expect(p.actions).toEqual([{kind: 'roll', host: 'mgr2', group: 'mgr', role: 'manager', changes: ['finish the engine: left error (bootstrapping failed)'], renewCert: false}])
  })

  it('a Down node is replaced only after --replace-after; before that it waits', () => {
    const down = (minutes: number) => {
      const hosts = full()
      hosts[3] = host('web1', {node: {state: 'down', updatedAt: new Date(NOW - minutes * MIN).toISOString()}})
      return plan(hosts)
    }
    expect(kinds(down(2))).toEqual([])
    expect(down(2).waiting).toEqual([{host: 'web1', why: 'node Down for 2 min: replaced once Down for 5 min'}])
    expect(kinds(down(6))).toEqual(['replace web1'])
    expect(down(6).actions[0]).toMatchObject({kind: 'replace', role: 'worker', reason: 'its node is Down for 6 min (--replace-after 5 min)'})
  })

  it('scaling web 4 -> 2 removes web4 then web3 (drain, then remove); managers never', () => {
    const p = plan(full(), file(2))
    expect(kinds(p)).toEqual(['remove web4', 'remove web3'])
    expect(p.actions.every((a) => a.kind === 'remove' && a.role === 'worker')).toBe(true)
  })

  it('scaling managers 3 -> 1 removes workers first, then demotes the leader before the others', () => {
    const spec = parseClusterFile('cluster: demo\ndriver: local\nengine: {labels: {env: prod}}\ngroups:\n  - {name: mgr, role: manager, count: 1}\n  - {name: web, role: worker, count: 3, labels: {tier: web}}\n', 'c.yaml')
    const hosts = full()
    hosts[2] = host('mgr3', {node: {leader: true}})
    hosts[0] = host('mgr1', {node: {leader: false}})
    expect(kinds(plan(hosts, spec))).toEqual(['remove web4', 'remove mgr3', 'remove mgr2'])
  })

  it('refuses (blocked) when the managers that stay and answer are below quorum', () => {
    const hosts = full()
    hosts[1] = host('mgr2', {node: {reachability: 'unreachable'}})
    hosts[2] = host('mgr3', {node: {reachability: 'unreachable', state: 'down', updatedAt: new Date(NOW - 60 * MIN).toISOString()}})
    const p = plan(hosts)
    expect(p.blocked).toEqual([{host: '(swarm)', why: expect.stringMatching(/^1 reachable manager would stay of 3: below quorum/)}])
  })

  it('labels: missing or different ones are set; keys Belt set before and the file dropped are removed; others are kept', () => {
    const hosts = full()
    hosts[3] = host('web1', {node: {labels: {tier: 'db', other: 'x'}}})
    hosts[4] = host('web2', {node: {labels: {tier: 'web', zone: 'a'}}, record: {swarm: {nodeId: 'id-web2', role: 'worker', labels: ['tier', 'zone']}}})
    const p = plan(hosts)
    expect(p.actions).toEqual([
      {kind: 'relabel', host: 'web1', group: 'web', add: {tier: 'web'}, remove: []},
      {kind: 'relabel', host: 'web2', group: 'web', add: {}, remove: ['zone']},
    ])
    expect(labelChanges({a: '1'}, {a: '1', b: '2'}, ['b'])).toEqual({add: {}, remove: ['b']})
  })

  it('engine changes and certificates due are rolls; the change is described', () => {
    const hosts = full()
    hosts[0] = host('mgr1', {record: {engine: {...hosts[0]!.record.engine!, certNotAfter: new Date(NOW + 5 * 24 * 60 * MIN).toISOString()}}})
    const p = plan(hosts, parseClusterFile('cluster: demo\ndriver: local\nengine: {labels: {env: staging}, options: {log-level: warn}}\ngroups:\n  - {name: mgr, role: manager, count: 3}\n  - {name: web, role: worker, count: 4, labels: {tier: web}}\n', 'c.yaml'))
    expect(kinds(p)).toEqual(['roll mgr1', 'roll mgr2', 'roll mgr3', 'roll web1', 'roll web2', 'roll web3', 'roll web4'])
    expect(p.actions[0]).toMatchObject({kind: 'roll', renewCert: true, changes: ['engine labels: +env=staging -env=prod', 'engine opts: +log-level=warn', expect.stringMatching(/^new server certificate/)]})
    expect(p.actions[1]).toMatchObject({renewCert: false})
    expect(engineChanges({...engine, version: '20.10'}, {...engine, version: '24.0'})).toEqual(['engine version: 20.10 -> 24.0'])
    expect(engineChanges({...engine, opts: ['a=1', 'b=2']}, {...engine, opts: ['b=2', 'a=1']})).toEqual([])
  })

  it('hosts of other clusters or drivers under the group names are blocked; busy ones wait; strangers are left alone', () => {
    const hosts = full()
    hosts[3] = host('web1', {record: {cluster: 'other'}})
    hosts[4] = host('web2', {record: {driver: 'digitalocean'}})
    hosts[5] = host('web3', {busy: true, record: {owner: {pid: 4242, since: ''}}})
    hosts.push(host('db1'))
    const p = plan(hosts)
    expect(p.blocked.map((b) => b.host)).toEqual(['web1', 'web2'])
    expect(p.waiting).toEqual([{host: 'web3', why: 'belt process 4242 is working on it (joined)'}])
    expect(p.unmanaged).toEqual(['db1'])
    expect(kinds(p)).toEqual([])
  })

  it("a host made at another pinned location (the local subnet) is blocked: it cannot move and its peers must be made where it is", () => {
    const hosts = full()
    hosts[3] = host('web1', {record: {driverOptions: {subnet: '10.99.0.0/16'}}})
    const p = plan(hosts)
    expect(p.blocked).toEqual([{host: 'web1', why: expect.stringMatching(/^created with subnet 10\.99\.0\.0\/16, the file says .*: a host cannot move \(remove it with belt rm web1, or fix the file\)$/)}])
  })

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('5m')).toBe(300_000)
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('0')).toBe(0)
    expect(parseDuration('5')).toBeUndefined()
    expect(parseDuration('soon')).toBeUndefined()
  })
})
