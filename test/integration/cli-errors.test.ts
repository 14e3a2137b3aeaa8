import {chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, repoRoot} from '../helpers/cli.js'

let tmp: string
let store: string

beforeAll(async () => {
  expect(existsSync(path.join(repoRoot, 'dist/src/commands/create.js')), 'run `npm run build` first').toBe(true)
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-cli-'))
  store = path.join(tmp, 'store')
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** A bad command: one line on stderr, no stack trace, the given exit code, nothing created. */
async function expectOneLineError(args: string[], code: number, pattern: RegExp, extra: {uid?: number; gid?: number; store?: string; env?: NodeJS.ProcessEnv} = {}) {
  const r = await belt(args, {store: extra.store ?? store, uid: extra.uid, gid: extra.gid, env: extra.env})
  expect(r.code, r.stderr).toBe(code)
  const lines = r.stderr.trim().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: /)
  expect(lines[0]).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stdout).toBe('')
  return r
}

describe('belt refuses bad input with one clear line and changes nothing', () => {
  it('a range that counts down', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'node[5:1]'], 2, /range \[5:1\] in 'node\[5:1\]' counts down.*\[1:5\]/)
  })

  it('an invalid name', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'bad_name!'], 2, /'bad_name!' is not a valid host name/)
  })

  it('a duplicate name', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'node[1:3]', 'node2'], 2, /node2 named more than once/)
  })

  it('no driver and no terminal: names the flag instead of prompting', async () => {
    await expectOneLineError(['create', 'node1'], 2, /missing --driver: choose one of local/)
  })

  it('an unknown flag', async () => {
    await expectOneLineError(['create', '--driver', 'local', '--nope', 'node1'], 2, /--nope/)
  })

  it('rm of a host that does not exist', async () => {
    await expectOneLineError(['rm', '-y', 'nosuch'], 3, /no host named nosuch/)
  })

  it('rm without -y and without a terminal', async () => {
    await expectOneLineError(['rm', 'nosuch'], 3, /no host named nosuch/)
  })

  it('the local driver run as a non-root user', async () => {
    // nobody's own home, with the store where belt puts it by default.
    const home = path.join(tmp, 'nobody-home')
    await chmod(tmp, 0o755)
    await mkdir(home, {mode: 0o700})
    await chown(home, 65534, 65534)
    const userStore = path.join(home, '.belt')
    await expectOneLineError(['create', '--driver', 'local', 'node1'], 5, /the local driver needs root/, {uid: 65534, gid: 65534, store: userStore, env: {HOME: home}})
    expect(await readdir(path.join(userStore, 'hosts')).catch(() => [])).toEqual([])
  })

  it('left no host record behind', async () => {
    const r = await belt(['ls', '--json'], {store})
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual([])
  })
})

describe('store containment and bad input (issue 9)', () => {
  let n = 0
  /** A store path that does not exist yet, under its own directory (so that '../..' lands in it). */
  const fresh = () => path.join(tmp, `contain-${++n}`, 'a', 'store')
  const record = (name: string, fields: Record<string, unknown> = {}) =>
    JSON.stringify({schemaVersion: 1, name, cluster: 'default', driver: 'local', driverOptions: {}, phase: 'reserved', resources: [], times: {}, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...fields})
  async function storeWith(records: Record<string, string>): Promise<string> {
    const s = fresh()
    await mkdir(path.join(s, 'hosts'), {recursive: true, mode: 0o700})
    for (const [name, text] of Object.entries(records)) await writeFile(path.join(s, 'hosts', `${name}.json`), text)
    return s
  }

  it.each([
    ['--cluster ../../escaped', ['--cluster', '../../escaped'], {}],
    ['BELT_CLUSTER=../../escaped', [], {BELT_CLUSTER: '../../escaped'}],
    ['--cluster ../../..', ['--cluster', '../../..'], {}],
    ['--cluster BAD!', ['--cluster', 'BAD!'], {}],
  ])('create %s: one line (exit 2), no key outside the store, no store directory created', async (_what, flags, env) => {
    const s = fresh()
    await expectOneLineError(['create', '--driver', 'local', '--no-bootstrap', ...flags, 'node1'], 2, /--cluster \(or BELT_CLUSTER\): '.*' is not a valid cluster name/, {store: s, env})
    expect(existsSync(path.dirname(path.dirname(s)))).toBe(false)
  })

  it.each([
    [['swarm', 'init', '--cluster', '../../escaped']],
    [['swarm', 'status', '--cluster', '..']],
  ])('%j: the cluster name is refused the same way', async (args) => {
    const s = fresh()
    await expectOneLineError(args, 2, /not a valid cluster name/, {store: s})
    expect(existsSync(path.dirname(path.dirname(s)))).toBe(false)
  })

  it('inspect ../../leak never reads the file it points at', async () => {
    const s = await storeWith({})
    // hosts/../../leak.json: a record valid in every way but its place.
    await writeFile(path.join(path.dirname(s), 'leak.json'), record('../../leak'))
    await expectOneLineError(['inspect', '../../leak'], 2, /'\.\.\/\.\.\/leak' is not a valid host name/, {store: s})
  })

  it('a driver option that preflight refuses (exit 2) leaves no store directory behind', async () => {
    const s = fresh()
    await expectOneLineError(['create', '--driver', 'local', '--no-bootstrap', '--local-subnet', 'nope', 'node1'], 2, /--local-subnet nope/, {store: s})
    expect(existsSync(path.dirname(path.dirname(s)))).toBe(false)
  })

  it('a store directory that already exists keeps its mode (BELT_STORE=/tmp must not change /tmp)', async () => {
    const s = fresh()
    await mkdir(s, {recursive: true})
    await chmod(s, 0o755)
    await expectOneLineError(['create', '--driver', 'local', '--no-bootstrap', '--local-subnet', 'nope', 'node1'], 2, /--local-subnet nope/, {store: s})
    expect((await stat(s)).mode & 0o777).toBe(0o755)
  })

  const patternCommands = [['rm', '-y'], ['ip'], ['start'], ['stop'], ['restart'], ['kill'], ['provision'], ['regenerate-certs', '-y'], ['swarm', 'init'], ['swarm', 'join'], ['swarm', 'leave'], ['swarm', 'promote'], ['swarm', 'demote']]
  it.each(patternCommands.flatMap((c) => [[c, 'node[*'], [c, 'x[*']]))('%j %s: a malformed pattern is one line (exit 2), no stack', async (cmd, pattern) => {
    const s = await storeWith({node1: record('node1')})
    await expectOneLineError([...cmd, pattern], 2, /is not a valid name pattern/, {store: s})
  })

  it.each([[['inspect']], [['status']], [['ssh']], [['env']], [['ssh-keys', 'reset']]])('%j x[* and ../x: not a host name, one line (exit 2)', async (cmd) => {
    const s = await storeWith({node1: record('node1')})
    for (const name of ['x[*', '../x']) await expectOneLineError([...cmd, name], 2, /is not a valid host name/, {store: s})
  })

  it('a record with "machine": {} is corrupt (exit 5, naming file and field) for the commands that need it; ls lists the others', async () => {
    const s = await storeWith({node1: record('node1'), node2: record('node2', {phase: 'created', machine: {}})})
    const file = path.join(s, 'hosts', 'node2.json')
    const fieldAndFile = new RegExp(`host record ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is unreadable: machine\\.id: expected string`)
    await expectOneLineError(['ssh', 'node2', 'hostname'], 5, fieldAndFile, {store: s})
    await expectOneLineError(['ip', 'node2'], 5, fieldAndFile, {store: s})
    const ls = await belt(['ls'], {store: s})
    expect(ls.code, ls.stderr).toBe(0)
    expect(ls.stdout).toMatch(/^node1\s+local\s+Reserved/m)
    expect(ls.stdout).toMatch(new RegExp(`^node2\\s+Corrupt\\s+${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`, 'm'))
    expect(ls.stderr).toMatch(/machine\.id: expected string/)
  })

  it('status exits 5 when the state cannot be read (a DigitalOcean host without a token)', async () => {
    const s = await storeWith({
      node1: record('node1', {driver: 'digitalocean', phase: 'created', machine: {id: '412000017', address: '192.0.2.10', ssh: {user: 'root', port: 22}, data: {}}}),
    })
    const r = await expectOneLineError(['status', 'node1'], 5, /cannot read the state of node1: .*access-token/, {store: s, env: {DIGITALOCEAN_ACCESS_TOKEN: undefined}})
    expect(r.stderr).not.toMatch(/undefined/)
  })
})

describe('help', () => {
  it('every command has a summary and an example', async () => {
    const r = await belt(['--help'], {store})
    expect(r.code).toBe(0)
    for (const c of ['create', 'ls', 'inspect', 'ip', 'status', 'ssh', 'scp', 'rm', 'start', 'stop', 'restart', 'kill']) expect(r.stdout).toContain(c)
    const h = await belt(['create', '--help'], {store})
    expect(h.stdout).toMatch(/EXAMPLES/)
    expect(h.stdout).toMatch(/--local-subnet/)
    expect(h.stdout).toMatch(/BELT_LOCAL_SUBNET/)
  })
})
