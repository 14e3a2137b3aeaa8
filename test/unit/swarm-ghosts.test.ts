import {describe, expect, it} from 'vitest'
import type {SwarmNode} from '../../src/swarm/api.js'
import {SwarmFormation} from '../../src/swarm/formation.js'
import {classifyNodes, GHOST_MIN_AGE_MS, removeGhosts, RUN_CLOCK_MARGIN_MS, type GhostContext} from '../../src/swarm/ghosts.js'
import {FakeSwarm} from '../fakes/fake-swarm.js'

const NOW = Date.parse('2026-12-02T16:00:00Z')
const RUN = NOW - 120_000 // this run's first join started 2 minutes ago
const at = (msBeforeNow: number) => new Date(NOW - msBeforeNow).toISOString()

/** A node entry; `hostname: undefined` is an entry that never reported one. */
function node(id: string, state: string, hostname: string | undefined, createdMsAgo = 3_600_000, role: 'manager' | 'worker' = 'worker'): SwarmNode {
  return {id, version: 1, hostname: hostname ?? id, ...(hostname ? {} : {noHostname: true}), role, availability: 'active', state, leader: false, labels: {}, createdAt: at(createdMsAgo)}
}

const store = ['node1', 'node2', 'node3', 'node4']
const onDemand: GhostContext = {storeHosts: store, now: NOW}
const afterRun: GhostContext = {storeHosts: store, now: NOW, runJoinsSince: RUN}
const ready = [node('r1', 'ready', 'node1'), node('r2', 'ready', 'node2')]

type Want = {ghosts?: string[]; kept?: string[]; down?: string[]}

describe('classifyNodes', () => {
  it.each<[string, SwarmNode[], GhostContext, Want, RegExp?]>([
    // Made by this run's joins.
    ['no hostname, Unknown, created during the run: ghost', [node('a', 'unknown', undefined, 60_000)], afterRun, {ghosts: ['a']}, /this run's joins that never completed/],
    ['no hostname, Down, created during the run: ghost', [node('a', 'down', undefined, 1_000)], afterRun, {ghosts: ['a']}],
    ['no hostname, created just before the run (clock margin): ghost', [node('a', 'unknown', undefined, 120_000 + RUN_CLOCK_MARGIN_MS - 1_000)], afterRun, {ghosts: ['a']}],
    ['no hostname, created well before the run: kept for belt swarm prune', [node('a', 'unknown', undefined, 600_000)], afterRun, {kept: ['a']}, /before this run: belt swarm prune/],
    ['no hostname during the run while a failed host is still joining: kept', [node('a', 'unknown', undefined, 10_000)], {...afterRun, joining: ['node4']}, {kept: ['a']}, /join of node4/],
    ['a manager entry with no hostname made by the run: ghost', [node('a', 'unknown', undefined, 10_000, 'manager')], afterRun, {ghosts: ['a']}],
    // On demand (belt swarm status / prune).
    ['on demand, no hostname, Unknown, older than a minute: ghost', [node('a', 'unknown', undefined, GHOST_MIN_AGE_MS)], onDemand, {ghosts: ['a']}, /join that never completed/],
    ['on demand, no hostname, younger than a minute: kept (may be registering)', [node('a', 'unknown', undefined, 10_000)], onDemand, {kept: ['a']}, /may be a join still registering/],
    ['on demand, no hostname, no creation time: kept', [{...node('a', 'unknown', undefined), createdAt: undefined}], onDemand, {kept: ['a']}],
    ['on demand while a store host is joining: kept', [node('a', 'unknown', undefined, 3_600_000)], {...onDemand, joining: ['node3']}, {kept: ['a']}, /node3/],
    ['no hostname but Disconnected: kept, not a ghost', [node('a', 'disconnected', undefined)], onDemand, {kept: ['a']}],
    // Entries with a hostname.
    ['a Down store host with no Ready twin: real Down, never removed', [node('d', 'down', 'node3')], onDemand, {down: ['d']}, /host node3 is down/],
    ['a Down store host, even right after a run: real Down', [node('d', 'down', 'node3', 1_000)], afterRun, {down: ['d']}],
    ['an Unknown store host with no twin: real (reported)', [node('d', 'unknown', 'node3')], onDemand, {down: ['d']}],
    ['a Down entry whose hostname is Ready under another ID: ghost', [node('old', 'down', 'node2')], onDemand, {ghosts: ['old']}, /old entry of node2, which is Ready as node r2/],
    ['an Unknown entry whose hostname is Ready under another ID: ghost', [node('old', 'unknown', 'node1')], afterRun, {ghosts: ['old']}],
    ['a Disconnected entry with a Ready twin: reported, not removed', [node('old', 'disconnected', 'node1')], onDemand, {down: ['old']}],
    ['a Down node that is not a host of the store: reported, not removed', [node('x', 'down', 'elsewhere')], onDemand, {down: ['x']}, /not a host of the store/],
  ])('%s', (_title, extra, ctx, want, why) => {
    const c = classifyNodes([...ready, ...extra], ctx)
    expect(c.ready.map((v) => v.node.id)).toEqual(['r1', 'r2'])
    expect(c.ghosts.map((v) => v.node.id)).toEqual(want.ghosts ?? [])
    expect(c.kept.map((v) => v.node.id)).toEqual(want.kept ?? [])
    expect(c.down.map((v) => v.node.id)).toEqual(want.down ?? [])
    if (why) expect([...c.ghosts, ...c.kept, ...c.down].map((v) => v.why).join('\n')).toMatch(why)
  })

  it('17 ghosts among 100 Ready nodes: 100 Ready, 0 Down, 17 ghosts', () => {
    const nodes = [
      ...Array.from({length: 100}, (_, i) => node(`r${i}`, 'ready', `node${i + 1}`)),
      ...Array.from({length: 17}, (_, i) => node(`g${i}`, 'unknown', undefined, 30_000)),
    ]
    const c = classifyNodes(nodes, {storeHosts: nodes.slice(0, 100).map((n) => n.hostname), now: NOW, runJoinsSince: RUN})
    expect([c.ready.length, c.down.length, c.ghosts.length, c.kept.length]).toEqual([100, 0, 17, 0])
  })

  it('names the store host of a real Down node', () => {
    const c = classifyNodes([node('d', 'down', 'node4')], onDemand)
    expect(c.down[0]!.host).toBe('node4')
  })
})

describe('removeGhosts', () => {
  it('removes with force through a manager, demoting a Raft member first, and reports what failed', async () => {
    const calls: string[] = []
    const api = {
      async removeNode(_m: unknown, id: string, force: boolean) {
        calls.push(`rm:${id}:${force}`)
        if (id === 'mgr' && !calls.includes('demote:mgr')) throw new Error('node mgr is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal')
        if (id === 'bad') throw new Error('rpc error: code = Unavailable')
      },
      async updateNode(_m: unknown, n: SwarmNode, change: {role?: string}) {
        calls.push(`demote:${n.id}`)
        expect(change).toEqual({role: 'worker'})
      },
    }
    const verdict = (n: SwarmNode) => ({node: n, why: 'x'})
    const r = await removeGhosts(api as never, {name: 'node1', address: '10.0.0.1', port: 2376}, [
      verdict(node('g1', 'unknown', undefined)),
      verdict(node('mgr', 'down', 'node2', 0, 'manager')),
      verdict(node('bad', 'unknown', undefined)),
    ])
    expect(calls).toEqual(['rm:g1:true', 'rm:mgr:true', 'demote:mgr', 'rm:mgr:true', 'rm:bad:true'])
    expect(r.removed.map((v) => v.node.id)).toEqual(['g1', 'mgr'])
    expect(r.failed.map((v) => [v.node.id, v.error])).toEqual([['bad', 'rpc error: code = Unavailable']])
  })
})

describe('SwarmFormation.pruneGhosts (fake swarm)', () => {
  const names = (n: number) => Array.from({length: n}, (_, i) => `n${i + 1}`)
  function formation(api: FakeSwarm) {
    return new SwarmFormation({
      api,
      managers: 1,
      workerConcurrency: 4,
      managerAvailability: 'active',
      endpoint: (name) => ({name, address: `10.0.0.${name.slice(1)}`, port: 2376}),
      advertiseAddr: (name) => `10.0.0.${name.slice(1)}`,
      log: () => undefined,
      settleMs: 30,
      sleep: async () => undefined,
    })
  }

  it("removes the entries this run's joins left, keeps older ones and real Down hosts, touches no Ready node", async () => {
    const api = new FakeSwarm(names(6))
    api.ghostsOnJoin.set('n3', 2) // timed out twice in the background, then joined
    api.timeoutJoin.add('n3')
    api.ghostsOnJoin.set('n5', 1)
    api.abandonOnce.add('n5') // abandoned, reset and joined again
    const f = formation(api)
    const results = await Promise.all(names(5).map((n) => f.add(n)))
    expect(results.every((r) => r.ok)).toBe(true)
    const old = api.addAnonymous({createdAt: new Date(Date.now() - 3_600_000)}) // from an earlier run
    // n4's engine stopped after it joined: a real Down host.
    const n4 = [...api.nodes_.values()].find((n) => n.hostname === 'n4')!
    n4.state = 'down'
    const runGhosts = [...api.nodes_.values()].filter((n) => n.noHostname && n.id !== old).map((n) => n.id)
    expect(runGhosts).toHaveLength(3)

    const r = await f.pruneGhosts({storeHosts: names(6), failed: []})
    expect(r.removed.map((v) => v.node.id).sort()).toEqual(runGhosts.sort())
    expect(api.removed.sort()).toEqual(runGhosts.sort())
    expect(r.kept.map((v) => v.node.id)).toEqual([old])
    expect(api.nodes_.has(n4.id)).toBe(true)
    expect([...api.nodes_.values()].filter((n) => n.state === 'ready')).toHaveLength(4)
  })

  it('removes an old Down entry of a host that is Ready under another ID', async () => {
    const api = new FakeSwarm(names(3))
    const f = formation(api)
    await Promise.all(names(3).map((n) => f.add(n)))
    api.nodes_.set('old-n2', {id: 'old-n2', version: 1, hostname: 'n2', role: 'worker', availability: 'active', state: 'down', leader: false, labels: {}, createdAt: new Date(Date.now() - 86_400_000).toISOString()})
    const r = await f.pruneGhosts({storeHosts: names(3), failed: []})
    expect(r.removed.map((v) => v.node.id)).toEqual(['old-n2'])
  })

  it('keeps entries with no hostname while a host whose join failed still says it is joining', async () => {
    const api = new FakeSwarm(names(3))
    api.stuckPending.add('n3')
    const f = formation(api)
    const results = await Promise.all(names(3).map((n) => f.add(n)))
    expect(results.find((r) => r.name === 'n3')!.ok).toBe(false)
    const r = await f.pruneGhosts({storeHosts: names(3), failed: ['n3']})
    expect(r.removed).toEqual([])
    expect(r.kept).toHaveLength(1)
    expect(r.kept[0]!.why).toMatch(/join of n3/)
    expect(api.removed).toEqual([])
  })

  it('does nothing when the run joined nobody (no node list asked, nothing removed)', async () => {
    const api = new FakeSwarm(names(2))
    api.addAnonymous({createdAt: new Date(Date.now() - 3_600_000)})
    const f = formation(api)
    expect(await f.pruneGhosts({storeHosts: names(2), failed: []})).toEqual({removed: [], failed: [], kept: []})
    expect(api.removed).toEqual([])
  })
})
