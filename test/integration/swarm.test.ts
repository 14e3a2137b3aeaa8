import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {listRuns, loadRun} from '../../src/store/runs.js'
import {Store} from '../../src/store/store.js'
import {belt} from '../helpers/cli.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

const run = promisify(execFile)
const SUBNET = ['--local-subnet', '10.224.0.0/16']
let tmp: string
let store: string
let before: SystemSnapshot

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-swarm-'))
  store = path.join(tmp, 'store')
  before = await systemSnapshot()
})
afterAll(async () => {
  await belt(['rm', '-y', '--force', 'node*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

/** The real docker CLI pointed at a host with the variables `belt env` prints. */
async function dockerOn(host: string, args: string[]) {
  const e = await belt(['env', '--shell', 'bash', host], {store})
  const env = Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
  return run('docker', args, {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...env}})
}

interface StatusJson {
  nodes: {host?: string; state: string; role: string; availability: string; leader: boolean}[]
  ready: number
  down: number
  managers: number
  leader?: string
}

async function status(): Promise<StatusJson> {
  const r = await belt(['swarm', 'status', '--json'], {store})
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as StatusJson
}

describe('a real swarm of 10 local hosts', () => {
  it('belt create --count 10 --swarm forms it with 3 managers, and the docker CLI sees all 10 Ready', async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '10', '--swarm', '--managers', '3'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/joined as manager\s+3/)
    expect(r.stderr).toMatch(/joined as worker\s+7/)
    const {records} = await new Store(store).list()
    const managers = records.filter((x) => x.swarm?.role === 'manager').map((x) => x.name)
    expect(managers).toHaveLength(3)
    const ls = await dockerOn(managers[0]!, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'])
    const lines = ls.stdout.trim().split('\n').sort()
    expect(lines).toHaveLength(10)
    expect(lines.every((l) => / Ready( |$)/.test(l))).toBe(true)
    // Node names are host names.
    expect(lines.map((l) => l.split(' ')[0]).sort()).toEqual(records.map((x) => x.name).sort())
    expect(lines.filter((l) => /Leader|Reachable/.test(l))).toHaveLength(3)
    // 10 nodes: managers are drained (auto from 10 nodes on).
    const s = await status()
    expect(s.nodes.filter((n) => n.role === 'manager').every((n) => n.availability === 'drain')).toBe(true)
  })

  it('records the batch in the experiment log with every phase of every host', async () => {
    const s = new Store(store)
    const runs = await listRuns(s)
    expect(runs).toHaveLength(1)
    const runLog = await loadRun(s)
    expect(runLog.hosts).toHaveLength(10)
    for (const h of runLog.hosts) {
      expect(h.ok).toBe(true)
      for (const k of ['createRequested', 'addressKnown', 'sshUp', 'engineReady', 'joined'] as const) expect(h.times[k], `${h.name} ${k}`).toBeDefined()
      expect(Date.parse(h.times.joined!)).toBeGreaterThanOrEqual(Date.parse(h.times.engineReady!))
    }
  })

  it('swarm init a second time changes nothing and exits 0', async () => {
    const before = await status()
    const r = await belt(['swarm', 'init'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/already a member\s+10/)
    expect(r.stderr).not.toMatch(/joining|initialising/)
    const after = await status()
    expect(after.nodes.map((n) => [n.host, n.role])).toEqual(before.nodes.map((n) => [n.host, n.role]))
  })

  it('a worker whose engine is stopped shows Down in belt swarm status', async () => {
    const worker = (await status()).nodes.find((n) => n.role === 'worker')!.host!
    const stop = await belt(['ssh', worker, 'systemctl', 'stop', 'docker'], {store})
    expect(stop.code, stop.stderr).toBe(0)
    let s = await status()
    for (let i = 0; i < 60 && s.nodes.find((n) => n.host === worker)?.state !== 'down'; i++) {
      await new Promise((r) => setTimeout(r, 1000))
      s = await status()
    }
    expect(s.nodes.find((n) => n.host === worker)?.state).toBe('down')
    expect(s.down).toBe(1)
    const text = await belt(['swarm', 'status'], {store})
    expect(text.stdout).toMatch(new RegExp(`^${worker}\\s+worker\\s+Down`, 'm'))
    expect(text.stdout).toMatch(/10 nodes: 9 Ready, 1 Down; 3 managers/)
    await belt(['ssh', worker, 'systemctl', 'start', 'docker'], {store})
  })

  it('promote and demote change roles; leave removes a worker from the node list', async () => {
    const s = await status()
    const worker = s.nodes.filter((n) => n.role === 'worker').at(-1)!.host!
    expect((await belt(['swarm', 'promote', worker], {store})).code).toBe(0)
    expect((await status()).nodes.find((n) => n.host === worker)?.role).toBe('manager')
    expect((await belt(['swarm', 'demote', worker], {store})).code).toBe(0)
    expect((await status()).nodes.find((n) => n.host === worker)?.role).toBe('worker')
    const leave = await belt(['swarm', 'leave', worker], {store})
    expect(leave.code, leave.stderr).toBe(0)
    const after = await status()
    expect(after.nodes.map((n) => n.host)).not.toContain(worker)
    expect(after.nodes).toHaveLength(9)
    // And it can join again.
    const join = await belt(['swarm', 'join', worker], {store})
    expect(join.code, join.stderr).toBe(0)
    expect((await status()).nodes.filter((n) => n.state === 'ready')).toHaveLength(10)
  })

  it('a manager does not leave without --force, with one clear line', async () => {
    const manager = (await status()).nodes.find((n) => n.role === 'manager')!.host!
    const r = await belt(['swarm', 'leave', manager], {store})
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`${manager} is a manager`)
    expect(r.stderr).toContain(`Demote first (belt swarm demote ${manager}), or pass --force`)
  })

  it('rm tears the swarm down and leaves the machine as it was', async () => {
    const r = await belt(['rm', '-y', 'node*'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await systemSnapshot()).toEqual(before)
  })
})
