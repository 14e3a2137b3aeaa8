import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt} from '../helpers/cli.js'
import {startEmulator, type RunningEmulator} from '../helpers/emulator.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

// The README's DigitalOcean rehearsal, end to end: `belt emulator digitalocean` (droplets backed by
// real local hosts), then belt create --driver digitalocean --count 5 --swarm against it.
const run = promisify(execFile)
const TOKEN = 'dop_v1_belt_test_token_never_logged'
let tmp: string
let store: string
let emulator: RunningEmulator
let apiUrl: string
let before: SystemSnapshot

beforeAll(async () => {
  before = await systemSnapshot()
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-do-swarm-'))
  store = path.join(tmp, 'store')
  emulator = await startEmulator('digitalocean', ['--local-subnet', '10.229.0.0/16', '--boot-delay', '200'], path.join(tmp, 'emulator-store'))
  apiUrl = emulator.url
})

afterAll(async () => {
  await belt(['rm', '-y', '--force', 'node*'], {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}}).catch(() => undefined)
  await emulator?.stop()
  await rm(tmp, {recursive: true, force: true})
})

async function api<T>(p: string): Promise<T> {
  const res = await fetch(`${apiUrl}${p}`, {headers: {authorization: `Bearer ${TOKEN}`}})
  expect(res.status).toBe(200)
  return (await res.json()) as T
}

describe('digitalocean through the DigitalOcean emulator, with real hosts behind it', () => {
  it('belt create --count 5 --swarm ends with a 5-node swarm the docker CLI reports Ready', async () => {
    const r = await belt(['create', '--driver', 'digitalocean', '--digitalocean-api-url', apiUrl, '--count', '5', '--swarm'], {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/5 of 5 hosts in it/)
    expect(r.stderr + r.stdout).not.toContain(TOKEN)
    const st = await belt(['swarm', 'status', '--json'], {store})
    const manager = (JSON.parse(st.stdout) as {nodes: {host: string; role: string}[]}).nodes.find((n) => n.role === 'manager')!.host
    const e = await belt(['env', '--shell', 'bash', manager], {store})
    const env = Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
    const ls = await run('docker', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'], {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker'), ...env}})
    expect(ls.stdout.trim().split('\n').sort()).toEqual(['node1 Ready', 'node2 Ready', 'node3 Ready', 'node4 Ready', 'node5 Ready'])
  })

  it('the token is in no file of the store', async () => {
    const {stdout} = await run('grep', ['-rl', TOKEN, store]).catch((e: {stdout?: string; code?: number}) => ({stdout: e.code === 1 ? '' : String(e.stdout)}))
    expect(stdout).toBe('')
  })

  it('belt rm -y leaves the emulator with no droplet, key or firewall of the cluster', async () => {
    const r = await belt(['rm', '-y', 'node*'], {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}})
    expect(r.code, r.stderr).toBe(0)
    expect((await api<{droplets: unknown[]}>('/v2/droplets')).droplets).toEqual([])
    expect((await api<{ssh_keys: unknown[]}>('/v2/account/keys')).ssh_keys).toEqual([])
    expect((await api<{firewalls: unknown[]}>('/v2/firewalls')).firewalls).toEqual([])
  })

  it('the emulator stops on SIGTERM and the machine is left as it was', async () => {
    expect(await emulator.stop()).toBe(0)
    expect(await systemSnapshot()).toEqual(before)
  })
})
