import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {writeFileAtomic} from '../../src/store/atomic.js'
import {Store, newRecord, parseRecord} from '../../src/store/store.js'

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

  it('journals resources as JSON lines', async () => {
    await store.journal({kind: 'netns', id: 'b-1', host: 'node1', driver: 'local', action: 'created'})
    await store.journal({kind: 'netns', id: 'b-1', host: 'node1', driver: 'local', action: 'deleted'})
    const lines = (await readFile(path.join(store.dir, 'journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.action)).toEqual(['created', 'deleted'])
    expect((await stat(path.join(store.dir, 'journal.jsonl'))).mode & 0o777).toBe(0o600)
  })
})

describe('parseRecord', () => {
  it.each([
    ['not json', /unreadable/],
    ['[]', /not a JSON object/],
    ['{"name":"a"}', /no schemaVersion/],
    ['{"schemaVersion":99,"name":"a","driver":"x","phase":"created"}', /newer than this belt/],
    ['{"schemaVersion":1,"name":"b","driver":"x","phase":"created"}', /name field/],
  ])('%s', (text, msg) => {
    expect(() => parseRecord('/s/hosts/a.json', 'a', text)).toThrow(msg)
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
})
