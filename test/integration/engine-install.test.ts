import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {HostRecord} from '../../src/store/types.js'
import {serveAptRepo, type AptRepo} from '../helpers/apt-repo.js'
import {belt, repoRoot} from '../helpers/cli.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

/**
 * The engine install path for real: a host whose engine is absent gets docker.io from an APT
 * repository, as a fresh Debian VM would. The repository is served by this test process on the
 * gateway address of the host's private network (tests never reach the internet); the .deb was
 * cached by scripts/setup.sh (`.belt-test/debs/`).
 */

const run = promisify(execFile)
// A subnet of its own, so this file never meets other tests' hosts.
const SUBNET = '10.221.0.0/16'
const GATEWAY = '10.221.0.1'
const DEB_DIR = path.join(repoRoot, '.belt-test', 'debs')
const NAME = 'inst1'

let tmp: string
let store: string
let before: SystemSnapshot
let repo: AptRepo | undefined
let debName: string
let debVersion: string
let hostAddress: string
let hostNetns: string
let dockerEnv: NodeJS.ProcessEnv

const ssh = (...argv: string[]) => belt(['ssh', NAME, '--', ...argv], {store})
const inspect = async (): Promise<HostRecord> => {
  const r = await belt(['inspect', NAME], {store})
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as HostRecord
}
/** The status line of a package in this machine's own dpkg database. */
const machineStatus = async (pkg: string) => (await run('dpkg-query', ['-W', '-f=${Status}', pkg])).stdout

/** What of `s` belongs to this file: its subnet's namespaces and links, and its temp directory. */
function ours(s: SystemSnapshot, pids: ReadonlySet<number>): SystemSnapshot {
  return {
    netns: s.netns.filter((n) => n.includes('10-221')),
    links: s.links.filter((l) => l.includes('10-221')),
    mounts: s.mounts.filter((m) => m.includes('10-221') || m.startsWith(tmp)),
    processes: s.processes.filter((p) => pids.has(Number(p.split(/\s+/)[0]))),
  }
}

/** PID -> start time (clock ticks since boot) of every process in a network namespace. */
async function netnsProcesses(ns: string): Promise<Map<number, string>> {
  const out = await run('ip', ['netns', 'pids', ns]).catch(() => ({stdout: ''}))
  const procs = new Map<number, string>()
  for (const pid of out.stdout.split('\n').filter(Boolean).map(Number)) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
    if (stat) procs.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!)
  }
  return procs
}

/** `belt env` output for bash, parsed back into variables. */
function parseEnv(out: string): NodeJS.ProcessEnv {
  return Object.fromEntries([...out.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-engine-install-'))
  store = path.join(tmp, 'store')
  // The .deb this file installs is the version this machine runs, so that every dependency is
  // already satisfied in the host (its /usr and /var are copies of this machine's).
  const debs = existsSync(DEB_DIR) ? (await readdir(DEB_DIR)).filter((f) => f.startsWith('docker.io_') && f.endsWith('.deb')).sort() : []
  if (debs.length === 0) throw new Error(`no docker.io .deb in ${DEB_DIR}: run bash scripts/setup.sh (it downloads it once)`)
  const installed = (await run('dpkg-query', ['-W', '-f=${Version}', 'docker.io'])).stdout
  const versions = await Promise.all(debs.map(async (f) => (await run('dpkg-deb', ['-f', path.join(DEB_DIR, f), 'Version'])).stdout.trim()))
  const i = Math.max(0, versions.indexOf(installed))
  debName = debs[i]!
  debVersion = versions[i]!
  before = await systemSnapshot()
})

afterAll(async () => {
  if (!tmp) return // beforeAll failed before making the store: nothing of ours exists
  // A safety net for a run that stopped half-way; the last test does (and checks) the teardown.
  await repo?.close()
  await belt(['rm', '-y', '--force', 'inst*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

describe('the engine install path, with a real package install inside a host', () => {
  it('belt create --no-bootstrap makes a host and leaves its engine alone', async () => {
    const r = await belt(['create', '--driver', 'local', '--local-subnet', SUBNET, '--no-bootstrap', NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    const rec = await inspect()
    expect(rec.engine).toBeUndefined()
    hostAddress = rec.machine!.address
    hostNetns = (rec.machine!.data as {netns: string}).netns
    expect(hostAddress).toMatch(/^10\.221\.\d+\.\d+$/)
  })

  it('purging docker.io inside the host removes dockerd there only, not from this machine', async () => {
    const purge = await ssh('dpkg', '--purge', '--force-depends', 'docker.io')
    expect(purge.code, purge.stderr).toBe(0)
    const which = await ssh('sh', '-c', 'command -v dockerd')
    expect(which.code).not.toBe(0)
    expect(which.stdout).toBe('')
    expect((await ssh('dpkg', '-s', 'docker.io')).code).not.toBe(0)
    // The host's /usr and /var are copy-on-write: this machine's engine is untouched.
    expect(existsSync('/usr/sbin/dockerd')).toBe(true)
    expect(await machineStatus('docker.io')).toBe('install ok installed')
  })

  it("the host's apt is pointed at a repository served by this test, and at nothing else", async () => {
    repo = await serveAptRepo(DEB_DIR, GATEWAY)
    expect([...repo.debs.values()].map((d) => d.package)).toContain('docker.io')
    const sources = path.join(tmp, 'sources.list')
    await writeFile(sources, `${repo.sourcesLine}\n`)
    const scp = await belt(['scp', sources, `${NAME}:/etc/apt/sources.list`], {store})
    expect(scp.code, scp.stderr).toBe(0)
    // Like a user's internal mirror: no other source, no proxy on the way to it, and no copy of
    // the package already in apt's cache (the host's cache is this machine's, copy-on-write), so
    // that apt in the host must download it.
    const setup = await ssh(
      'sh',
      '-c',
      [
        'rm -f /etc/apt/sources.list.d/*',
        `echo 'Acquire::http::Proxy::${GATEWAY} "DIRECT";' > /etc/apt/apt.conf.d/99belt-test-repo`,
        'rm -f /var/cache/apt/archives/docker.io_*.deb',
        'ls /etc/apt/sources.list.d',
        'cat /etc/apt/sources.list',
      ].join(' && '),
    )
    expect(setup.code, setup.stderr).toBe(0)
    expect(setup.stdout.trim()).toBe(repo.sourcesLine)
    expect(existsSync('/etc/apt/apt.conf.d/99belt-test-repo')).toBe(false)
  })

  it('belt provision installs docker.io from that repository and brings the engine up with TLS', async () => {
    const r = await belt(['provision', NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^inst1: installing the Docker engine on /m)
    expect(r.stderr).toMatch(/^inst1: engine \S+ ready at tcp:\/\/10\.221\.\d+\.\d+:2376 \(engine installed, /m)

    const rec = await inspect()
    expect(rec.phase).toBe('bootstrapped')
    expect(rec.engine?.installed).toBe(true)

    const status = await ssh('dpkg', '-s', 'docker.io')
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/^Status: install ok installed$/m)
    expect(status.stdout).toContain(`Version: ${debVersion}\n`)

    // The host's apt really fetched the index and the package from this test's server.
    const fromHost = repo!.requests.filter((q) => q.remoteAddress === hostAddress)
    expect(fromHost.some((q) => q.path === '/Packages' && q.status === 200)).toBe(true)
    expect(repo!.served(debName)).toBeGreaterThanOrEqual(1)
    expect(repo!.requests.filter((q) => q.path === `/${debName}`).every((q) => q.remoteAddress === hostAddress)).toBe(true)
  })

  it('provision again installs nothing, downloads nothing and keeps engine.installed', async () => {
    const served = repo!.served(debName)
    const r = await belt(['provision', NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(/installing/)
    expect(r.stderr).toMatch(/^inst1: engine \S+ ready .*\(unchanged, /m)
    expect((await inspect()).engine?.installed).toBe(true)
    expect(repo!.served(debName)).toBe(served)
  })

  it('eval "$(belt env inst1)" && docker info: the installed engine answers over TLS', async () => {
    const e = await belt(['env', '--shell', 'bash', NAME], {store})
    expect(e.code, e.stderr).toBe(0)
    dockerEnv = parseEnv(e.stdout)
    expect(dockerEnv).toMatchObject({DOCKER_TLS_VERIFY: '1', DOCKER_MACHINE_NAME: NAME, DOCKER_HOST: `tcp://${hostAddress}:2376`})
    const info = await run('docker', ['info', '--format', '{{json .}}'], {
      env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...dockerEnv},
    })
    const parsed = JSON.parse(info.stdout) as {Name: string; ServerVersion: string; Labels: string[]}
    expect(parsed.Name).toBe(NAME)
    expect(parsed.Labels).toContain('provider=local')
    expect(debVersion.startsWith(parsed.ServerVersion)).toBe(true)
  })

  it('rm leaves nothing behind: no namespace, link, mount or process of the host', async () => {
    const hostProcs = await netnsProcesses(hostNetns)
    expect(hostProcs.size).toBeGreaterThan(0)
    await repo!.close()
    repo = undefined
    const r = await belt(['rm', '-y', '--force', 'inst*'], {store})
    expect(r.code, r.stderr).toBe(0)
    const after = await systemSnapshot()
    const pids = new Set(hostProcs.keys())
    expect(ours(after, pids)).toEqual(ours(before, pids))
    // No process of the host is alive (a PID reused by an unrelated process has another start time).
    const survivors: number[] = []
    for (const [pid, start] of hostProcs) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
      if (stat && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === start) survivors.push(pid)
    }
    expect(survivors).toEqual([])
    expect(existsSync(`/run/netns/${hostNetns}`)).toBe(false)
    expect(await machineStatus('docker.io')).toBe('install ok installed')
  })
})
