import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {PassThrough} from 'node:stream'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {InterruptedBatch, PartialFailure, UserError} from '../../src/errors.js'
import {splitCommand} from '../../src/commands/exec.js'
import {InterruptedError} from '../../src/scheduler/interrupt.js'
import {copyToHosts, execOnHosts, type HostSession, type OpenSession} from '../../src/services/exec-hosts.js'
import {Store, newRecord} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'
import {parseScpTarget} from '../../src/ssh/transfer.js'
import {exitSummary, finishHostRuns, groupedOutput, interruptedHostRuns, prefixedOutput, type HostRun} from '../../src/ui/host-output.js'

let dir: string
let store: Store

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-exec-'))
  store = new Store(path.join(dir, 'store'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const record = (name: string): HostRecord => ({
  ...newRecord({name, cluster: 'default', driver: 'fake', driverOptions: {}}),
  phase: 'created',
  machine: {id: name, address: `192.0.2.${name.slice(4)}`, ssh: {user: 'root', port: 22}, data: {}},
})

/** Collects what a stream receives. */
function sink() {
  const s = new PassThrough()
  let text = ''
  s.on('data', (d) => (text += d))
  return {stream: s, text: () => text}
}

/**
 * A fake fleet: each host's script says what it prints and how it exits. It fails on any call the
 * service must not make (a second open of a host, a run after close) and counts the open sessions.
 */
class FakeFleet {
  open = 0
  peak = 0
  opened: string[] = []
  commands: string[] = []
  uploads: string[] = []
  unreachable = new Set<string>()
  constructor(private readonly scripts: Record<string, {out?: string[]; err?: string[]; code?: number; gate?: Promise<void>}>) {}
  readonly opener: OpenSession = async (_store, r) => {
    if (this.opened.includes(r.name)) throw new Error(`unexpected second connection to ${r.name}`)
    this.opened.push(r.name)
    if (this.unreachable.has(r.name)) throw new UserError(`cannot reach ${r.name} over SSH`, {code: 'E_SSH_UNREACHABLE'})
    this.open++
    this.peak = Math.max(this.peak, this.open)
    let closed = false
    const script = this.scripts[r.name] ?? {}
    const session: HostSession = {
      run: async (command, out) => {
        if (closed) throw new Error('run after close')
        this.commands.push(`${r.name}: ${command}`)
        await script.gate
        for (const c of script.out ?? []) out.stdout(Buffer.from(c))
        for (const c of script.err ?? []) out.stderr(Buffer.from(c))
        return script.code ?? 0
      },
      upload: async (local, remote) => {
        if (closed) throw new Error('upload after close')
        this.uploads.push(`${r.name}: ${path.basename(local)} -> ${remote}`)
        if (script.code) throw new Error(`${r.name}: permission denied`)
      },
      close: async () => {
        if (closed) throw new Error('closed twice')
        closed = true
        this.open--
      },
    }
    return session
  }
}

describe('execOnHosts', () => {
  it('runs the command once on every host, never more than the window at once, and reports each exit code', async () => {
    const names = Array.from({length: 9}, (_, i) => `node${i + 1}`)
    const fleet = new FakeFleet(Object.fromEntries(names.map((n, i) => [n, {out: [`${n}\n`], code: i === 4 ? 3 : 0}])))
    const out = sink()
    const err = sink()
    const runs = await execOnHosts({store, hosts: names.map(record), command: ['hostname'], concurrency: 3, output: prefixedOutput(names, {stdout: out.stream, stderr: err.stream}), open: fleet.opener})
    expect(fleet.peak).toBeLessThanOrEqual(3)
    expect(fleet.open).toBe(0)
    expect(fleet.commands.sort()).toEqual(names.map((n) => `${n}: hostname`).sort())
    expect(runs.map((r) => [r.name, r.ok, r.exitCode])).toEqual(names.map((n, i) => [n, i !== 4, i === 4 ? 3 : 0]))
    expect(out.text().split('\n').filter(Boolean).sort()).toEqual(names.map((n) => `${n} | ${n}`).sort())
  })

  it('quotes several words as an argv and passes one word as a shell line, like belt ssh', async () => {
    const fleet = new FakeFleet({})
    const output = prefixedOutput(['node1'], {stdout: sink().stream, stderr: sink().stream})
    await execOnHosts({store, hosts: [record('node1')], command: ['sh', '-c', "echo 'a b'; exit 3"], concurrency: 1, output, open: fleet.opener})
    expect(fleet.commands).toEqual([`node1: sh -c 'echo '\\''a b'\\''; exit 3'`])
    const fleet2 = new FakeFleet({})
    await execOnHosts({store, hosts: [record('node1')], command: ['uptime; df -h /'], concurrency: 1, output, open: fleet2.opener})
    expect(fleet2.commands).toEqual(['node1: uptime; df -h /'])
  })

  it('an unreachable host fails with its reason and hides no other host', async () => {
    const fleet = new FakeFleet({node1: {out: ['ok\n']}, node3: {out: ['ok\n']}})
    fleet.unreachable.add('node2')
    const err = sink()
    const runs = await execOnHosts({store, hosts: ['node1', 'node2', 'node3'].map(record), command: ['true'], concurrency: 2, output: prefixedOutput(['node1', 'node2', 'node3'], {stdout: sink().stream, stderr: err.stream}), open: fleet.opener})
    expect(runs.map((r) => r.ok)).toEqual([true, false, true])
    expect(runs[1]).toMatchObject({name: 'node2', error: 'cannot reach node2 over SSH'})
    expect(runs[1]!.exitCode).toBeUndefined()
    expect(err.text()).toBe('node2 | belt: cannot reach node2 over SSH\n')
  })

  it('after the signal aborts, no other host is started and the ones not started are interrupted, not failed', async () => {
    const ac = new AbortController()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const fleet = new FakeFleet({node1: {gate, out: ['one\n']}})
    const hosts = ['node1', 'node2', 'node3'].map(record)
    const p = execOnHosts({store, hosts, command: ['x'], concurrency: 1, output: groupedOutput({stdout: sink().stream, stderr: sink().stream}), open: fleet.opener, signal: ac.signal})
    await new Promise((r) => setImmediate(r))
    ac.abort(new InterruptedError())
    release()
    const runs = await p
    expect(fleet.opened).toEqual(['node1'])
    expect(runs.map((r) => [r.name, r.ok, Boolean(r.interrupted)])).toEqual([
      ['node1', true, false],
      ['node2', false, true],
      ['node3', false, true],
    ])
    const table = sink()
    const e = interruptedHostRuns(runs, 'belt exec node2 node3 -- x', Date.now(), table.stream)
    expect(e).toBeInstanceOf(InterruptedBatch)
    expect(e.resumeCommand).toBe('belt exec node2 node3 -- x')
    expect(table.text()).toMatch(/node1 \(1\)\s+exit 0/)
    expect(table.text()).toMatch(/node2, node3 \(2\)\s+not started/)
  })
})

describe('output', () => {
  it('prefixed: whole lines only, even when a line comes in pieces or another host writes in between; a last line without newline is flushed', () => {
    const out = sink()
    const o = prefixedOutput(['a', 'node10'], {stdout: out.stream, stderr: sink().stream})
    const a = o.sink('a')
    const b = o.sink('node10')
    a.stdout(Buffer.from('hel'))
    b.stdout(Buffer.from('x\r\ny'))
    a.stdout(Buffer.from('lo\nwor'))
    // A UTF-8 character split across chunks stays whole.
    const snow = Buffer.from('☃\n')
    a.stdout(snow.subarray(0, 1))
    a.stdout(snow.subarray(1))
    o.done({name: 'a', ok: true, exitCode: 0})
    o.done({name: 'node10', ok: true, exitCode: 0})
    expect(out.text()).toBe('node10 | x\na      | hello\na      | wor☃\nnode10 | y\n')
  })

  it('grouped: one block per host with its exit code, stderr apart', () => {
    const out = sink()
    const err = sink()
    const o = groupedOutput({stdout: out.stream, stderr: err.stream})
    const a = o.sink('node1')
    const b = o.sink('node2')
    a.stdout(Buffer.from('a1\n'))
    b.stdout(Buffer.from('b1\n'))
    b.stderr(Buffer.from('oops'))
    a.stdout(Buffer.from('a2'))
    o.done({name: 'node2', ok: false, exitCode: 2})
    o.done({name: 'node1', ok: true, exitCode: 0})
    o.done({name: 'node3', ok: false, error: 'cannot reach node3'})
    expect(out.text()).toBe('==> node2 (exit 2) <==\nb1\n==> node1 (exit 0) <==\na1\na2\n==> node3 (failed: cannot reach node3) <==\n')
    expect(err.text()).toBe('oops\n')
  })

  it('the summary counts hosts per exit code, and any failure is a PartialFailure with the retry line', () => {
    const runs: HostRun[] = [
      {name: 'node1', ok: true, exitCode: 0},
      {name: 'node2', ok: false, exitCode: 3},
      {name: 'node3', ok: true, exitCode: 0},
      {name: 'node4', ok: false, error: 'cannot reach node4'},
    ]
    expect(exitSummary(runs)).toBe('2 exit 0 (node1, node3), 1 exit 3 (node2), 1 failed (node4)')
    const err = sink()
    let thrown: unknown
    try {
      finishHostRuns(runs, {verb: 'Ran on', startedAt: Date.now(), retry: (n) => `belt exec ${n.join(' ')} -- x`, out: err.stream})
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(PartialFailure)
    expect((thrown as PartialFailure).retryCommand).toBe('belt exec node2 node4 -- x')
    expect((thrown as PartialFailure).message).toBe('2 of 4 hosts failed: node2, node4')
    expect(err.text()).toMatch(/^NAME\s+EXIT\s+ERROR\nnode2\s+3\s*\nnode4\s+-\s+cannot reach node4\n/)
    expect(finishHostRuns(runs.filter((r) => r.ok), {verb: 'Ran on', startedAt: Date.now(), retry: () => 'never', out: err.stream})).toHaveLength(2)
  })
})

describe('splitCommand', () => {
  it('takes the words after -- as the command and the words before as patterns', () => {
    expect(splitCommand(['node[1:3]', 'web*', 'ls', '-la'], ['node[1:3]', 'web*', '-c', '4', '--', 'ls', '-la'])).toEqual({patterns: ['node[1:3]', 'web*'], command: ['ls', '-la']})
    expect(splitCommand(['node*', 'hostname'], ['node*', 'hostname'])).toEqual({patterns: ['node*'], command: ['hostname']})
    // A -- that is part of the command stays in it.
    expect(splitCommand(['node1', 'grep', '--', 'x'], ['node1', '--', 'grep', '--', 'x'])).toEqual({patterns: ['node1'], command: ['grep', '--', 'x']})
    expect(splitCommand(['node1'], ['node1', '--'])).toEqual({patterns: ['node1'], command: []})
  })
})

describe('scp to a pattern', () => {
  it('parses PATTERN:PATH, a range included, and leaves plain names and local paths as before', () => {
    expect(parseScpTarget("node*:/tmp/")).toEqual({host: 'node*', path: '/tmp/', pattern: true})
    expect(parseScpTarget('node[1:3]:/tmp/x')).toEqual({host: 'node[1:3]', path: '/tmp/x', pattern: true})
    expect(parseScpTarget('node1:/tmp/x')).toEqual({host: 'node1', path: '/tmp/x'})
    expect(parseScpTarget('./a*:b')).toEqual({path: './a*:b'})
  })

  it('uploads to every host through the window; a missing source fails before any connection', async () => {
    const file = path.join(dir, 'app.env')
    await writeFile(file, 'X=1\n')
    const fleet = new FakeFleet({node2: {code: 1}})
    const done: string[] = []
    const runs = await copyToHosts({store, hosts: ['node1', 'node2', 'node3'].map(record), local: file, remotePath: '/etc/app/', concurrency: 2, output: {done: (r) => done.push(r.name)}, open: fleet.opener})
    expect(fleet.uploads.sort()).toEqual(['node1: app.env -> /etc/app/', 'node2: app.env -> /etc/app/', 'node3: app.env -> /etc/app/'])
    expect(runs.map((r) => [r.name, r.ok])).toEqual([['node1', true], ['node2', false], ['node3', true]])
    expect(runs[1]!.error).toBe('node2: permission denied')
    expect(done.sort()).toEqual(['node1', 'node2', 'node3'])
    expect(fleet.open).toBe(0)

    const none = new FakeFleet({})
    await expect(copyToHosts({store, hosts: [record('node1')], local: path.join(dir, 'missing'), remotePath: '/tmp/', concurrency: 2, output: {done() {}}, open: none.opener})).rejects.toThrow(/missing: no such file/)
    expect(none.opened).toEqual([])
  })
})
