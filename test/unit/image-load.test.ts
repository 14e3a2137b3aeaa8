import {execFileSync} from 'node:child_process'
import {mkdtempSync, mkdirSync, rmSync, truncateSync, writeFileSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gzipSync} from 'node:zlib'
import {afterAll, describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {inspectArchive, loadImageArchive, parseJsonStream, type ArchiveInfo, type ImageUploader} from '../../src/services/image-load.js'
import {InterruptedError} from '../../src/scheduler/interrupt.js'
import type {Store} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'
import {silentReporter} from '../../src/ui/reporter.js'

const tmp = mkdtempSync(path.join(os.tmpdir(), 'belt-image-unit-'))
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

/** A tar of `files` made by the real tar, entries named `./x` like `docker save` and `tar -C dir .`. */
function tarOf(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, `${name}-src`)
  mkdirSync(dir, {recursive: true})
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), {recursive: true})
    writeFileSync(path.join(dir, f), body)
  }
  const out = path.join(tmp, `${name}.tar`)
  execFileSync('tar', ['-C', dir, '-cf', out, '.'])
  return out
}

const manifest = JSON.stringify([{Config: 'abc.json', RepoTags: ['belt/busybox:latest', 'belt/busybox:1'], Layers: ['l1/layer.tar']}])

describe('inspectArchive', () => {
  it('reads the image names from manifest.json past a layer of any size, without reading the layer', async () => {
    const f = tarOf('save', {'l1/layer.tar': 'x'.repeat(70_000), 'abc.json': '{}', 'manifest.json': manifest})
    const a = await inspectArchive(f)
    expect(a).toEqual({file: f, bytes: statSync(f).size, tags: ['belt/busybox:latest', 'belt/busybox:1'], format: 'docker'})
  })

  it('takes an OCI layout (index.json, no manifest.json) with no names', async () => {
    const f = tarOf('oci', {'oci-layout': '{}', 'index.json': '{}', 'blobs/sha256/aa': 'x'})
    expect(await inspectArchive(f)).toMatchObject({tags: [], format: 'oci'})
  })

  it('sends a compressed archive as it is (dockerd decompresses)', async () => {
    const f = path.join(tmp, 'save.tar.gz')
    writeFileSync(f, gzipSync(Buffer.from('anything')))
    expect(await inspectArchive(f)).toMatchObject({compression: 'gzip', tags: []})
  })

  const refused: [string, () => string, RegExp][] = [
    ['a text file', () => (writeFileSync(path.join(tmp, 'notes.txt'), 'hello\n'.repeat(200)), path.join(tmp, 'notes.txt')), /is not an image archive \(not a tar file\)$/],
    ['a tar with no manifest', () => tarOf('plain', {'a.txt': 'a'}), /is not an image archive \(no manifest\.json in it\)$/],
    ['a manifest that is not JSON', () => tarOf('badjson', {'manifest.json': '{nope'}), /its manifest\.json is not valid/],
    ['a missing file', () => path.join(tmp, 'nope.tar'), /cannot read the image archive .*nope\.tar: no such file$/],
    ['a directory', () => tmp, /is not a file$/],
    [
      'a truncated tar',
      () => {
        const f = tarOf('cut', {'l1/layer.tar': 'x'.repeat(70_000), 'manifest.json': manifest})
        truncateSync(f, 20_000)
        return f
      },
      /the tar file is truncated/,
    ],
  ]
  for (const [what, make, message] of refused) {
    it(`refuses ${what} with a usage error naming the file`, async () => {
      const f = make()
      const e = (await inspectArchive(f).catch((x: unknown) => x)) as UserError
      expect(e).toBeInstanceOf(UserError)
      expect(e.exit).toBe(2)
      expect(e.code).toBe('E_ARCHIVE')
      expect(e.message).toMatch(message)
    })
  }
})

describe('parseJsonStream', () => {
  it('reads dockerd JSON messages one per line, and plain text as a stream line', () => {
    expect(parseJsonStream('{"stream":"Loaded image: a:1\\n"}\r\n{"errorDetail":{"message":"bad"},"error":"bad"}\nplain')).toEqual([
      {stream: 'Loaded image: a:1\n'},
      {errorDetail: {message: 'bad'}, error: 'bad'},
      {stream: 'plain'},
    ])
  })
})

const record = (name: string, engine = true): HostRecord => ({
  schemaVersion: 1,
  name,
  cluster: 'default',
  driver: 'fake',
  driverOptions: {},
  phase: engine ? 'joined' : 'created',
  machine: {id: name, address: `10.0.0.${name.slice(4)}`, ssh: {user: 'root', port: 22}, data: {}},
  resources: [],
  times: {},
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  ...(engine ? {engine: {url: `tcp://10.0.0.${name.slice(4)}:2376`, id: 'x', name, serverVersion: '20.10', labels: [], config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []}}} : {}),
})

/** A store no test here may touch: the uploader is injected, so the client certificate is never read. */
const noStore = new Proxy({}, {get: (_t, p) => { throw new Error(`unexpected store access: ${String(p)}`) }}) as Store
const archive: ArchiveInfo = {file: '/dev/null', bytes: 2_000_000, tags: ['belt/busybox:latest'], format: 'docker'}

describe('loadImageArchive', () => {
  it('uploads once per host through a window of at most `concurrency`, and a failed host never hides the others', async () => {
    const hosts = Array.from({length: 10}, (_, i) => record(`node${i + 1}`))
    let running = 0
    let peak = 0
    const calls: string[] = []
    const uploader: ImageUploader = async (e, a) => {
      expect(a).toBe(archive)
      calls.push(e.name)
      running++
      peak = Math.max(peak, running)
      await new Promise((r) => setImmediate(r))
      running--
      if (e.name === 'node4') throw new Error('connect ECONNREFUSED 10.0.0.4:2376')
      expect(e).toEqual({name: e.name, address: `10.0.0.${e.name.slice(4)}`, port: 2376})
      return ['belt/busybox:latest']
    }
    const out = await loadImageArchive({store: noStore, hosts, archive, concurrency: 3, reporter: silentReporter, uploader})
    expect(calls.sort()).toEqual(hosts.map((h) => h.name).sort())
    expect(peak).toBeLessThanOrEqual(3)
    expect(peak).toBeGreaterThan(1)
    expect(out.filter((o) => o.ok)).toHaveLength(9)
    expect(out.find((o) => o.name === 'node4')).toMatchObject({ok: false, error: 'connect ECONNREFUSED 10.0.0.4:2376'})
    expect(out.find((o) => o.name === 'node1')).toMatchObject({ok: true, images: ['belt/busybox:latest']})
  })

  it('refuses hosts with no engine before any upload, naming them (exit 5)', async () => {
    const uploader: ImageUploader = async () => {
      throw new Error('no upload may start')
    }
    const e = (await loadImageArchive({store: noStore, hosts: [record('node1'), record('node2', false), record('node3', false)], archive, concurrency: 2, reporter: silentReporter, uploader}).catch((x: unknown) => x)) as UserError
    expect(e).toBeInstanceOf(UserError)
    expect(e.exit).toBe(5)
    expect(e.message).toBe('node2, node3 have no engine yet')
    expect(e.hint).toBe('bootstrap first with: belt provision node2 node3')
  })

  it('after Ctrl-C starts no other upload; hosts not loaded are interrupted, not failed', async () => {
    const ac = new AbortController()
    const started: string[] = []
    const uploader: ImageUploader = async (e, _a, signal) => {
      started.push(e.name)
      if (e.name === 'node1') return ['belt/busybox:latest']
      // The second upload is in flight when the operator presses Ctrl-C: it is cut.
      ac.abort(new InterruptedError())
      signal!.throwIfAborted()
      throw new Error('unreachable')
    }
    const hosts = [record('node1'), record('node2'), record('node3'), record('node4')]
    const out = await loadImageArchive({store: noStore, hosts, archive, concurrency: 1, reporter: silentReporter, uploader, signal: ac.signal})
    expect(started).toEqual(['node1', 'node2'])
    expect(out.map((o) => [o.name, o.ok, o.interrupted ?? false])).toEqual([
      ['node1', true, false],
      ['node2', false, true],
      ['node3', false, true],
      ['node4', false, true],
    ])
  })
})
