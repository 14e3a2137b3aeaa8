import {existsSync} from 'node:fs'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {InterruptedError} from '../../src/scheduler/interrupt.js'
import {createHosts, type CreateHostsRequest} from '../../src/services/create-hosts.js'
import {resolveDriverOptions} from '../../src/services/driver-context.js'
import {listHosts} from '../../src/services/list-hosts.js'
import {powerHosts} from '../../src/services/power.js'
import {removeHosts} from '../../src/services/remove-hosts.js'
import {selectHosts} from '../../src/services/select-hosts.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'
import {FakeDriver, fakeRegistry} from '../fakes/fake-driver.js'

let dir: string
let store: Store
let fake: FakeDriver
let reg: ReturnType<typeof fakeRegistry>

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-svc-'))
  store = new Store(path.join(dir, 'store'))
  fake = new FakeDriver()
  reg = fakeRegistry(fake)
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const create = (selection: CreateHostsRequest['selection'], extra: Partial<CreateHostsRequest> = {}) =>
  createHosts({
    store,
    driver: reg.entry,
    options: {token: 'sekrit-token', size: 's1'},
    persistable: {size: 's1'},
    selection,
    cluster: 'default',
    concurrency: 3,
    reporter: silentReporter,
    ...extra,
  })

describe('createHosts', () => {
  it('creates every host through a bounded pool, preflights once, records machines and pinned keys', async () => {
    const out = await create({patterns: ['node[1:7]']})
    expect(out.map((o) => o.ok)).toEqual(Array(7).fill(true))
    expect(fake.calls.filter((c) => c === 'preflight')).toHaveLength(1)
    expect(fake.peakInFlight).toBeLessThanOrEqual(3)
    const r = await store.get('node4')
    expect(r.phase).toBe('created')
    expect(r.machine?.address).toMatch(/^192\.0\.2\./)
    expect(r.hostKeys?.[0]).toMatch(/^ssh-ed25519 AAAAfake/)
    expect(r.owner).toBeUndefined()
    expect(r.resources.map((x) => x.kind)).toEqual(['fake-vm'])
    expect(r.times.createRequested).toBeDefined()
  })

  it('never writes a secret option to the store', async () => {
    await create({patterns: ['node1']})
    const text = JSON.stringify(await store.get('node1'))
    expect(text).not.toContain('sekrit-token')
    expect(text).toContain('"size":"s1"')
  })

  it('creates the cluster SSH key once, private at 0600', async () => {
    await create({patterns: ['a1']})
    await create({patterns: ['a2']})
    const key = path.join(store.keysDir('default'), 'id_ed25519')
    expect((await stat(key)).mode & 0o777).toBe(0o600)
    expect((await stat(path.dirname(key))).mode & 0o777).toBe(0o700)
  })

  it('reports a failed host without hiding the others, and keeps its error in the record', async () => {
    fake.failCreate.add('node2')
    const out = await create({patterns: ['node[1:3]']})
    expect(out.map((o) => [o.name, o.ok])).toEqual([
      ['node1', true],
      ['node2', false],
      ['node3', true],
    ])
    expect(out[1]!.error).toMatch(/quota exceeded for node2/)
    const r = await store.get('node2')
    expect(r.phase).toBe('error')
    expect(r.error?.message).toMatch(/quota exceeded/)
    expect(r.resources).toEqual([]) // the driver cleaned up and journaled the deletion
  })

  it('resumes a failed host on the next run instead of refusing its name', async () => {
    fake.failCreate.add('node2')
    await create({patterns: ['node[1:2]']})
    fake.failCreate.clear()
    // Another selection that takes a finished host is refused...
    await expect(create({patterns: ['node[1:3]']})).rejects.toThrow(/node1 already exists/)
    // ...the same command finishes its batch: node1 is skipped, node2 created, nothing else.
    const out = await create({patterns: ['node[1:2]']})
    expect(out.map((o) => [o.name, o.ok, o.already ?? false])).toEqual([
      ['node1', true, true],
      ['node2', true, false],
    ])
    // Creates run concurrently: their order is not part of the contract.
    expect(fake.calls.filter((c) => c.startsWith('create:')).sort()).toEqual(['create:node1', 'create:node2', 'create:node2'])
    expect((await store.get('node2')).phase).toBe('created')
    // Once complete, the same command again refuses the existing names.
    await expect(create({patterns: ['node[1:2]']})).rejects.toThrow(/already exist/)
  })

  it('the same --count command after a Ctrl-C finishes that batch and adds no host; a complete batch then adds N', async () => {
    const ac = new AbortController()
    const realCreate = fake.create.bind(fake)
    // Ctrl-C while node2 is being created: node1 and node2 finish (in flight), the rest never start.
    fake.create = async (spec, ctx) => {
      if (spec.name === 'node2') ac.abort(new InterruptedError())
      return realCreate(spec, ctx)
    }
    const first = await create({count: 6, prefix: 'node'}, {concurrency: 2, signal: ac.signal})
    expect(first.filter((o) => o.ok).map((o) => o.name)).toEqual(['node1', 'node2'])
    expect(first.filter((o) => o.interrupted).map((o) => [o.name, o.phase])).toEqual([
      ['node3', 'reserved'],
      ['node4', 'reserved'],
      ['node5', 'reserved'],
      ['node6', 'reserved'],
    ])
    fake.create = realCreate
    const again = await create({count: 6, prefix: 'node'})
    expect(again.map((o) => o.name)).toEqual(['node1', 'node2', 'node3', 'node4', 'node5', 'node6'])
    expect(again.every((o) => o.ok)).toBe(true)
    expect((await store.list()).records.map((r) => r.name)).toEqual(['node1', 'node2', 'node3', 'node4', 'node5', 'node6'])
    expect(fake.hosts.size).toBe(6)
    // The batch is complete: the same command now adds six more.
    const more = await create({count: 6, prefix: 'node'})
    expect(more.map((o) => o.name)).toEqual(['node7', 'node8', 'node9', 'node10', 'node11', 'node12'])
  })

  it('refuses to finish an interrupted host with another value of a pinned option (where it lives)', async () => {
    await create({patterns: ['node1']})
    await store.update('node1', (r) => {
      r.phase = 'creating'
      r.machine = undefined
    })
    const pinned = {...reg.entry, options: reg.entry.options.map((o) => (o.name === 'size' ? {...o, pinned: true} : o))}
    const calls = fake.calls.length
    await expect(create({patterns: ['node1']}, {driver: pinned, options: {token: 't', size: 's2'}, persistable: {size: 's2'}})).rejects.toThrow(/node1 was started with --fake-size s1, but this run says s2/)
    expect(fake.calls.slice(calls)).toEqual([])
  })

  it('hands what an interrupted create left to the driver (leftovers), which adopts or replaces it', async () => {
    const seen: Array<[string, unknown]> = []
    const realCreate = fake.create.bind(fake)
    const ac = new AbortController()
    fake.create = async (spec, ctx) => {
      seen.push([spec.name, spec.leftovers])
      if (spec.name === 'node1' && !spec.leftovers) {
        // The cloud made the resource and Belt journaled it, then the operator pressed Ctrl-C.
        await ctx.journal({kind: 'fake-vm', id: 'fake-left', action: 'created'})
        ac.abort(new InterruptedError())
        throw new Error('interrupted while starting', {cause: ac.signal.reason})
      }
      return realCreate(spec, ctx)
    }
    const first = await create({patterns: ['node1']}, {signal: ac.signal})
    expect(first[0]).toMatchObject({name: 'node1', ok: false, interrupted: true})
    const rec = await store.get('node1')
    expect(rec.phase).toBe('creating')
    expect(rec.resources.map((r) => r.id)).toEqual(['fake-left'])
    await create({patterns: ['node1']})
    expect(seen).toEqual([
      ['node1', undefined],
      ['node1', [{kind: 'fake-vm', id: 'fake-left'}]],
    ])
  })

  it('refuses existing names before touching the driver', async () => {
    await create({patterns: ['node[1:2]']})
    fake.forbidCalls = true
    fake.calls.length = 0
    const err = await create({patterns: ['node2', 'node3']}).catch((e) => e)
    expect(err).toBeInstanceOf(UserError)
    expect(err.message).toMatch(/node2 already exists/)
    expect(err.hint).toMatch(/belt rm node2/)
    expect(fake.calls).toEqual([])
    expect(await store.tryGet('node3')).toBeUndefined()
  })

  it('refuses a bad pattern before any driver call', async () => {
    fake.forbidCalls = true
    await expect(create({patterns: ['node[5:1]']})).rejects.toThrow(/counts down/)
    await expect(create({patterns: ['bad_name!']})).rejects.toThrow(/not a valid host name/)
    expect(fake.calls).toEqual([])
  })

  it('reserves nothing when preflight fails', async () => {
    await expect(create({patterns: ['node1']}, {options: {token: 'bad'}})).rejects.toThrow(/token rejected/)
    expect((await store.list()).records).toEqual([])
  })

  it('creates nothing at all, not even the store directory, when preflight refuses the options', async () => {
    await expect(create({patterns: ['node1']}, {options: {token: 'bad'}})).rejects.toThrow(/token rejected/)
    expect(fake.calls).toEqual(['preflight'])
    expect(existsSync(store.dir)).toBe(false)
  })

  it('creates nothing when a name is bad, and never calls the driver', async () => {
    fake.forbidCalls = true
    await expect(create({patterns: ['node1', 'BAD!']})).rejects.toMatchObject({code: 'E_NAME_INVALID', exit: 2})
    await expect(create({count: 2, prefix: 'Bad_'})).rejects.toMatchObject({code: 'E_NAME_INVALID', exit: 2})
    expect(fake.calls).toEqual([])
    expect(existsSync(store.dir)).toBe(false)
  })

  it('--count continues numbering after the existing hosts', async () => {
    await create({patterns: ['node1', 'node5']})
    const out = await create({count: 3, prefix: 'node'})
    expect(out.map((o) => o.name)).toEqual(['node6', 'node7', 'node8'])
  })
})

describe('removeHosts', () => {
  it('removes resources then records, and the cluster resources after the last host', async () => {
    await create({patterns: ['node[1:3]']})
    const hosts = await selectHosts(store, ['node[1:2]'])
    let out = await removeHosts({store, hosts, force: false, concurrency: 2, reporter: silentReporter, drivers: reg.lookup})
    expect(out.every((o) => o.ok)).toBe(true)
    expect(fake.hosts.size).toBe(1)
    expect(fake.clustersRemoved).toEqual([])
    out = await removeHosts({store, hosts: await selectHosts(store, ['node3']), force: false, concurrency: 2, reporter: silentReporter, drivers: reg.lookup})
    expect(out[0]!.ok).toBe(true)
    expect(fake.clustersRemoved).toEqual(['default'])
    expect((await store.list()).records).toEqual([])
  })

  it('removes a host an interrupted create left (no machine, a journaled resource) through removeLeftovers', async () => {
    await create({patterns: ['node1']})
    await store.update('node1', (r) => {
      r.phase = 'creating'
      r.machine = undefined
      r.resources = [{kind: 'fake-vm', id: 'fake-1', at: new Date().toISOString()}]
    })
    const out = await removeHosts({store, hosts: [await store.get('node1')], force: false, concurrency: 2, reporter: silentReporter, drivers: reg.lookup})
    expect(out[0]!.ok).toBe(true)
    expect(fake.calls).toContain('removeLeftovers:node1')
    expect(fake.hosts.size).toBe(0)
    expect(await store.tryGet('node1')).toBeUndefined()
  })

  it('--force that drops a record whose resource may exist says so and lists the ids', async () => {
    await create({patterns: ['node1']})
    fake.failRemove.add('node1')
    const warnings: string[] = []
    const out = await removeHosts({store, hosts: [await store.get('node1')], force: true, concurrency: 2, reporter: {...silentReporter, warn: (m) => warnings.push(m)}, drivers: reg.lookup})
    expect(out[0]!.ok).toBe(true)
    expect(warnings.join('\n')).toMatch(/may still exist.*fake fake-1.*fake-vm fake-1/)
  })

  it('keeps the record with its error when the driver fails, unless --force', async () => {
    await create({patterns: ['node1']})
    fake.failRemove.add('node1')
    const hosts = await selectHosts(store, ['node1'])
    const out = await removeHosts({store, hosts, force: false, concurrency: 1, reporter: silentReporter, drivers: reg.lookup})
    expect(out[0]).toMatchObject({ok: false, error: expect.stringMatching(/cannot remove node1/)})
    expect((await store.get('node1')).error?.phase).toBe('removing')
    const forced = await removeHosts({store, hosts, force: true, concurrency: 1, reporter: silentReporter, drivers: reg.lookup})
    expect(forced[0]!.ok).toBe(true)
    expect(await store.tryGet('node1')).toBeUndefined()
  })

  it('selectHosts refuses an unknown name with exit 3 and changes nothing', async () => {
    await create({patterns: ['node1']})
    await expect(selectHosts(store, ['node1', 'nosuch'])).rejects.toMatchObject({exit: 3, message: expect.stringMatching(/no host named nosuch/)})
    expect(fake.hosts.size).toBe(1)
  })
})

describe('listHosts and powerHosts', () => {
  it('shows live state and follows stop/start through the optional capabilities', async () => {
    await create({patterns: ['node[1:2]']})
    let {hosts} = await listHosts(store, {drivers: reg.lookup})
    expect(hosts.map((h) => h.state)).toEqual(['Running', 'Running'])
    const sel = await selectHosts(store, ['node1'])
    await powerHosts({store, hosts: sel, action: 'stop', concurrency: 2, reporter: silentReporter, drivers: reg.lookup})
    ;({hosts} = await listHosts(store, {drivers: reg.lookup}))
    expect(hosts.map((h) => h.state)).toEqual(['Stopped', 'Running'])
    await powerHosts({store, hosts: sel, action: 'start', concurrency: 2, reporter: silentReporter, drivers: reg.lookup})
    expect((await store.get('node1')).machine?.data.boots).toBe(1)
  })

  it('refuses an action the driver does not have, before changing anything', async () => {
    await create({patterns: ['node1']})
    fake.calls.length = 0
    const sel = await selectHosts(store, ['node1'])
    await expect(powerHosts({store, hosts: sel, action: 'kill', concurrency: 1, reporter: silentReporter, drivers: reg.lookup})).rejects.toThrow(
      /fake driver cannot kill hosts/,
    )
    expect(fake.calls).toEqual([])
  })

  it("reports a host whose resource vanished as 'Missing'", async () => {
    await create({patterns: ['node1']})
    fake.hosts.clear()
    const {hosts} = await listHosts(store, {drivers: reg.lookup})
    expect(hosts[0]!.state).toBe('Missing')
  })
})

describe('resolveDriverOptions', () => {
  it('takes flag, then env, then persisted, then default; never persists secrets; names missing required ones', () => {
    const entry = {
      ...reg.entry,
      options: [
        {name: 'token', description: 'secret', env: 'T', secret: true, required: true},
        {name: 'region', description: 'region', env: 'R', default: 'nyc1'},
        {name: 'size', description: 'size'},
      ],
    }
    expect(resolveDriverOptions(entry, {region: 'ams3'}, {size: 'x'}, {T: 'tok'})).toEqual({
      options: {token: 'tok', region: 'ams3', size: 'x'},
      persistable: {region: 'ams3', size: 'x'},
      missing: [],
    })
    expect(resolveDriverOptions(entry, {}, {}, {}).missing).toEqual(['token'])
    expect(resolveDriverOptions(entry, {}, {}, {R: 'sfo3'}).options.region).toBe('sfo3')
  })
})

describe('createHosts with a driver that creates in batches', () => {
  it('uses createMany in batches of the entry size, persists each host, and a failed host fails alone', async () => {
    const batches: string[][] = []
    const many = Object.assign(fake, {
      async createMany(specs: readonly {name: string; cluster: {name: string; sshPublicKey: string}; options: Record<string, string | undefined>}[], ctx: Parameters<FakeDriver['create']>[1]) {
        batches.push(specs.map((s) => s.name))
        // The contract: journal entries of a batch name their host.
        return Promise.all(specs.map((s) => fake.create(s, {...ctx, journal: (e) => ctx.journal({...e, host: s.name})}).catch((e: Error) => e)))
      },
    })
    fake.failCreate.add('node5')
    const entry = {...reg.entry, createBatchSize: 3, load: async () => many}
    const out = await create({patterns: ['node[1:7]']}, {driver: entry, concurrency: 6})
    expect([...batches].sort((a, b) => a[0]!.localeCompare(b[0]!, 'en', {numeric: true}))).toEqual([
      ['node1', 'node2', 'node3'],
      ['node4', 'node5', 'node6'],
      ['node7'],
    ])
    expect(out.filter((o) => !o.ok).map((o) => o.name)).toEqual(['node5'])
    expect((await store.get('node5')).phase).toBe('error')
    expect((await store.get('node6')).phase).toBe('created')
    // Journal entries made through the batch context land on the right host's record.
    expect((await store.get('node6')).resources.map((r) => r.kind)).toEqual(['fake-vm'])
  })
})
