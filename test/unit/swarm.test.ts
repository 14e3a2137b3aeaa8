import {InterruptedError} from '../../src/scheduler/interrupt.js'
import {describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {INGRESS_NUDGE_LABEL, INGRESS_NUDGES, INGRESS_RETOUCH_MS, SwarmFormation} from '../../src/swarm/formation.js'
import {advertiseAddress, checkManagers, managerAvailability, planSwarm, type HostSwarmState} from '../../src/swarm/plan.js'
import {FakeSwarm} from '../fakes/fake-swarm.js'

const m = (address: string, privateAddress?: string) => ({id: 'x', address, privateAddress, ssh: {user: 'root', port: 22}, data: {}})

describe('checkManagers', () => {
  it.each([1, 3, 5, 7])('accepts %i', (n) => expect(() => checkManagers(n)).not.toThrow())
  it.each([
    [0, /at least 1/],
    [2, /even.*tolerates no more failures than one of 1/],
    [4, /even/],
    [9, /more than 7/],
    [1.5, /whole number/],
  ])('refuses %s', (n, msg) => {
    expect(() => checkManagers(n)).toThrow(UserError)
    expect(() => checkManagers(n)).toThrow(msg)
  })
})

describe('advertiseAddress and availability', () => {
  it.each([
    ['auto', m('203.0.113.5', '10.0.0.5'), '10.0.0.5'],
    ['auto', m('203.0.113.5'), '203.0.113.5'],
    ['public', m('203.0.113.5', '10.0.0.5'), '203.0.113.5'],
    ['private', m('203.0.113.5', '10.0.0.5'), '10.0.0.5'],
  ] as const)('%s of %j is %s', (type, machine, want) => expect(advertiseAddress('n1', machine, type)).toBe(want))

  it('private without a private address is a usage error naming the host', () => {
    expect(() => advertiseAddress('n1', m('203.0.113.5'), 'private')).toThrow(/n1 has no private address/)
  })

  it.each([
    ['auto', 9, 'active'],
    ['auto', 10, 'drain'],
    ['auto', 300, 'drain'],
    ['active', 300, 'active'],
    ['drain', 3, 'drain'],
  ] as const)('%s with %i nodes -> %s', (flag, size, want) => expect(managerAvailability(flag, size)).toBe(want))
})

describe('planSwarm', () => {
  const free = (name: string): HostSwarmState => ({name, advertiseAddr: `10.0.0.${name.slice(1)}`, info: {state: 'inactive', nodeId: '', isManager: false, remoteManagers: []}})
  const mgr = (name: string, clusterId = 'C1'): HostSwarmState => ({name, advertiseAddr: `10.0.0.${name.slice(1)}`, info: {state: 'active', nodeId: `id-${name}`, isManager: true, clusterId, remoteManagers: [`10.0.0.${name.slice(1)}:2377`]}})
  const worker = (name: string, managers: string[], recorded?: string): HostSwarmState => ({name, advertiseAddr: `10.0.0.${name.slice(1)}`, recordedClusterId: recorded, info: {state: 'active', nodeId: `id-${name}`, isManager: false, remoteManagers: managers}})

  it('fresh hosts are all free, in order, and there is no swarm', () => {
    expect(planSwarm([free('n1'), free('n2'), free('n3')])).toEqual({clusterId: undefined, managers: [], members: [], foreign: [], unreachable: [], free: ['n1', 'n2', 'n3']})
  })

  it('finds the existing swarm, its members by manager address or record, and the foreign and unreachable hosts', () => {
    const p = planSwarm([
      mgr('n1'),
      worker('n2', ['10.0.0.1:2377']),
      worker('n3', ['10.9.9.9:2377'], 'C1'),
      worker('n4', ['10.9.9.9:2377']),
      free('n5'),
      {name: 'n6', advertiseAddr: '10.0.0.6', error: 'connect ECONNREFUSED'},
      {name: 'n7', advertiseAddr: '10.0.0.7', info: {state: 'error', nodeId: '', isManager: false, remoteManagers: [], error: 'certificate expired'}},
    ])
    expect(p.clusterId).toBe('C1')
    expect(p.managers).toEqual(['n1'])
    expect(p.members).toEqual(['n1', 'n2', 'n3'])
    expect(p.free).toEqual(['n5'])
    expect(p.unreachable).toEqual([{name: 'n6', why: 'connect ECONNREFUSED'}])
    expect(p.foreign.map((f) => f.name)).toEqual(['n4', 'n7'])
    expect(p.foreign[0]!.why).toMatch(/another swarm.*belt swarm leave n4/)
    expect(p.foreign[1]!.why).toMatch(/swarm state is error \(certificate expired\)/)
  })

  it('refuses hosts whose managers are in two swarms', () => {
    expect(() => planSwarm([mgr('n1', 'C1'), mgr('n2', 'C2')])).toThrow(/two swarms/)
  })
})

function formation(api: FakeSwarm, o: {managers?: number; concurrency?: number; existing?: {clusterId: string; managers: string[]}; joined?: string[]} = {}) {
  return new SwarmFormation({
    api,
    managers: o.managers ?? 3,
    workerConcurrency: o.concurrency ?? 4,
    managerAvailability: 'drain',
    endpoint: (name) => ({name, address: `10.0.0.${name.slice(1)}`, port: 2376}),
    advertiseAddr: (name) => `10.0.0.${name.slice(1)}`,
    existing: o.existing,
    onJoined: async (r) => void o.joined?.push(r.name),
    log: () => undefined,
    settleMs: 5000,
    sleep: async () => undefined,
  })
}

function formationOptions(api: FakeSwarm) {
  return {
    api,
    managers: 1,
    workerConcurrency: 4,
    managerAvailability: 'active' as const,
    endpoint: (name: string) => ({name, address: name, port: 2376}),
    advertiseAddr: (name: string) => name,
    log: () => undefined,
    settleMs: 5000,
    sleep: async () => undefined,
  }
}

describe('SwarmFormation', () => {
  const names = (n: number) => Array.from({length: n}, (_, i) => `n${i + 1}`)

  it('inits on the first arrival, joins managers one at a time and workers through the window, fetching tokens once', async () => {
    const api = new FakeSwarm(names(20))
    const joined: string[] = []
    const f = formation(api, {managers: 3, concurrency: 4, joined})
    const results = await Promise.all(names(20).map((n) => f.add(n)))
    expect(results.every((r) => r.ok)).toBe(true)
    expect(api.calls.filter((c) => c.startsWith('init'))).toEqual(['init:n1'])
    expect(results.filter((r) => r.role === 'manager').map((r) => r.name)).toEqual(['n1', 'n2', 'n3'])
    expect(api.peakJoins.manager).toBe(1)
    expect(api.peakJoins.worker).toBeLessThanOrEqual(4)
    expect(api.peakJoins.worker).toBeGreaterThan(1) // a window, not one at a time
    expect(api.tokenCalls).toBe(1)
    expect(joined.sort()).toEqual(names(20).sort())
    // Managers drained, as asked.
    expect(api.calls.filter((c) => c.endsWith(':drain'))).toEqual(['update:n1:drain', 'update:n2:drain', 'update:n3:drain'])
    const notReady = await f.verify(new Map(results.map((r) => [r.name, r.nodeId!])), 1000)
    expect(notReady.size).toBe(0)
  })

  it('treats "Timeout was reached before node joined" as still joining: verified, not failed', async () => {
    const api = new FakeSwarm(names(6))
    api.timeoutJoin.add('n5')
    const f = formation(api)
    const results = await Promise.all(names(6).map((n) => f.add(n)))
    const n5 = results.find((r) => r.name === 'n5')!
    expect(n5).toMatchObject({ok: true, role: 'worker', timedOut: true})
    expect(f.timeouts).toEqual(['n5'])
  })

  it('a join the engine abandons (state error) is reset with a forced leave and tried again', async () => {
    const api = new FakeSwarm(names(6))
    api.abandonOnce.add('n6')
    const f = formation(api)
    const results = await Promise.all(names(6).map((n) => f.add(n)))
    expect(results.find((r) => r.name === 'n6')).toMatchObject({ok: true, role: 'worker', timedOut: true})
    expect(api.calls.filter((c) => c.includes('n6'))).toEqual(['join:n6:worker', 'leave:n6', 'join:n6:worker'])
  })

  it('a refused worker join fails that host only', async () => {
    const api = new FakeSwarm(names(6))
    api.failJoin.add('n6')
    const results = await Promise.all(names(6).map((n) => formation(api).add(n)).slice(0, 1))
    expect(results[0]!.ok).toBe(true)
    const f = formation(api, {existing: {clusterId: api.clusterId, managers: ['n1']}})
    const more = await Promise.all(['n4', 'n5', 'n6'].map((n) => f.add(n, 'worker')))
    expect(more.map((r) => r.ok)).toEqual([true, true, false])
    expect(more[2]!.error).toMatch(/join failed: fake: join refused/)
  })

  it('a failed manager join gives its slot to a later arrival', async () => {
    const api = new FakeSwarm(names(5))
    api.failJoin.add('n2')
    const f = formation(api, {managers: 3})
    const first = await Promise.all(names(3).map((n) => f.add(n)))
    expect(first.find((r) => r.name === 'n2')!.ok).toBe(false)
    const later = await Promise.all(['n4', 'n5'].map((n) => f.add(n)))
    expect(later.map((r) => r.role)).toEqual(['manager', 'worker'])
  })

  it('when every host had its role already, joined workers are promoted up to the managers asked for', async () => {
    const api = new FakeSwarm(names(5))
    api.failJoin.add('n2')
    const joined: string[] = []
    const f = formation(api, {managers: 3, joined})
    const results = await Promise.all(names(5).map((n) => f.add(n)))
    expect(results.filter((r) => r.ok && r.role === 'manager').map((r) => r.name)).toEqual(['n1', 'n3'])
    expect(await f.topUpManagers()).toEqual(['n4'])
    expect([...api.nodes_.values()].filter((n) => n.role === 'manager').map((n) => n.hostname).sort()).toEqual(['n1', 'n3', 'n4'])
    expect(await f.topUpManagers()).toEqual([])
  })

  it('when init fails, every other host fails with that reason and nothing else is attempted', async () => {
    const api = new FakeSwarm(names(5))
    api.failInit = true
    const f = formation(api, {managers: 1})
    const results = await Promise.all(names(5).map((n) => f.add(n)))
    expect(results.every((r) => !r.ok)).toBe(true)
    expect(results[0]!.error).toMatch(/swarm init on n1 failed/)
    expect(results[4]!.error).toMatch(/not joined: swarm init on n1 failed/)
    expect(api.calls.filter((c) => c.startsWith('join'))).toEqual([])
  })

  it('after a Ctrl-C no join starts and every add settles as interrupted, also workers waiting for a swarm that was never made', async () => {
    const api = new FakeSwarm(names(5))
    const ac = new AbortController()
    const f = new SwarmFormation({
      api,
      managers: 3,
      workerConcurrency: 2,
      managerAvailability: 'active',
      endpoint: (name) => ({name, address: name, port: 2376}),
      advertiseAddr: (name) => name,
      log: () => undefined,
      sleep: async () => undefined,
      signal: ac.signal,
    })
    ac.abort(new InterruptedError())
    const results = await Promise.all(names(5).map((n) => f.add(n)))
    expect(results.map((r) => [r.ok, r.interrupted])).toEqual(Array(5).fill([false, true]))
    expect(api.calls).toEqual([])
  })

  it('--no-ingress removes the ingress network after init and before any join', async () => {
    const api = new FakeSwarm(names(4))
    const f = new SwarmFormation({
      api,
      managers: 1,
      workerConcurrency: 4,
      managerAvailability: 'active',
      noIngress: true,
      endpoint: (name) => ({name, address: name, port: 2376}),
      advertiseAddr: (name) => name,
      log: () => undefined,
      sleep: async () => undefined,
    })
    const results = await Promise.all(names(4).map((n) => f.add(n)))
    expect(results.every((r) => r.ok)).toBe(true)
    expect(api.ingress).toBe(false)
    expect(api.calls.indexOf('remove-ingress')).toBe(1) // right after init:n1
  })

  it('by default forms the swarm without ingress, then creates it once all have joined and waits until every node has its sandbox', async () => {
    const api = new FakeSwarm(names(12))
    const f = new SwarmFormation({...formationOptions(api), deferIngress: true})
    const results = await Promise.all(names(12).map((n) => f.add(n)))
    expect(results.every((r) => r.ok)).toBe(true)
    // The label goes on before the ingress goes, so a run cut off in between is finished later.
    expect(api.calls.slice(0, 3)).toEqual(['init:n1', 'label:belt.ingress=deferred', 'remove-ingress'])
    expect(api.joinsWithIngress).toBe(0)
    expect(api.sandboxes.size).toBe(0)
    const done = await f.completeIngress()
    expect(done).toMatchObject({created: true, notReady: new Map()})
    expect(done!.ready.sort()).toEqual(names(12).sort())
    expect([...api.sandboxes].sort()).toEqual(names(12).sort())
    expect(api.labels).toEqual({})
    expect(api.calls.at(-1)).toBe('label:belt.ingress=')
    // Nothing left to do: a second call says so and touches nothing.
    const n = api.calls.length
    expect(await f.completeIngress()).toBeUndefined()
    expect(api.calls.length).toBe(n)
  })

  it('a run cut off before the ingress was made leaves the label; the next formation of that swarm completes it', async () => {
    const api = new FakeSwarm(names(5))
    const first = new SwarmFormation({...formationOptions(api), deferIngress: true})
    await Promise.all(names(3).map((n) => first.add(n)))
    expect(api.labels).toEqual({'belt.ingress': 'deferred'})
    const next = new SwarmFormation({...formationOptions(api), deferIngress: true, existing: {clusterId: api.clusterId, managers: ['n1']}})
    await Promise.all(['n4', 'n5'].map((n) => next.add(n)))
    const done = await next.completeIngress()
    expect(done?.created).toBe(true)
    expect([...api.sandboxes].sort()).toEqual(names(5))
    expect(api.labels).toEqual({})
  })

  it("a node whose engine lost the ingress set-up race is nudged with a label change (an unchanged re-update is ignored), and the label goes once done", async () => {
    const api = new FakeSwarm(names(4))
    api.setupRace.add('n2')
    api.setupRace.add('n4')
    let clock = 0
    const f = new SwarmFormation({...formationOptions(api), deferIngress: true, now: () => clock, sleep: async (ms: number) => void (clock += ms)})
    await Promise.all(names(4).map((n) => f.add(n)))
    const done = await f.completeIngress()
    expect(done!.notReady).toEqual(new Map())
    expect([...api.sandboxes].sort()).toEqual(names(4))
    // One nudge each, after INGRESS_RETOUCH_MS, then the label removed; the others were touched once.
    expect(api.calls.filter((c) => c.startsWith('update:n2:'))).toEqual(['update:n2:', `update:n2:${INGRESS_NUDGE_LABEL}=1`, `update:n2:${INGRESS_NUDGE_LABEL}=`])
    expect(api.calls.filter((c) => c.startsWith('update:n3:'))).toEqual(['update:n3:'])
    expect([...api.nodes_.values()].map((n) => n.labels)).toEqual([{}, {}, {}, {}])
    expect(api.labels).toEqual({})
    expect(clock).toBeGreaterThan(INGRESS_RETOUCH_MS)
  })

  it('a node that stays unbuilt is nudged at most INGRESS_NUDGES times, then named at the deadline', async () => {
    const api = new FakeSwarm(names(3))
    api.noSandbox.add('n3')
    let clock = 0
    const f = new SwarmFormation({...formationOptions(api), deferIngress: true, now: () => clock, sleep: async (ms: number) => void (clock += ms)})
    await Promise.all(names(3).map((n) => f.add(n)))
    const done = await f.completeIngress({timeoutMs: 10 * INGRESS_RETOUCH_MS})
    expect([...done!.notReady.keys()]).toEqual(['n3'])
    expect(api.calls.filter((c) => c.startsWith(`update:n3:${INGRESS_NUDGE_LABEL}=`) && !c.endsWith('='))).toHaveLength(INGRESS_NUDGES)
    expect(api.nodes_.get([...api.nodes_.values()].find((n) => n.hostname === 'n3')!.id)!.labels).toEqual({})
    expect(api.labels).toEqual({'belt.ingress': 'deferred'})
  })

  it('a nudge label left by a run cut off before its end is removed by the run that completes the ingress', async () => {
    const api = new FakeSwarm(names(3))
    const first = new SwarmFormation({...formationOptions(api), deferIngress: true})
    await Promise.all(names(3).map((n) => first.add(n)))
    // What the cut-off run left: the swarm still deferred, and one node with its nudge label.
    const n2 = [...api.nodes_.values()].find((n) => n.hostname === 'n2')!
    n2.labels = {[INGRESS_NUDGE_LABEL]: '1', keep: 'me'}
    const next = new SwarmFormation({...formationOptions(api), deferIngress: true, existing: {clusterId: api.clusterId, managers: ['n1']}})
    const done = await next.completeIngress()
    expect(done!.notReady).toEqual(new Map())
    expect(n2.labels).toEqual({keep: 'me'})
    expect(api.labels).toEqual({})
  })

  it('while no node has built its sandbox, none is nudged (every build slow is not a stuck node)', async () => {
    const api = new FakeSwarm(names(3))
    for (const n of names(3)) api.noSandbox.add(n)
    let clock = 0
    const f = new SwarmFormation({...formationOptions(api), deferIngress: true, now: () => clock, sleep: async (ms: number) => void (clock += ms)})
    await Promise.all(names(3).map((n) => f.add(n)))
    const done = await f.completeIngress({timeoutMs: 10 * INGRESS_RETOUCH_MS})
    expect([...done!.notReady.keys()].sort()).toEqual(names(3))
    expect(api.calls.filter((c) => c.includes(INGRESS_NUDGE_LABEL))).toEqual([])
  })

  it('a node that never builds its ingress sandbox is named, and the label stays for the next run', async () => {
    const api = new FakeSwarm(names(4))
    api.noSandbox.add('n3')
    const f = new SwarmFormation({...formationOptions(api), deferIngress: true})
    await Promise.all(names(4).map((n) => f.add(n)))
    const done = await f.completeIngress({timeoutMs: 1})
    expect([...done!.notReady.keys()]).toEqual(['n3'])
    expect(done!.notReady.get('n3')).toMatch(/sandbox not built/)
    expect(api.labels).toEqual({'belt.ingress': 'deferred'})
  })

  it('--no-ingress never makes an ingress afterwards', async () => {
    const api = new FakeSwarm(names(3))
    const f = new SwarmFormation({...formationOptions(api), noIngress: true, deferIngress: true})
    await Promise.all(names(3).map((n) => f.add(n)))
    expect(await f.completeIngress()).toBeUndefined()
    expect(api.ingress).toBe(false)
    expect(api.calls).not.toContain('create-ingress')
  })

  it('grows an existing swarm without a second init, counting its managers', async () => {
    const api = new FakeSwarm(names(6))
    await formation(api, {managers: 1}).add('n1')
    const f = formation(api, {managers: 3, existing: {clusterId: api.clusterId, managers: ['n1']}})
    const results = await Promise.all(['n2', 'n3', 'n4', 'n5'].map((n) => f.add(n)))
    expect(results.map((r) => r.role)).toEqual(['manager', 'manager', 'worker', 'worker'])
    expect(api.calls.filter((c) => c.startsWith('init'))).toHaveLength(1)
  })
})
