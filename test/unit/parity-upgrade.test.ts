import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {HostOutcome} from '../../src/services/create-hosts.js'
import {upgradeHosts, type UpgradeSteps} from '../../src/services/upgrade.js'
import {Store} from '../../src/store/store.js'
import {SCHEMA_VERSION, type HostRecord} from '../../src/store/types.js'
import type {EngineEndpoint, SwarmApi, SwarmNode} from '../../src/swarm/api.js'
import type {Reporter} from '../../src/ui/reporter.js'

let dir: string
let store: Store
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-parity-upgrade-'))
  store = new Store(path.join(dir, 'store'))
  await mkdir(path.join(store.dir, 'hosts'), {recursive: true, mode: 0o700})
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

/** A bootstrapped host record, in a swarm when `role` is given. */
async function host(name: string, n: number, role?: 'manager' | 'worker'): Promise<HostRecord> {
  const r: HostRecord = {
    schemaVersion: SCHEMA_VERSION,
    name,
    cluster: 'default',
    driver: 'local',
    driverOptions: {},
    phase: role ? 'joined' : 'bootstrapped',
    machine: {id: name, address: `192.0.2.${n}`, ssh: {user: 'root', port: 22}, data: {}},
    resources: [],
    times: {},
    engine: {url: `tcp://192.0.2.${n}:2376`, id: `E${n}`, name, serverVersion: '20.10.24', labels: [], config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []}},
    ...(role ? {swarm: {nodeId: `node-${name}`, role, clusterId: 'C1'}} : {}),
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  }
  await writeFile(store.recordFile(name), JSON.stringify(r))
  return r
}

/**
 * The swarm of a few nodes seen through its managers; records every call as `verb:via:node` in one
 * log shared with the engine steps, and fails on any call the upgrade must not make.
 */
class FakeCluster implements SwarmApi {
  readonly log: string[] = []
  readonly nodes_ = new Map<string, SwarmNode>()
  /** Tasks left on a node after each runningTasks call (counts down). */
  tasks = new Map<string, number>()
  /** Nodes that come back Ready only after this many node list calls once restarted. */
  down = new Map<string, number>()
  failUpgrade = new Set<string>()
  add(name: string, role: 'manager' | 'worker', availability: SwarmNode['availability'] = 'active') {
    this.nodes_.set(`node-${name}`, {id: `node-${name}`, version: 1, hostname: name, role, availability, state: 'ready', leader: role === 'manager', labels: {}})
  }
  async nodes(m: EngineEndpoint): Promise<SwarmNode[]> {
    for (const [id, left] of this.down) {
      if (left <= 0) {
        this.down.delete(id)
        this.nodes_.get(id)!.state = 'ready'
      } else this.down.set(id, left - 1)
    }
    return [...this.nodes_.values()].map((n) => ({...n, labels: {...n.labels}}))
  }
  async updateNode(m: EngineEndpoint, node: SwarmNode, change: {availability?: SwarmNode['availability']; role?: 'manager' | 'worker'}): Promise<void> {
    if (change.role) throw new Error('fake: the upgrade never changes roles')
    const n = this.nodes_.get(node.id)!
    if (node.version !== n.version) throw new Error('fake: update with an old version')
    n.availability = change.availability!
    n.version++
    this.log.push(`${change.availability}:${m.name}:${n.hostname}`)
  }
  async info(): Promise<never> {
    throw new Error('fake: unexpected info')
  }
  async init(): Promise<never> {
    throw new Error('fake: unexpected init')
  }
  async tokens(): Promise<never> {
    throw new Error('fake: unexpected tokens')
  }
  async join(): Promise<never> {
    throw new Error('fake: unexpected join')
  }
  async leave(): Promise<never> {
    throw new Error('fake: unexpected leave')
  }
  async removeNode(): Promise<never> {
    throw new Error('fake: unexpected removeNode')
  }
  async removeIngress(): Promise<never> {
    throw new Error('fake: unexpected removeIngress')
  }
  steps(): UpgradeSteps {
    return {
      swarm: this,
      runningTasks: async (m, id) => {
        const left = this.tasks.get(id) ?? 0
        this.log.push(`tasks:${m.name}:${this.nodes_.get(id)!.hostname}=${left}`)
        if (this.nodes_.get(id)!.availability !== 'drain') throw new Error('fake: waiting for tasks of a node that is not drained')
        this.tasks.set(id, Math.max(0, left - 1))
        return left
      },
      upgradeEngine: async (r) => {
        this.log.push(`upgrade:${r.name}`)
        if (this.failUpgrade.has(r.name)) throw new Error('apt-get exited 100')
        const n = this.nodes_.get(`node-${r.name}`)
        if (n) {
          n.state = 'down'
          this.down.set(n.id, 2)
        }
      },
      bootstrap: async (name): Promise<HostOutcome> => {
        this.log.push(`bootstrap:${name}`)
        return {name, ok: true, phase: 'joined'}
      },
    }
  }
}

const lines: string[] = []
const reporter: Reporter = {host: (n, m) => lines.push(`${n}: ${m}`), info: (m) => lines.push(m), warn: (m) => lines.push(`Warning: ${m}`)}
beforeEach(() => void (lines.length = 0))

describe('upgradeHosts', () => {
  it('a swarm worker: drained through a manager, its tasks awaited, upgraded, bootstrapped, Ready, then active again', async () => {
    await host('m1', 1, 'manager')
    const w = await host('w1', 2, 'worker')
    const c = new FakeCluster()
    c.add('m1', 'manager')
    c.add('w1', 'worker')
    c.tasks.set('node-w1', 2)
    const out = await upgradeHosts({store, hosts: [w], reporter, steps: c.steps(), pollMs: 1})
    expect(out).toMatchObject([{name: 'w1', ok: true}])
    expect(c.log).toEqual(['drain:m1:w1', 'tasks:m1:w1=2', 'tasks:m1:w1=1', 'tasks:m1:w1=0', 'upgrade:w1', 'bootstrap:w1', 'active:m1:w1'])
    expect(c.nodes_.get('node-w1')).toMatchObject({availability: 'active', state: 'ready'})
    expect(lines.filter((l) => l.startsWith('w1: ')).map((l) => l.replace(/ \(\d.*\)$/, ''))).toEqual([
      'w1: drained (through m1)',
      'w1: waiting for 2 tasks to move off the node',
      'w1: upgrading and restarting the engine',
      'w1: Ready in the swarm again',
      'w1: active again',
      'w1: upgraded: engine 20.10.24',
    ])
  })

  it('a manager is drained through another manager; the sole manager through itself', async () => {
    const m1 = await host('m1', 1, 'manager')
    const m2 = await host('m2', 2, 'manager')
    const c = new FakeCluster()
    c.add('m1', 'manager')
    c.add('m2', 'manager')
    await upgradeHosts({store, hosts: [m1, m2], reporter, steps: c.steps(), pollMs: 1})
    expect(c.log.filter((l) => /^(drain|active)/.test(l))).toEqual(['drain:m2:m1', 'active:m2:m1', 'drain:m1:m2', 'active:m1:m2'])

    const c2 = new FakeCluster()
    c2.add('m1', 'manager')
    await rm(store.recordFile('m2'))
    await upgradeHosts({store, hosts: [m1], reporter, steps: c2.steps(), pollMs: 1})
    expect(c2.log.filter((l) => /^(drain|active)/.test(l))).toEqual(['drain:m1:m1', 'active:m1:m1'])
  })

  it('a node the operator had drained is upgraded and left drained', async () => {
    await host('m1', 1, 'manager')
    const w = await host('w1', 2, 'worker')
    const c = new FakeCluster()
    c.add('m1', 'manager')
    c.add('w1', 'worker', 'drain')
    const out = await upgradeHosts({store, hosts: [w], reporter, steps: c.steps(), pollMs: 1})
    expect(out[0]!.ok).toBe(true)
    expect(c.log).toEqual(['tasks:m1:w1=0', 'upgrade:w1', 'bootstrap:w1'])
    expect(c.nodes_.get('node-w1')!.availability).toBe('drain')
  })

  it('a host outside any swarm: upgraded and bootstrapped, no swarm call', async () => {
    const h = await host('solo', 3)
    const c = new FakeCluster()
    const out = await upgradeHosts({store, hosts: [h], reporter, steps: c.steps(), pollMs: 1})
    expect(out[0]!.ok).toBe(true)
    expect(c.log).toEqual(['upgrade:solo', 'bootstrap:solo'])
  })

  it('the first failure stops the run: that node stays drained (the error says how to reactivate it), later hosts are not touched', async () => {
    await host('m1', 1, 'manager')
    const w1 = await host('w1', 2, 'worker')
    const w2 = await host('w2', 3, 'worker')
    const c = new FakeCluster()
    c.add('m1', 'manager')
    c.add('w1', 'worker')
    c.add('w2', 'worker')
    c.failUpgrade.add('w1')
    const out = await upgradeHosts({store, hosts: [w1, w2], reporter, steps: c.steps(), pollMs: 1})
    expect(out.map((o) => o.ok)).toEqual([false, false])
    expect(out[0]!.error).toMatch(/^apt-get exited 100; the node is left drained: reactivate it with docker node update --availability active w1$/)
    expect(out[1]!.error).toBe('not upgraded: the upgrade stopped at w1')
    expect(c.log).toEqual(['drain:m1:w1', 'tasks:m1:w1=0', 'upgrade:w1'])
    expect(c.nodes_.get('node-w1')!.availability).toBe('drain')
    expect(c.nodes_.get('node-w2')!.availability).toBe('active')
  })

  it('a node that never comes back Ready fails with the last state seen and is not reactivated', async () => {
    await host('m1', 1, 'manager')
    const w = await host('w1', 2, 'worker')
    const c = new FakeCluster()
    c.add('m1', 'manager')
    c.add('w1', 'worker')
    const steps = c.steps()
    const up = steps.upgradeEngine
    steps.upgradeEngine = async (r) => {
      await up(r)
      c.down.set('node-w1', Number.MAX_SAFE_INTEGER)
    }
    const out = await upgradeHosts({store, hosts: [w], reporter, steps, pollMs: 1, readyTimeoutMs: 30})
    expect(out[0]!.error).toMatch(/^the node was not Ready in the swarm within 0\.03 s \(last: down\); the node is left drained/)
    expect(c.log.at(-1)).toBe('bootstrap:w1')
  })

  it('a host without an engine fails before anything is done to it', async () => {
    const h = {...(await host('raw', 4)), engine: undefined}
    const c = new FakeCluster()
    const out = await upgradeHosts({store, hosts: [h], reporter, steps: c.steps(), pollMs: 1})
    expect(out[0]!.error).toMatch(/has no engine yet .* belt provision raw/)
    expect(c.log).toEqual([])
  })
})
