/**
 * Hosts keep their endpoint (issue 9, item 5): options marked `pinned` (API URL, endpoint, region,
 * profile, local subnet) come from the host's record, and a flag or environment variable that
 * disagrees is refused with one line (exit 2) before any driver call.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import type {DriverOption} from '../../drivers/driver.js'
import {drivers, type DriverEntry} from '../../drivers/registry.js'
import {createHosts} from '../../src/services/create-hosts.js'
import {hostDriverOptions, pinConflict, refuseMovedHosts, resolveDriverOptions} from '../../src/services/driver-context.js'
import {listHosts, liveState} from '../../src/services/list-hosts.js'
import {powerHosts} from '../../src/services/power.js'
import {removeHosts} from '../../src/services/remove-hosts.js'
import {selectHosts} from '../../src/services/select-hosts.js'
import {Store} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'
import {silentReporter} from '../../src/ui/reporter.js'
import {FakeDriver, fakeRegistry} from '../fakes/fake-driver.js'

const A = 'https://api.a.example'
const B = 'https://api.b.example'

const pinnedOptions: DriverOption[] = [
  {name: 'token', description: 'secret', env: 'FAKE_TOKEN', secret: true},
  {name: 'api-url', description: 'where the API is', env: 'FAKE_API_URL', default: A, pinned: true},
  {name: 'region', description: 'region', env: 'FAKE_REGION', pinned: true},
  {name: 'size', description: 'a plain option', env: 'FAKE_SIZE', default: 's1'},
]

let dir: string
let store: Store
let fake: FakeDriver
let entry: DriverEntry
let lookup: (n: string) => DriverEntry | undefined

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-pinned-'))
  store = new Store(path.join(dir, 'store'))
  fake = new FakeDriver()
  entry = {...fakeRegistry(fake).entry, options: pinnedOptions}
  lookup = (n) => (n === 'fake' ? entry : undefined)
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

/** node1 created against A in region r1; then no driver call is allowed. */
async function oneHost(): Promise<HostRecord[]> {
  await createHosts({
    store,
    driver: entry,
    options: {token: 't', 'api-url': A, region: 'r1', size: 's1'},
    persistable: {'api-url': A, region: 'r1', size: 's1'},
    selection: {patterns: ['node1']},
    cluster: 'default',
    concurrency: 1,
    reporter: silentReporter,
  })
  fake.calls.length = 0
  fake.forbidCalls = true
  return selectHosts(store, ['node1'], {drivers: lookup, env: {}})
}

/** The one-line usage error of a host created against A (or in region r1) when `source` disagrees. */
const refusal = (source: string) => ({
  exit: 2,
  code: 'E_PINNED_OPTION',
  message: expect.stringMatching(new RegExp(`^node1 was created with --fake-\\S+ \\S+, but ${source} is \\S+: a host keeps the`)),
  hint: `unset ${source} (belt uses the recorded value for existing hosts)`,
})

describe('resolveDriverOptions', () => {
  it.each([
    // [case, given, persisted, env, expected api-url, expected size]
    ['new host: flag first', {'api-url': B}, undefined, {FAKE_API_URL: 'https://env'}, B, 's1'],
    ['new host: env before default', {}, undefined, {FAKE_API_URL: B, FAKE_SIZE: 's2'}, B, 's2'],
    ['new host: default', {}, undefined, {}, A, 's1'],
    ['existing host: the record beats the env for a pinned option, not for a plain one', {}, {'api-url': A, size: 's9'}, {FAKE_API_URL: B, FAKE_SIZE: 's2'}, A, 's2'],
    ['existing host: the record beats a flag for a pinned option', {'api-url': B}, {'api-url': A}, {}, A, 's1'],
    ['existing host recorded without it: the default, never the env', {}, {}, {FAKE_API_URL: B}, A, 's1'],
  ] as const)('%s', (_, given, persisted, env, apiUrl, size) => {
    const {options} = resolveDriverOptions(entry, given, persisted, env)
    expect(options['api-url']).toBe(apiUrl)
    expect(options.size).toBe(size)
  })

  it('an existing host recorded without a pinned option that has no default keeps it unset', () => {
    expect(resolveDriverOptions(entry, {}, {}, {FAKE_REGION: 'r2'}).options.region).toBeUndefined()
  })
})

describe('pinConflict', () => {
  const rec = (driverOptions: Record<string, string>, data: Record<string, unknown> = {}) =>
    ({name: 'node1', driver: 'fake', driverOptions, machine: {id: 'x', address: '192.0.2.1', ssh: {user: 'root', port: 22}, data}}) as const
  it.each([
    ['nothing set', rec({'api-url': A, region: 'r1'}), {}, {}, undefined],
    ['env equal to the record', rec({'api-url': A, region: 'r1'}), {FAKE_API_URL: A, FAKE_REGION: 'r1'}, {}, undefined],
    ['env equal but for a trailing slash', rec({'api-url': A}), {FAKE_API_URL: `${A}/`}, {}, undefined],
    ['empty env var means unset', rec({'api-url': A}), {FAKE_API_URL: ''}, {}, undefined],
    ['a plain option may differ', rec({'api-url': A, size: 's1'}), {FAKE_SIZE: 's2'}, {}, undefined],
    ['env of another endpoint', rec({'api-url': A}), {FAKE_API_URL: B}, {}, {option: 'api-url', recorded: A, source: 'FAKE_API_URL', value: B}],
    ['a flag of another endpoint', rec({'api-url': A}), {}, {'api-url': B}, {option: 'api-url', recorded: A, source: '--fake-api-url', value: B, fromFlag: true}],
    ['default recorded, env elsewhere', rec({}), {FAKE_API_URL: B}, {}, {option: 'api-url', recorded: A, source: 'FAKE_API_URL'}],
    ['created without a region, env sets one', rec({}), {FAKE_REGION: 'r2'}, {}, {option: 'region', recorded: undefined, source: 'FAKE_REGION'}],
    ['the region the driver recorded in the machine data counts', rec({}, {region: 'r2'}), {FAKE_REGION: 'r2'}, {}, undefined],
    ['and disagrees', rec({}, {region: 'r1'}), {FAKE_REGION: 'r2'}, {}, {option: 'region', recorded: 'r1'}],
  ] as const)('%s', (_, r, env, given, expected) => {
    const c = pinConflict(entry, r, env, given)
    if (expected === undefined) expect(c).toBeUndefined()
    else expect(c).toMatchObject({host: 'node1', ...expected})
  })

  it('a pinned secret is never compared (secrets are never recorded)', () => {
    const e = {...entry, options: [{name: 'token', description: 's', env: 'FAKE_TOKEN', secret: true, pinned: true}]}
    expect(pinConflict(e, {name: 'node1', driver: 'fake', driverOptions: {}}, {FAKE_TOKEN: 'x'})).toBeUndefined()
  })

  it('the refusal is one line naming the host, the recorded value, the variable and the fix; user info in URLs is masked', () => {
    const records = ['node1', 'node2', 'node3'].map((name) => ({name, driver: 'fake', driverOptions: {'api-url': 'https://u:secret@api.a.example'}}))
    let err: unknown
    try {
      refuseMovedHosts(records, {env: {FAKE_API_URL: B}, drivers: lookup})
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({exit: 2, code: 'E_PINNED_OPTION'})
    const {message, hint} = err as {message: string; hint: string}
    expect(message).toBe(`node1 (and 2 other hosts) was created with --fake-api-url https://***@api.a.example, but FAKE_API_URL is ${B}: a host keeps the api-url it was created with`)
    expect(hint).toBe('unset FAKE_API_URL (belt uses the recorded value for existing hosts)')
    expect(`${message}${hint}`).not.toMatch(/\n|secret/)
  })

  it('records of unknown drivers are left to fail with their own error', () => {
    expect(() => refuseMovedHosts([{name: 'x', driver: 'gone', driverOptions: {}}], {env: {FAKE_API_URL: B}, drivers: lookup})).not.toThrow()
  })
})

describe('commands on existing hosts refuse a disagreeing environment before any driver call', () => {
  it('removeHosts (even with --force) keeps the record and calls nothing', async () => {
    const hosts = await oneHost()
    for (const force of [false, true]) {
      await expect(removeHosts({store, hosts, force, concurrency: 1, reporter: silentReporter, drivers: lookup, env: {FAKE_API_URL: B}})).rejects.toMatchObject(refusal('FAKE_API_URL'))
    }
    expect(fake.calls).toEqual([])
    expect((await store.get('node1')).phase).not.toBe('removing')
    expect(fake.hosts.size).toBe(1)
  })

  it('removeHosts with the environment unset (or equal) uses the recorded endpoint and removes', async () => {
    const hosts = await oneHost()
    fake.forbidCalls = false
    const out = await removeHosts({store, hosts, force: false, concurrency: 1, reporter: silentReporter, drivers: lookup, env: {FAKE_API_URL: `${A}/`}})
    expect(out[0]!.ok).toBe(true)
    expect(fake.hosts.size).toBe(0)
  })

  it('selectHosts (rm, provision, ip, start/stop, swarm NAMES ...) refuses', async () => {
    await oneHost()
    await expect(selectHosts(store, ['node1'], {drivers: lookup, env: {FAKE_REGION: 'r2'}})).rejects.toMatchObject({exit: 2, message: expect.stringMatching(/^node1 was created with --fake-region r1, but FAKE_REGION is r2/)})
  })

  it('listHosts and liveState (ls, status) refuse instead of showing the host as Missing', async () => {
    await oneHost()
    await expect(listHosts(store, {drivers: lookup, env: {FAKE_API_URL: B}})).rejects.toMatchObject(refusal('FAKE_API_URL'))
    await expect(liveState(store, await store.get('node1'), {FAKE_API_URL: B}, lookup)).rejects.toMatchObject(refusal('FAKE_API_URL'))
    expect(fake.calls).toEqual([])
  })

  it('powerHosts (start/stop/restart/kill) refuses', async () => {
    const hosts = await oneHost()
    await expect(powerHosts({store, hosts, action: 'stop', concurrency: 1, reporter: silentReporter, drivers: lookup, env: {FAKE_API_URL: B}})).rejects.toMatchObject(refusal('FAKE_API_URL'))
    expect(fake.calls).toEqual([])
  })

  it('hostDriverOptions gives the recorded values and the secret from the environment', async () => {
    const [r] = await oneHost()
    expect(hostDriverOptions(entry, r!, {FAKE_TOKEN: 'tok', FAKE_SIZE: 's3'})).toEqual({token: 'tok', 'api-url': A, region: 'r1', size: 's3'})
    expect(() => hostDriverOptions(entry, r!, {FAKE_API_URL: B})).toThrow(/node1 was created with --fake-api-url/)
  })
})

describe('the drivers declare where their hosts live', () => {
  it.each([
    ['digitalocean', ['api-url', 'region']],
    ['amazonec2', ['region', 'endpoint', 'profile']],
    ['local', ['subnet']],
  ])('%s pins %j', (name, pinned) => {
    const d = drivers.find((x) => x.name === name)!
    expect(d.options.filter((o) => o.pinned).map((o) => o.name)).toEqual(pinned)
    expect(d.options.some((o) => o.pinned && o.secret)).toBe(false)
  })
})
