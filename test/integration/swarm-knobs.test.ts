import {execFile} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt} from '../helpers/cli.js'

const run = promisify(execFile)
const SUBNET = ['--local-subnet', '10.226.0.0/16']
let tmp: string
let store: string

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-knobs-'))
  store = path.join(tmp, 'store')
})
afterAll(async () => {
  const r = await belt(['rm', '-y', '--force', 'node*'], {store}).catch((e: Error) => ({code: -1, stderr: e.message}))
  // A store whose hosts could not be removed is kept: `belt rm` with it finishes the teardown.
  if (r.code === 0 || r.code === 3) await rm(tmp, {recursive: true, force: true})
  else process.stderr.write(`belt rm failed (${r.code}): ${r.stderr}; the store is kept at ${store}\n`)
}, 300_000)

/** Namespaces and links of this file's subnet (the local driver names them belt-10-226-*). */
async function subnetLeftovers(): Promise<string[]> {
  const ns = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => /^belt-(hub-)?10-226(-|$)/.test(n))
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n === 'belt-10-226')
  return [...ns, ...links]
}

/** The real docker CLI pointed at a host with the variables `belt env` prints. */
async function dockerOn(host: string, args: string[]) {
  const e = await belt(['env', '--shell', 'bash', host], {store})
  const env = Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
  return run('docker', args, {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...env}})
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else if (e.isFile()) out.push(p)
  }
  return out
}

const KNOBS = [
  '--default-addr-pool', '10.96.0.0/12',
  '--default-addr-pool-mask-length', '26',
  '--data-path-port', '4800',
  '--cert-expiry', '720h',
  '--dispatcher-heartbeat', '7s',
  '--snapshot-interval', '5000',
  '--max-snapshots', '2',
  '--autolock',
  '--swarm-label', 'zone=eu-1',
  '--swarm-label', 'tier=web',
  '--engine-kernel-profile', 'large-swarm',
]

describe('swarm knobs on a real 2-host swarm', () => {
  it('refuses a bad knob in one line, exit 2, before any host is created', async () => {
    const cases: [string[], RegExp][] = [
      [['--data-path-port', '80'], /--data-path-port 80 is out of range\. Give a port from 1024 to 49151/],
      [['--cert-expiry', '10m'], /--cert-expiry '10m' is shorter than an hour/],
      [['--default-addr-pool', '10.96.0.1/12'], /--default-addr-pool '10\.96\.0\.1\/12' has host bits set\. Use 10\.96\.0\.0\/12/],
      [['--dispatcher-heartbeat', 'soon'], /--dispatcher-heartbeat 'soon' is not a duration/],
      [['--swarm-label', '=x'], /--swarm-label '=x' has no valid key/],
    ]
    for (const [flags, message] of cases) {
      const r = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '2', '--swarm', ...flags], {store})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
    const noSwarm = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '2', '--autolock'], {store})
    expect(noSwarm.code).toBe(2)
    expect(noSwarm.stderr.trim()).toBe('Error: --autolock is an option of the swarm. Add --swarm, or use it with belt swarm init.')
    expect(await subnetLeftovers()).toEqual([])
    const ls = await belt(['ls', '-q'], {store})
    expect(ls.stdout.trim()).toBe('')
  })

  let key = ''
  let stderr = ''

  it('create --swarm with every knob: the swarm is made with them', {timeout: 400_000}, async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '2', '--swarm', '--managers', '1', ...KNOBS], {store})
    stderr = r.stderr
    expect(r.code, r.stderr).toBe(0)
    const m = /Swarm unlock key \(shown only now, never stored; .*\): (SWMKEY-1-\S+)/.exec(r.stderr)
    expect(m, r.stderr).not.toBeNull()
    key = m![1]!
  })

  it('docker info on the manager shows the swarm options', async () => {
    const ls = await belt(['ls'], {store})
    const manager = /^(\S+)\s.*\smanager\s/m.exec(ls.stdout)![1]!
    const info = JSON.parse((await dockerOn(manager, ['info', '--format', '{{json .Swarm.Cluster}}'])).stdout) as {
      Spec: {Raft: {SnapshotInterval: number; KeepOldSnapshots: number}; Dispatcher: {HeartbeatPeriod: number}; CAConfig: {NodeCertExpiry: number}; EncryptionConfig: {AutoLockManagers: boolean}}
      DefaultAddrPool: string[]
      SubnetSize: number
      DataPathPort: number
    }
    expect(info.DefaultAddrPool).toEqual(['10.96.0.0/12'])
    expect(info.SubnetSize).toBe(26)
    expect(info.DataPathPort).toBe(4800)
    expect(info.Spec.Raft.SnapshotInterval).toBe(5000)
    expect(info.Spec.Raft.KeepOldSnapshots).toBe(2)
    expect(info.Spec.Dispatcher.HeartbeatPeriod).toBe(7e9)
    expect(info.Spec.CAConfig.NodeCertExpiry).toBe(720 * 3600 * 1e9)
    expect(info.Spec.EncryptionConfig.AutoLockManagers).toBe(true)
    // The human-readable docker info says the same.
    const text = (await dockerOn(manager, ['info'])).stdout
    expect(text).toMatch(/Autolock Managers: true/)
    expect(text).toMatch(/Heartbeat Period: 7 seconds/)
    expect(text).toMatch(/Snapshot Interval: 5000/)
    expect(text).toMatch(/Number of Old Snapshots to Retain: 2/)
    expect(text).toMatch(/Data Path Port: 4800/)
    // An overlay network takes a /26 from the pool.
    await dockerOn(manager, ['network', 'create', '--driver', 'overlay', 'knobs-net'])
    const subnet = (await dockerOn(manager, ['network', 'inspect', 'knobs-net', '--format', '{{(index .IPAM.Config 0).Subnet}}'])).stdout.trim()
    expect(subnet).toMatch(/^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+\/26$/)
    await dockerOn(manager, ['network', 'rm', 'knobs-net'])
    // The key belt printed is the swarm's unlock key.
    const unlock = (await dockerOn(manager, ['swarm', 'unlock-key', '-q'])).stdout.trim()
    expect(unlock).toBe(key)
  })

  it('the unlock key was printed once and is nowhere in the store (records, runs, journal, logs)', async () => {
    expect(stderr.split(key).length - 1).toBe(1)
    const files = await filesUnder(store)
    expect(files.length).toBeGreaterThan(3)
    for (const f of files) {
      if ((await stat(f)).size > 50_000_000) continue
      expect((await readFile(f)).includes(key), f).toBe(false)
    }
    // The run records say what was asked for, never the key.
    const runs = await filesUnder(path.join(store, 'runs'))
    expect(runs.length).toBeGreaterThan(0)
  })

  it('--engine-kernel-profile wrote its sysctl.d file on every host and said what it could apply', async () => {
    // A local host is a network namespace: the neighbour limits and conntrack are the machine's
    // (absent or read-only inside), so every setting is reported as skipped, never an error.
    expect(stderr.match(/kernel profile large-swarm: 0 of 7 settings applied \(not settable on this host: net\.ipv4\.neigh\.default\.gc_thresh3, /g)).toHaveLength(2)
    for (const host of ['node1', 'node2']) {
      const r = await belt(['ssh', host, 'cat', '/etc/sysctl.d/90-belt-large-swarm.conf'], {store})
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toContain('net.ipv4.neigh.default.gc_thresh3 = 65536\n')
    }
  })

  it('every host got the --swarm-label node labels', async () => {
    const ls = await belt(['ls'], {store})
    const manager = /^(\S+)\s.*\smanager\s/m.exec(ls.stdout)![1]!
    const out = (await dockerOn(manager, ['node', 'ls', '-q'])).stdout.trim().split('\n')
    expect(out).toHaveLength(2)
    for (const id of out) {
      const labels = JSON.parse((await dockerOn(manager, ['node', 'inspect', id, '--format', '{{json .Spec.Labels}}'])).stdout) as Record<string, string>
      expect(labels).toEqual({zone: 'eu-1', tier: 'web'})
    }
  })

  it('swarm init on the existing swarm warns that the options apply only to a new one, and changes nothing', async () => {
    const r = await belt(['swarm', 'init', '--managers', '1', '--data-path-port', '4900'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/Warning: the swarm exists \(\w+\): dataPathPort apply only when a swarm is created; change it with docker swarm update/)
    const ls = await belt(['ls'], {store})
    const manager = /^(\S+)\s.*\smanager\s/m.exec(ls.stdout)![1]!
    expect(JSON.parse((await dockerOn(manager, ['info', '--format', '{{json .Swarm.Cluster.DataPathPort}}'])).stdout)).toBe(4800)
  })

  it('rm tears everything down: no namespace or link of this subnet is left', async () => {
    const r = await belt(['rm', '-y', '--force', 'node*'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await subnetLeftovers()).toEqual([])
  })
})
