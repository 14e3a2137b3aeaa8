import {chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {existsSync, promises as fsPromises} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'
import {UserError} from '../../src/errors.js'
import {ensurePrivateDir, writeFileAtomic} from '../../src/store/atomic.js'
import {Store, naturalCompare, newRecord, parseRecord} from '../../src/store/store.js'

let dir: string
let store: Store
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-store-'))
  store = new Store(path.join(dir, 'store'))
  await store.init()
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const rec = (name: string) => newRecord({name, cluster: 'default', driver: 'fake', driverOptions: {}})

describe('Store', () => {
  it('creates private directories and private record files', async () => {
    await store.reserve(() => [rec('node1')])
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700)
    expect((await stat(store.hostsDir)).mode & 0o777).toBe(0o700)
    expect((await stat(store.recordFile('node1'))).mode & 0o777).toBe(0o600)
  })

  it('round-trips a record with its schema version', async () => {
    await store.reserve(() => [rec('node1')])
    const r = await store.get('node1')
    expect(r.schemaVersion).toBe(1)
    expect(r.phase).toBe('reserved')
    await store.update('node1', (x) => {
      x.phase = 'created'
    })
    expect((await store.get('node1')).phase).toBe('created')
  })

  it('gives a not-found UserError (exit 3) for a missing host', async () => {
    await expect(store.get('nosuch')).rejects.toMatchObject({code: 'E_HOST_NOT_FOUND', exit: 3})
  })

  it('reports a corrupt record by file name and still lists the others', async () => {
    await store.reserve(() => [rec('node1'), rec('node2')])
    await writeFile(store.recordFile('node2'), '{"schemaVersion": 1, "name": "node2", "dri')
    const {records, corrupt} = await store.list()
    expect(records.map((r) => r.name)).toEqual(['node1'])
    expect(corrupt).toHaveLength(1)
    expect(corrupt[0]!.file).toBe(store.recordFile('node2'))
    await expect(store.get('node2')).rejects.toThrow(store.recordFile('node2'))
  })

  it('lists in natural order', async () => {
    await store.reserve(() => ['node10', 'node2', 'node1'].map(rec))
    expect((await store.list()).records.map((r) => r.name)).toEqual(['node1', 'node2', 'node10'])
  })

  it('reserve sees existing names and may refuse', async () => {
    await store.reserve(() => [rec('node1')])
    await expect(
      store.reserve((existing) => {
        if (existing.has('node1')) throw new UserError('node1 exists', {code: 'E_X'})
        return []
      }),
    ).rejects.toThrow('node1 exists')
  })

  it('journals 300 lines written at once, each whole, in the order given (written together, one fsync per group)', async () => {
    await Promise.all(Array.from({length: 300}, (_, i) => store.journal({kind: 'droplet', id: String(i), host: `node${i}`, driver: 'digitalocean', action: 'created'})))
    await store.journal({kind: 'droplet', id: 'last', driver: 'digitalocean', action: 'deleted'})
    const lines = (await readFile(path.join(store.dir, 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as {id: string})
    expect(lines.map((l) => l.id)).toEqual([...Array.from({length: 300}, (_, i) => String(i)), 'last'])
  })

  it('journals resources as JSON lines', async () => {
    await store.journal({kind: 'netns', id: 'b-1', host: 'node1', driver: 'local', action: 'created'})
    await store.journal({kind: 'netns', id: 'b-1', host: 'node1', driver: 'local', action: 'deleted'})
    const lines = (await readFile(path.join(store.dir, 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.action)).toEqual(['created', 'deleted'])
    expect((await stat(path.join(store.dir, 'journal.jsonl'))).mode & 0o777).toBe(0o600)
  })
})

describe('Store containment: no name reaches outside the store', () => {
  it.each(['../../escaped', '..', '../x', '/etc', 'a/b', 'BAD!', ''])('keysDir(%j) is a usage error (exit 2)', (cluster) => {
    expect(() => store.keysDir(cluster)).toThrow(expect.objectContaining({code: 'E_CLUSTER_INVALID', exit: 2}))
  })

  it.each(['../../leak', '../hosts/x', '/etc/passwd', 'a/b', 'Node1', ''])('recordFile(%j) is a usage error (exit 2)', (name) => {
    expect(() => store.recordFile(name)).toThrow(expect.objectContaining({code: 'E_NAME_INVALID', exit: 2}))
  })

  it.each(['..', '../../x', '/tmp'])('driverDir(%j) is refused', (driver) => {
    expect(() => store.driverDir(driver)).toThrow(expect.objectContaining({code: 'E_PATH_OUTSIDE_STORE', exit: 2}))
  })

  it('keeps valid names inside the store', () => {
    expect(store.keysDir('default')).toBe(path.join(store.dir, 'keys', 'default'))
    expect(store.recordFile('node1')).toBe(path.join(store.dir, 'hosts', 'node1.json'))
    expect(store.driverDir('local')).toBe(path.join(store.dir, 'drivers', 'local'))
  })

  it('get and tryGet of a name that is not a host name never read outside the store', async () => {
    // A record planted where hosts/../../leak.json points, valid in every other way.
    await writeFile(path.join(dir, 'leak.json'), JSON.stringify(rec('../../leak')))
    await expect(store.get('../../leak')).rejects.toMatchObject({code: 'E_NAME_INVALID', exit: 2})
    await expect(store.tryGet('../../leak')).rejects.toMatchObject({code: 'E_NAME_INVALID', exit: 2})
    await expect(store.update('../../leak', () => undefined)).rejects.toMatchObject({exit: 2})
  })

  it('list() shows a record with a bad field as corrupt, naming the field, and lists the others', async () => {
    await store.reserve(() => [rec('node1'), rec('node2')])
    await writeFile(store.recordFile('node2'), JSON.stringify({...rec('node2'), phase: 'created', machine: {}}))
    const {records, corrupt} = await store.list()
    expect(records.map((r) => r.name)).toEqual(['node1'])
    expect(corrupt.map((c) => c.name)).toEqual(['node2'])
    expect(corrupt[0]!.problem).toMatch(/hosts\/node2\.json is unreadable: machine\.id: expected string/)
    await expect(store.get('node2')).rejects.toMatchObject({code: 'E_RECORD_CORRUPT', exit: 5})
  })
})

describe('private directories', () => {
  it('init() leaves the mode of a store directory that already existed alone', async () => {
    const existing = path.join(dir, 'shared')
    await mkdir(existing, {mode: 0o755})
    await chmod(existing, 0o755)
    const s = new Store(existing)
    await s.init()
    await s.journal({kind: 'x', id: '1', driver: 'fake', action: 'created'})
    expect((await stat(existing)).mode & 0o777).toBe(0o755)
    expect((await stat(s.hostsDir)).mode & 0o777).toBe(0o700)
  })

  it('ensurePrivateDir makes every directory it creates 0700 and chmods none that existed', async () => {
    const top = path.join(dir, 'top')
    await mkdir(top, {mode: 0o751})
    await chmod(top, 0o751)
    await ensurePrivateDir(top)
    await ensurePrivateDir(path.join(top, 'a', 'b', 'c'))
    expect((await stat(top)).mode & 0o777).toBe(0o751)
    for (const d of ['a', 'a/b', 'a/b/c']) expect((await stat(path.join(top, d))).mode & 0o777, d).toBe(0o700)
    await chmod(path.join(top, 'a'), 0o711)
    await ensurePrivateDir(path.join(top, 'a', 'b'))
    expect((await stat(path.join(top, 'a'))).mode & 0o777).toBe(0o711)
    expect(existsSync(path.join(top, 'a', 'b', 'c'))).toBe(true)
  })
})

describe('parseRecord', () => {
  it.each([
    ['not json', /unreadable/],
    ['[]', /not a JSON object/],
    ['{"name":"a"}', /no schemaVersion/],
    ['{"schemaVersion":99,"name":"a","driver":"x","phase":"created"}', /newer than this belt/],
    ['{"schemaVersion":1,"name":"b","driver":"x","phase":"created"}', /name field/],
  ])('%s', async (text, msg) => {
    await expect(parseRecord('/s/hosts/a.json', 'a', text)).rejects.toThrow(msg)
  })

  const valid = () => ({...rec('a'), phase: 'created', machine: {id: 'm1', address: '192.0.2.1', ssh: {user: 'root', port: 22}, data: {}}})
  const corrupt = async (r: unknown) => parseRecord('/s/hosts/a.json', 'a', JSON.stringify(r)).then(() => undefined, (e: unknown) => e)

  it('accepts a valid record and keeps the keys it does not know (never strips them)', async () => {
    const r = await parseRecord('/s/hosts/a.json', 'a', JSON.stringify({...valid(), futureField: {x: 1}}))
    expect(r.machine!.address).toBe('192.0.2.1')
    expect((r as unknown as {futureField: unknown}).futureField).toEqual({x: 1})
  })

  it.each([
    ['"machine": {}', {machine: {}}, /machine\.id: expected string/],
    ['a machine without an address', {machine: {id: 'm1', ssh: {user: 'root', port: 22}, data: {}}}, /: machine\.address: expected string/],
    ['an SSH port that is a string', {machine: {id: 'm1', address: 'a', ssh: {user: 'root', port: '22'}, data: {}}}, /machine\.ssh\.port: expected number/],
    ['a resource without an id', {resources: [{kind: 'droplet', at: 'now'}]}, /resources\[0\]\.id: expected string/],
    ['an unknown phase', {phase: 'flying'}, /phase: /],
    ['a cluster that would leave the store', {cluster: '../../x'}, /cluster: '\.\.\/\.\.\/x' is not a valid cluster name/],
    ['an engine without its url', {engine: {id: 'e', name: 'n', serverVersion: '1', labels: [], config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []}}}, /engine\.url: expected string/],
  ])('reports %s as corrupt, naming the file and the field (exit 5)', async (_what, patch, msg) => {
    const e = await corrupt({...valid(), ...patch})
    expect(e).toBeInstanceOf(UserError)
    expect(e).toMatchObject({code: 'E_RECORD_CORRUPT', exit: 5})
    expect((e as Error).message).toContain('/s/hosts/a.json')
    expect((e as Error).message).toMatch(msg)
    expect((e as Error).message).not.toContain('\n')
  })

  it('still migrates an older record without resources, times or driverOptions', async () => {
    const {resources: _r, times: _t, driverOptions: _d, ...old} = valid()
    const r = await parseRecord('/s/hosts/a.json', 'a', JSON.stringify(old))
    expect(r).toMatchObject({resources: [], times: {}, driverOptions: {}})
  })
})

describe('writeFileAtomic', () => {
  it('replaces content and applies the mode', async () => {
    const f = path.join(dir, 'k')
    await writeFileAtomic(f, 'one', 0o600)
    await writeFileAtomic(f, 'two', 0o600)
    expect(await readFile(f, 'utf8')).toBe('two')
    expect((await stat(f)).mode & 0o777).toBe(0o600)
  })

  it('writes that come together share directory fsyncs, and each file ends with its own content', async () => {
    const opens = vi.spyOn(fsPromises, 'open')
    try {
      const n = 50
      await Promise.all(Array.from({length: n}, (_, i) => writeFileAtomic(path.join(dir, `r${i}`), `content ${i}`, 0o600)))
      const dirSyncs = opens.mock.calls.filter(([p]) => p === dir).length
      expect(dirSyncs).toBeGreaterThanOrEqual(1)
      expect(dirSyncs).toBeLessThan(n / 5)
      for (let i = 0; i < n; i++) expect(await readFile(path.join(dir, `r${i}`), 'utf8')).toBe(`content ${i}`)
      // No temp file is left behind.
      expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
      // A write after the group still gets a sync of its own.
      const before = opens.mock.calls.length
      await writeFileAtomic(path.join(dir, 'late'), 'late', 0o600)
      expect(opens.mock.calls.slice(before).filter(([p]) => p === dir)).toHaveLength(1)
    } finally {
      opens.mockRestore()
    }
  })
})

describe('naturalCompare', () => {
  it('orders DNS labels as Intl.Collator("en", {numeric: true}) does, without building one', () => {
    const collator = new Intl.Collator('en', {numeric: true})
    let seed = 11
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31)
    const chars = 'ab-0123456789z'
    const label = () => Array.from({length: 1 + Math.floor(random() * 8)}, () => chars[Math.floor(random() * chars.length)]).join('')
    const fixed = ['node1', 'node2', 'node10', 'node01', 'node001', 'node1a', 'node1-b', 'a-b', 'ab', 'a0', 'a', 'a-', '1a', 'a9', 'a09', 'a10', '']
    const labels = [...fixed, ...Array.from({length: 3000}, label)]
    for (let i = 0; i < labels.length; i++) {
      const a = labels[i]!
      const b = labels[(i * 7 + 3) % labels.length]!
      expect(naturalCompare(a, b), `${a} vs ${b}`).toBe(collator.compare(a, b))
    }
    expect([...fixed].sort(naturalCompare)).toEqual([...fixed].sort(collator.compare))
  })

  it('falls back to the collator for anything that is not a label', () => {
    expect(naturalCompare('Node2', 'node10')).toBe(new Intl.Collator('en', {numeric: true}).compare('Node2', 'node10'))
    expect(naturalCompare('web.2', 'web.10')).toBeLessThan(0)
  })
})
