import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {gunzipSync} from 'node:zlib'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'
import {belt, repoRoot} from '../helpers/cli.js'

const run = promisify(execFile)
const SUBNET = ['--local-subnet', '10.226.0.0/16']
let tmp: string
let store: string
let archive: string
/** The init pids of this file's hosts, for the teardown check. */
let pids: number[] = []

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-image-'))
  store = path.join(tmp, 'store')
  archive = path.join(tmp, 'belt-busybox.tar')
  await run('bash', [path.join(repoRoot, 'scripts/busybox-image.sh'), archive])
})
afterAll(async () => {
  const r = await belt(['rm', '-y', '--force', 'node*'], {store}).catch((e: Error) => ({code: -1, stderr: e.message}))
  // A store whose hosts could not be removed is kept: `belt rm` with it finishes the teardown.
  if (r.code === 0 || r.code === 3) await rm(tmp, {recursive: true, force: true})
  else process.stderr.write(`belt rm failed (${r.code}): ${r.stderr}; the store is kept at ${store}\n`)
}, 300_000)

/**
 * What this file's hosts could leave on the machine: namespaces and links of its own subnet (the
 * local driver names them belt-10-226-*), and their init processes. Other engineers' hosts on other
 * subnets may come and go meanwhile, so a machine-wide snapshot would not say anything about ours.
 */
async function leftovers(): Promise<string[]> {
  const ns = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => /^belt-(hub-)?10-226(-|$)/.test(n))
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n === 'belt-10-226')
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  })
  return [...ns, ...links, ...alive.map((p) => `pid ${p}`)]
}

/** The real docker CLI pointed at a host with the variables `belt env` prints. */
async function dockerOn(host: string, args: string[]) {
  const e = await belt(['env', '--shell', 'bash', host], {store})
  const env = Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
  return run('docker', args, {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...env}})
}

/** True when this kernel has IPVS (CONFIG_IP_VS), which Docker's routing mesh needs. */
function kernelHasIpvs(): boolean {
  if (existsSync('/proc/net/ip_vs')) return true
  try {
    return /^CONFIG_IP_VS=[ym]$/m.test(gunzipSync(readFileSync('/proc/config.gz')).toString('utf8'))
  } catch {
    return false
  }
}

/** GET http://ADDRESS:PORT/ until it answers (the routing mesh converges after the task runs), at most `tries` seconds. */
async function httpGet(address: string, port: number, tries = 60): Promise<string> {
  let last: unknown
  for (let i = 0; i < tries; i++) {
    try {
      const r = await fetch(`http://${address}:${port}/`, {signal: AbortSignal.timeout(3000)})
      if (r.ok) return await r.text()
      last = new Error(`HTTP ${r.status}`)
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
  throw new Error(`http://${address}:${port}/ never answered: ${(last as Error)?.message}`)
}

describe('belt image load: a stack on hosts with no registry', () => {
  let addresses: Record<string, string>
  let manager: string

  it('three local hosts form a swarm', {timeout: 400_000}, async () => {
    expect(await leftovers()).toEqual([])
    const r = await belt(['create', '--driver', 'local', ...SUBNET, '--count', '3', '--swarm', '--managers', '1'], {store})
    expect(r.code, r.stderr).toBe(0)
    const {records} = await new Store(store).list()
    addresses = Object.fromEntries(records.map((x) => [x.name, x.machine!.address]))
    manager = records.find((x) => x.swarm?.role === 'manager')!.name
    pids = records.map((x) => Number((x.machine!.data as {pid?: number}).pid)).filter((p) => p > 0)
    expect(pids).toHaveLength(3)
    expect(Object.keys(addresses).sort()).toEqual(['node1', 'node2', 'node3'])
  })

  it('refuses a file that is not an image archive, in one line, exit 2, before any upload', async () => {
    const bogus = path.join(tmp, 'notes.txt')
    await writeFile(bogus, 'not a tar\n'.repeat(100))
    const r = await belt(['image', 'load', bogus, 'node*'], {store})
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`${bogus} is not an image archive (not a tar file)`)
    const missing = await belt(['image', 'load', path.join(tmp, 'nope.tar'), 'node*'], {store})
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/cannot read the image archive .*nope\.tar: no such file/)
    const nohost = await belt(['image', 'load', archive, 'web9'], {store})
    expect(nohost.code).toBe(3)
  })

  it('loads the busybox archive into every engine, once per host', async () => {
    const r = await belt(['image', 'load', archive, 'node*', '--json'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^node1: loaded belt\/busybox:latest \(/m)
    expect(r.stderr).toMatch(/Loaded belt\/busybox:latest on 3 of 3 hosts/)
    const out = JSON.parse(r.stdout) as {name: string; ok: boolean; images: string[]}[]
    expect(out.map((o) => [o.name, o.ok, o.images])).toEqual([
      ['node1', true, ['belt/busybox:latest']],
      ['node2', true, ['belt/busybox:latest']],
      ['node3', true, ['belt/busybox:latest']],
    ])
    for (const host of ['node1', 'node2', 'node3']) {
      const ls = await dockerOn(host, ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])
      expect(ls.stdout.split('\n')).toContain('belt/busybox:latest')
    }
  })

  it('a global service of that image runs on every node and answers on every node\'s address', {timeout: 300_000}, async () => {
    // Every node runs the image it loaded: no node pulls anything (there is no registry to pull from).
    const created = await dockerOn(manager, ['service', 'create', '--quiet', '--name', 'web', '--mode', 'global', '-p', 'published=8080,target=8080,mode=host', 'belt/busybox', 'httpd', '-f', '-p', '8080'])
    expect(created.stdout.trim()).toMatch(/^[a-z0-9]{25}$/)
    const ps = await dockerOn(manager, ['service', 'ps', 'web', '--format', '{{.Node}} {{.CurrentState}}'])
    expect(ps.stdout.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ')).sort()).toEqual(['node1 Running', 'node2 Running', 'node3 Running'])
    for (const address of Object.values(addresses)) expect(await httpGet(address, 8080)).toBe('belt busybox httpd\n')
    await dockerOn(manager, ['service', 'rm', 'web'])
  })

  // The routing mesh needs IPVS in the kernel (dockerd builds the ingress load balancer with it):
  // kernels built without CONFIG_IP_VS (some VM kernels, this CI machine's among them) cannot have it.
  it.runIf(kernelHasIpvs())('one replica publishes a port that answers on every node through the routing mesh', {timeout: 300_000}, async () => {
    await dockerOn(manager, ['service', 'create', '--quiet', '--name', 'mesh', '-p', '8081:8080', 'belt/busybox', 'httpd', '-f', '-p', '8080'])
    for (const address of Object.values(addresses)) expect(await httpGet(address, 8081)).toBe('belt busybox httpd\n')
    await dockerOn(manager, ['service', 'rm', 'mesh'])
  })

  it('a host whose engine is down fails alone: exit 4, the others load, and a retry line for that host', async () => {
    const stop = await belt(['ssh', 'node3', 'systemctl', 'stop', 'docker'], {store})
    expect(stop.code, stop.stderr).toBe(0)
    const r = await belt(['image', 'load', archive, 'node*', '-c', '2'], {store})
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/^node3: load failed: /m)
    expect(r.stderr).toMatch(/Loaded belt\/busybox:latest on 2 of 3 hosts .*; 1 failed\./)
    expect(r.stderr).toMatch(/^Retry only those with: belt image load (--store \S+ )?--concurrency 2 \S+\/belt-busybox\.tar node3$/m)
    await belt(['ssh', 'node3', 'systemctl', 'start', 'docker'], {store})
  })

  it('rm tears everything down: no namespace, link or process of these hosts is left', async () => {
    const r = await belt(['rm', '-y', '--force', 'node*'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await leftovers()).toEqual([])
  })
})
