import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store, newRecord} from '../../src/store/store.js'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '../..')
let dir: string

beforeAll(async () => {
  // The writer processes import the compiled store: `npm test` builds first.
  expect(existsSync(path.join(root, 'dist/src/store/store.js')), 'run `npm run build` first').toBe(true)
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-store-conc-'))
})
afterAll(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('store under concurrent writer processes', () => {
  it('8 processes reserving with --count semantics and updating one record lose nothing', async () => {
    const store = new Store(path.join(dir, 'store'))
    await store.reserve(() => [newRecord({name: 'shared', cluster: 'default', driver: 'fake', driverOptions: {}})])
    const procs = 8
    const each = 5
    const increments = 10
    const outs = await Promise.all(
      Array.from({length: procs}, (_, i) =>
        run(process.execPath, [path.join(root, 'test/fixtures/store-writer.mjs'), store.dir, String(i), String(each), String(increments)]),
      ),
    )
    const names = outs.flatMap((o) => JSON.parse(o.stdout) as string[])
    // Every process got its own names: none taken twice, numbering continuous.
    expect(new Set(names).size).toBe(procs * each)
    expect([...names].sort((a, b) => a.localeCompare(b, 'en', {numeric: true}))).toEqual(
      Array.from({length: procs * each}, (_, i) => `node${i + 1}`),
    )
    const {records, corrupt} = await store.list()
    expect(corrupt).toEqual([])
    expect(records).toHaveLength(procs * each + 1)
    // No lost update: every increment of every process is there.
    expect((await store.get('shared')).swarm?.count).toBe(procs * increments)
    // No temp files or locks left behind.
    expect((await readdir(store.hostsDir)).filter((f) => !f.endsWith('.json'))).toEqual([])
    expect(await readdir(path.join(store.dir, 'locks'))).toEqual([])
  })
})
