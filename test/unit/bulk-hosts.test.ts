import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {MAX_CREATE_WINDOW, createWindow, findDriver} from '../../drivers/registry.js'
import {InterruptedError} from '../../src/scheduler/interrupt.js'
import {createHosts} from '../../src/services/create-hosts.js'
import {listHosts, liveState} from '../../src/services/list-hosts.js'
import {removeHosts} from '../../src/services/remove-hosts.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'
import {FakeBulkDriver, fakeRegistry} from '../fakes/fake-driver.js'

let dir: string
let store: Store
let fake: FakeBulkDriver
let reg: ReturnType<typeof fakeRegistry>

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-bulk-'))
  store = new Store(path.join(dir, 'store'))
  fake = new FakeBulkDriver()
  reg = fakeRegistry(fake)
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const make = async (patterns: string[]) => {
  await createHosts({store, driver: reg.entry, options: {token: 't', size: 's1'}, persistable: {size: 's1'}, selection: {patterns}, cluster: 'default', concurrency: 4, reporter: silentReporter})
  fake.calls.length = 0
}
const env = {FAKE_TOKEN: 't'}

describe('create window from the API budget', () => {
  it('is what half a minute of create requests makes, within a tenth of the hourly budget, capped', () => {
    expect(createWindow({perMinute: 250, perHour: 5000, hostsPerCreate: 10})).toBe(MAX_CREATE_WINDOW)
    expect(createWindow({perMinute: 250, perHour: 5000, hostsPerCreate: 1})).toBe(125)
    expect(createWindow({perMinute: 250, perHour: 500, hostsPerCreate: 1})).toBe(50)
    expect(createWindow({perMinute: 1, hostsPerCreate: 1})).toBe(1)
    expect(findDriver('digitalocean')!.createConcurrency).toBe(createWindow(findDriver('digitalocean')!.apiBudget!))
    expect(findDriver('amazonec2')!.createConcurrency).toBe(createWindow(findDriver('amazonec2')!.apiBudget!))
    // The window is in hosts and bigger than one create request: waits for boot hold no slot of the budget.
    expect(findDriver('digitalocean')!.createConcurrency).toBeGreaterThanOrEqual(300)
  })
})

describe('bulk state', () => {
  it('ls reads every host of a driver with ONE states call and no per-host state call', async () => {
    await make(['node[1:5]'])
    const ids = (await store.list()).records.map((r) => r.machine!.id)
    fake.hosts.get(ids[2]!)!.state = 'stopped'
    fake.hosts.delete(ids[4]!)
    const {hosts} = await listHosts(store, {drivers: reg.lookup, env})
    expect(fake.calls).toHaveLength(1)
    expect(fake.calls[0]).toMatch(/^states:/)
    expect(Object.fromEntries(hosts.map((h) => [h.name, h.state]))).toEqual({node1: 'Running', node2: 'Running', node3: 'Stopped', node4: 'Running', node5: 'Missing'})
    expect(hosts.every((h) => h.errors.length === 0)).toBe(true)
  })

  it('a host whose state could not be read is Unknown with the reason, never Error', async () => {
    await make(['node[1:3]'])
    const id = (await store.get('node2')).machine!.id
    fake.unreadable.add(id)
    const {hosts} = await listHosts(store, {drivers: reg.lookup, env})
    const node2 = hosts.find((h) => h.name === 'node2')!
    expect(node2.state).toBe('Unknown')
    expect(node2.errors.join()).toContain(`no answer for ${id}`)
    expect(hosts.filter((h) => h.state === 'Running')).toHaveLength(2)
  })

  it('a driver that cannot be read at all makes every host Unknown with its reason', async () => {
    await make(['node[1:3]'])
    fake.statesMode = 'reject'
    const {hosts} = await listHosts(store, {drivers: reg.lookup, env})
    expect(hosts.map((h) => h.state)).toEqual(['Unknown', 'Unknown', 'Unknown'])
    expect(hosts[0]!.errors.join()).toContain('API unreachable')
  })

  it('--timeout bounds the whole listing: hosts not read by then are Unknown', async () => {
    await make(['node[1:2]'])
    fake.statesMode = 'hang'
    const {hosts} = await listHosts(store, {drivers: reg.lookup, env, timeoutMs: 200})
    expect(hosts.map((h) => h.state)).toEqual(['Unknown', 'Unknown'])
    expect(hosts[0]!.errors.join()).toMatch(/not read within|timeout|aborted/i)
  })

  it('status of one host goes through states too', async () => {
    await make(['node1'])
    expect(await liveState(store, await store.get('node1'), env, reg.lookup)).toEqual({state: 'running'})
    expect(fake.calls).toEqual([`states:${(await store.get('node1')).machine!.id}`])
  })
})

describe('bulk removal', () => {
  it('removes every host of a driver with ONE removeMany call, then the records and the cluster', async () => {
    await make(['node[1:4]'])
    const hosts = (await store.list()).records
    const out = await removeHosts({store, hosts, force: false, concurrency: 2, reporter: silentReporter, drivers: reg.lookup, env})
    expect(out.every((o) => o.ok)).toBe(true)
    expect(fake.calls.filter((c) => c.startsWith('removeMany:'))).toHaveLength(1)
    expect(fake.calls.filter((c) => c.startsWith('remove:'))).toHaveLength(0)
    expect(fake.calls).toContain('removeCluster:default')
    expect((await store.list()).records).toHaveLength(0)
    expect(fake.hosts.size).toBe(0)
  })

  it('a host the driver could not remove keeps its record with the error; the others go', async () => {
    await make(['node[1:3]'])
    fake.failRemove.add('node2')
    const out = await removeHosts({store, hosts: (await store.list()).records, force: false, concurrency: 4, reporter: silentReporter, drivers: reg.lookup, env})
    expect(out.map((o) => [o.name, o.ok])).toEqual([
      ['node1', true],
      ['node2', false],
      ['node3', true],
    ])
    const left = await store.get('node2')
    expect(left.phase).toBe('error')
    expect(left.error?.message).toContain('cannot remove node2')
    expect(fake.calls.filter((c) => c.startsWith('removeCluster'))).toHaveLength(0)
  })

  it('hosts without a machine still go through removeLeftovers, not removeMany', async () => {
    await make(['node1'])
    await store.reserve(async () => [{...(await store.get('node1')), name: 'node9', machine: undefined, phase: 'creating' as const, resources: [{kind: 'fake-vm', id: 'fake-99', at: new Date().toISOString()}]}])
    const out = await removeHosts({store, hosts: (await store.list()).records, force: false, concurrency: 4, reporter: silentReporter, drivers: reg.lookup, env})
    expect(out.every((o) => o.ok)).toBe(true)
    expect(fake.calls).toContain('removeLeftovers:node9')
    expect(fake.calls.filter((c) => c.startsWith('removeMany:'))).toHaveLength(1)
  })

  it('after the run is interrupted nothing new starts: no removeMany call, records kept', async () => {
    await make(['node[1:2]'])
    const ac = new AbortController()
    ac.abort(new InterruptedError())
    const out = await removeHosts({store, hosts: (await store.list()).records, force: false, concurrency: 4, reporter: silentReporter, drivers: reg.lookup, env, signal: ac.signal})
    expect(out.every((o) => !o.ok && o.interrupted)).toBe(true)
    expect(fake.calls).toEqual([])
    expect((await store.list()).records).toHaveLength(2)
  })
})
