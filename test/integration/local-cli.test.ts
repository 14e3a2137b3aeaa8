import {mkdtemp, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt} from '../helpers/cli.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

// A subnet of its own, so the test never meets a user's hosts on the default 10.213/16.
const SUBNET = ['--local-subnet', '10.215.0.0/16']
let tmp: string
let store: string
let before: SystemSnapshot

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-local-cli-'))
  store = path.join(tmp, 'store')
  before = await systemSnapshot()
})
afterAll(async () => {
  // Whatever a failed assertion left: remove through belt itself, then the directory.
  await belt(['rm', '-y', '--force', 'node*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

describe('belt with the local driver, as a new user runs it', () => {
  it('create node[1:5] makes five running hosts with distinct addresses', async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, 'node[1:5]'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/Created and bootstrapped 5 of 5 hosts/)
    const ls = await belt(['ls', '--json'], {store})
    expect(ls.code, ls.stderr).toBe(0)
    const hosts = JSON.parse(ls.stdout) as {name: string; state: string; address: string; driver: string}[]
    expect(hosts.map((h) => h.name)).toEqual(['node1', 'node2', 'node3', 'node4', 'node5'])
    expect(hosts.every((h) => h.state === 'Running' && h.driver === 'local')).toBe(true)
    expect(new Set(hosts.map((h) => h.address)).size).toBe(5)
  })

  it('ssh node3 hostname prints node3, and the exit code of the remote command comes back', async () => {
    const r = await belt(['ssh', 'node3', 'hostname'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('node3')
    const e = await belt(['ssh', 'node2', '--', 'sh', '-c', 'exit 7'], {store})
    expect(e.code).toBe(7)
  })

  it('ip and status answer for a host', async () => {
    const ip = await belt(['ip', 'node1'], {store})
    expect(ip.stdout.trim()).toMatch(/^10\.215\.\d+\.\d+$/)
    const st = await belt(['status', 'node1'], {store})
    expect(st.stdout.trim()).toBe('Running')
  })

  it('--count continues numbering after the existing hosts', async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, '--no-bootstrap', '--count', '2'], {store})
    expect(r.code, r.stderr).toBe(0)
    const ls = await belt(['ls', '-q'], {store})
    expect(ls.stdout.trim().split('\n')).toEqual(['node1', 'node2', 'node3', 'node4', 'node5', 'node6', 'node7'])
  })

  it('creating an existing name is refused and changes nothing', async () => {
    const r = await belt(['create', '--driver', 'local', ...SUBNET, 'node2'], {store})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/node2 already exists/)
  })

  it('stop and start keep the host and its address', async () => {
    const ip = (await belt(['ip', 'node4'], {store})).stdout.trim()
    expect((await belt(['stop', 'node4'], {store})).code).toBe(0)
    expect((await belt(['status', 'node4'], {store})).stdout.trim()).toBe('Stopped')
    expect((await belt(['start', 'node4'], {store})).code).toBe(0)
    expect((await belt(['status', 'node4'], {store})).stdout.trim()).toBe('Running')
    expect((await belt(['ip', 'node4'], {store})).stdout.trim()).toBe(ip)
    const h = await belt(['ssh', 'node4', 'hostname'], {store})
    expect(h.stdout.trim()).toBe('node4')
  })

  it('rm -y removes every host and leaves no namespace, link, mount, process or record behind', async () => {
    const r = await belt(['rm', '-y', 'node[1:7]'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await readdir(path.join(store, 'hosts'))).toEqual([])
    const after = await systemSnapshot()
    expect(after.netns).toEqual(before.netns)
    expect(after.links).toEqual(before.links)
    expect(after.mounts).toEqual(before.mounts)
    expect(after.processes).toEqual(before.processes)
  })
})
