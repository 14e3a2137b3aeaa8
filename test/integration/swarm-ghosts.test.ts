import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'
import {belt, beltBin, type CliResult} from '../helpers/cli.js'

/**
 * Issue 13: ghost node entries on a real swarm of 4 local hosts. A join whose traffic to the
 * managers (port 2377) is starved to 2 kbit/s asks for its certificate (the manager creates the
 * node entry then) and never reaches the dispatcher: the engine abandons the attempt and the entry
 * stays, with no hostname and status Unknown, as in the 100-host run where CPU starvation did it.
 */
const run = promisify(execFile)
const SUBNET = ['--local-subnet', '10.236.0.0/16']
let tmp: string
let store: string
/** Processes this file starts in the background; ended by PID in afterAll if still running. */
const children: ChildProcess[] = []
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-ghosts-'))
  store = path.join(tmp, 'store')
})
afterAll(async () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL')
  await belt(['rm', '-y', '--force', 'node*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

async function netnsOf(host: string): Promise<string> {
  const r = await new Store(store).get(host)
  return (r.machine!.data as {netns: string}).netns
}

/** Only the host's traffic to the swarm port goes at 2 kbit/s; its engine API stays fast. */
async function throttleSwarmPort(host: string) {
  const ns = await netnsOf(host)
  await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'htb', 'default', '10'])
  await run('tc', ['-n', ns, 'class', 'add', 'dev', 'eth0', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '1000mbit'])
  await run('tc', ['-n', ns, 'class', 'add', 'dev', 'eth0', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '2kbit', 'ceil', '2kbit'])
  await run('tc', ['-n', ns, 'filter', 'add', 'dev', 'eth0', 'parent', '1:', 'protocol', 'ip', 'u32', 'match', 'ip', 'dport', '2377', '0xffff', 'flowid', '1:20'])
}

async function unthrottle(host: string) {
  await run('tc', ['-n', await netnsOf(host), 'qdisc', 'del', 'dev', 'eth0', 'root'])
}

async function dockerEnv(host: string): Promise<NodeJS.ProcessEnv> {
  const e = await belt(['env', '--shell', 'bash', host], {store})
  return {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))}
}

/** The real docker CLI pointed at a host. */
async function dockerOn(host: string, args: string[]) {
  return run('docker', args, {env: await dockerEnv(host)})
}

/** Starts a process in the background, kept for teardown by PID. */
function background(cmd: string, args: string[], env: NodeJS.ProcessEnv): {child: ChildProcess; done: Promise<CliResult>} {
  const child = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  return {child, done: new Promise((resolve) => child.on('close', (code) => resolve({code, stdout, stderr})))}
}

interface Entry {
  id: string
  hostname: string
  status: string
}

/** The swarm's manager (the first host ready initialised it). */
async function managerName(): Promise<string> {
  const {records} = await new Store(store).list()
  return records.find((r) => r.swarm?.role === 'manager')!.name
}

/** The node list as the docker CLI shows it on the manager. */
async function entries(): Promise<Entry[]> {
  const r = await dockerOn(await managerName(), ['node', 'ls', '--format', '{{.ID}}|{{.Hostname}}|{{.Status}}'])
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split('|'))
    .map(([id, hostname, status]) => ({id: id!, hostname: hostname!, status: status!}))
}

/** Polls until `ok` or the deadline; returns the last value. */
async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms: number, every = 500): Promise<T> {
  const deadline = Date.now() + ms
  let v = await what()
  while (!ok(v) && Date.now() < deadline) {
    await sleep(every)
    v = await what()
  }
  return v
}

interface StatusJson {
  nodes: {host?: string; hostname: string; state: string}[]
  ready: number
  down: number
  ghosts: {id: string; why: string}[]
  kept: {id: string; why: string}[]
}

async function status(): Promise<StatusJson> {
  const r = await belt(['swarm', 'status', '--json'], {store})
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as StatusJson
}

describe('ghost node entries on a real swarm of 4 local hosts', () => {
  it('forms node1-3 (one manager) and bootstraps node4 outside the swarm', async () => {
    const a = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '3', '--swarm', '--managers', '1'], {store})
    expect(a.code, a.stderr).toBe(0)
    const b = await belt(['create', '--driver', 'local', ...SUBNET, 'node4'], {store})
    expect(b.code, b.stderr).toBe(0)
    expect((await entries()).map((e) => e.hostname).sort()).toEqual(['node1', 'node2', 'node3'])
  })

  it('belt swarm join removes the ghost entries its own cut-off join attempts left, and node4 joins as a worker', {timeout: 420_000}, async () => {
    await throttleSwarmPort('node4')
    const env: NodeJS.ProcessEnv = {...process.env, BELT_STORE: store, CI: 'true', NO_COLOR: '1'}
    delete env.NODE_ENV
    const join = background(process.execPath, [beltBin, 'swarm', 'join', 'node4'], env)
    // Two entries with no hostname: at least one attempt was abandoned for another.
    const seen = await until(entries, (es) => es.filter((e) => !e.hostname).length >= 2 || join.child.exitCode !== null, 300_000, 1000)
    const ghostsSeen = seen.filter((e) => !e.hostname).map((e) => e.id)
    await unthrottle('node4')
    // Whether the throttled engine abandons attempts depends on this machine's load: when it did
    // not (the join went through), the test still holds belt to "no ghost left, node4 a worker".
    const r = await join.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/joined as worker\s+1/)
    const removed = Number(/Removed (\d+) ghost node entr/.exec(r.stderr)?.[1] ?? 0)
    // The attempt in flight when the throttle was lifted may have completed with its entry.
    expect(removed, r.stderr).toBeGreaterThanOrEqual(Math.max(0, ghostsSeen.length - 1))
    const after = await entries()
    expect(after.map((e) => e.hostname).sort(), JSON.stringify(after)).toEqual(['node1', 'node2', 'node3', 'node4'])
    expect(after.every((e) => e.status === 'Ready')).toBe(true)
  })

  it('a join cut off by hand leaves a ghost: status lists it apart, prune removes it; a stopped host is reported Down, not removed', {timeout: 420_000}, async () => {
    const leave = await belt(['swarm', 'leave', 'node4'], {store})
    expect(leave.code, leave.stderr).toBe(0)
    const {records} = await new Store(store).list()
    const manager = records.find((r) => r.swarm?.role === 'manager')!
    const worker = records.find((r) => r.swarm?.role === 'worker' && r.name !== 'node4')!.name
    const token = (await dockerOn(manager.name, ['swarm', 'join-token', '-q', 'worker'])).stdout.trim()
    await throttleSwarmPort('node4')
    // docker's own join, cut off (a forced leave) once the manager has made its node entry.
    const cli = background('docker', ['swarm', 'join', '--token', token, `${manager.machine!.address}:2377`], await dockerEnv('node4'))
    const seen = await until(entries, (es) => es.some((e) => !e.hostname), 180_000, 500)
    expect(seen.some((e) => !e.hostname), JSON.stringify(seen)).toBe(true)
    await Promise.race([cli.done, sleep(60_000)])
    await dockerOn('node4', ['swarm', 'leave', '--force'])
    await unthrottle('node4')

    const stop = await belt(['stop', worker], {store})
    expect(stop.code, stop.stderr).toBe(0)
    // node3 turns Down; an entry with no hostname is a ghost once it is a minute old (younger, it
    // may be a join registering, and is kept). The cut-off join may have made more than one entry,
    // the last one shortly before the leave: wait until every one is old enough.
    const s = await until(status, (x) => x.down === 1 && x.ghosts.length >= 1 && x.kept.length === 0, 180_000, 2000)
    expect(s.kept, JSON.stringify(s.kept)).toEqual([])
    expect(s.nodes.find((n) => n.host === worker)?.state).toBe('down')
    expect(s.ghosts.length).toBeGreaterThanOrEqual(1)
    expect(s.ready).toBe(2)
    const text = await belt(['swarm', 'status'], {store})
    expect(text.stdout).toMatch(new RegExp(`^${worker}\\s+worker\\s+Down`, 'm'))
    expect(text.stdout).toMatch(/Ghost entries: joins that never completed, not hosts .*belt swarm prune/)
    expect(text.stdout).toMatch(/3 nodes: 2 Ready, 1 Down; .*ghost entr(y|ies) \(belt swarm prune removes them\)/)

    const dry = await belt(['swarm', 'prune', '--dry-run'], {store})
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/Would remove \d+ ghost entr/)
    expect((await entries()).some((e) => !e.hostname)).toBe(true)

    const prune = await belt(['swarm', 'prune'], {store})
    expect(prune.code, prune.stderr).toBe(0)
    expect(prune.stdout).toMatch(/Removed \d+ ghost entr/)
    expect(prune.stdout).toContain(`${worker} is Down: a host of the store; start it with belt start ${worker}`)
    const after = await entries()
    expect(after.filter((e) => !e.hostname), JSON.stringify(after)).toEqual([])
    expect(after.map((e) => `${e.hostname} ${e.status}`).sort()).toEqual(['node1', 'node2', 'node3'].map((n) => `${n} ${n === worker ? 'Down' : 'Ready'}`))
    const s2 = await status()
    expect([s2.ready, s2.down, s2.ghosts.length]).toEqual([2, 1, 0])
  })

  it('rm removes every host of this subnet', async () => {
    const r = await belt(['rm', '-y', '--force', 'node*'], {store})
    expect(r.code, r.stderr).toBe(0)
    const {stdout} = await run('ip', ['netns', 'list'])
    expect(stdout).not.toMatch(/belt-(hub-)?10-236-/)
  })
})
