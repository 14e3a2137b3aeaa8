import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {ansibleGroup, ansibleInventory, buildInventory, knownHostsHost, knownHostsText, proxyCommand, sshConfigText} from '../../src/services/inventory.js'
import {Store, newRecord} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'

let dir: string
let store: Store

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'belt-inventory-'))
  store = new Store(path.join(dir, 'store'))
  await store.init()
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

const KEY1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJwxV5TTzUqDJEB6PgELuV6KhtKs4WEhC4p8AMLj5J8H'
const KEY2 = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBO+Hzojqlv8gzrqm4'

/** Writes records straight through the store's own reservation. */
async function put(...records: HostRecord[]): Promise<void> {
  await store.reserve(() => records)
}

const host = (name: string, o: {cluster?: string; driver?: string; port?: number; user?: string; keys?: string[]; role?: 'manager' | 'worker'; created?: boolean} = {}): HostRecord => {
  const r = newRecord({name, cluster: o.cluster ?? 'default', driver: o.driver ?? 'local', driverOptions: {}})
  if (o.created === false) return r
  return {
    ...r,
    phase: o.role ? 'joined' : 'bootstrapped',
    machine: {id: name, address: `10.9.0.${name.replace(/\D/g, '')}`, privateAddress: `172.16.0.${name.replace(/\D/g, '')}`, ssh: {user: o.user ?? 'root', port: o.port ?? 22}, data: {}},
    hostKeys: o.keys ?? [KEY1],
    engine: {url: `tcp://10.9.0.${name.replace(/\D/g, '')}:2376`, id: 'e', name, serverVersion: '24', labels: [], config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []}},
    swarm: o.role ? {role: o.role, nodeId: `id-${name}`} : undefined,
  }
}

describe('known_hosts', () => {
  it('keys each pinned key by address, with [address]:port off port 22, as ssh looks it up', () => {
    expect(knownHostsHost('10.0.0.1', 22)).toBe('10.0.0.1')
    expect(knownHostsHost('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222')
  })

  it('writes every pinned key of every host with --known-hosts, and leaves out hosts with no machine', async () => {
    await put(host('node1', {keys: [KEY1, KEY2]}), host('node2', {port: 2200, user: 'ubuntu'}), host('node3', {created: false}))
    // A directory that does not exist is not made: an environment error naming the file.
    const nowhere = path.join(dir, 'nowhere', 'known_hosts')
    await expect(buildInventory({store, patterns: [], format: 'json', knownHostsFile: nowhere, writeKnownHosts: true})).rejects.toMatchObject({code: 'E_KNOWN_HOSTS_WRITE', exit: 5})
    const file = path.join(dir, 'known_hosts')
    const res = await buildInventory({store, patterns: ['node1'], format: 'json', knownHostsFile: file, writeKnownHosts: true})
    expect(res.knownHostsFile).toBe(file)
    // The file holds every host of the store, not only the selection, so an earlier export stays valid.
    expect(await readFile(file, 'utf8')).toBe(`10.9.0.1 ${KEY1}\n10.9.0.1 ${KEY2}\n[10.9.0.2]:2200 ${KEY1}\n`)
    expect((await stat(file)).mode & 0o777).toBe(0o644)
    const kh = await buildInventory({store, patterns: ['node[2:3]'], format: 'known-hosts'})
    expect(kh.output).toBe(`[10.9.0.2]:2200 ${KEY1}\n`)
    expect(kh.knownHostsFile).toBeUndefined()
    expect(kh.warnings).toEqual(['node3 is not created yet (reserved): left out'])
  })
})

describe('ansible', () => {
  it("is Ansible's dynamic-inventory JSON: groups for clusters, drivers, swarm managers and workers, and hostvars to log in with the pinned keys", async () => {
    await put(
      host('node1', {role: 'manager'}),
      host('node2', {role: 'worker'}),
      host('node3', {role: 'worker', cluster: 'edge-eu', user: 'ubuntu', port: 2222}),
      host('node4'),
      host('node5', {created: false}),
    )
    const res = await buildInventory({store, patterns: [], format: 'ansible'})
    const inv = JSON.parse(res.output)
    const kh = path.resolve(store.dir, 'known_hosts')
    expect(res.knownHostsFile).toBe(kh)
    expect(inv.belt.hosts).toEqual(['node1', 'node2', 'node3', 'node4'])
    expect(inv.swarm_managers.hosts).toEqual(['node1'])
    expect(inv.swarm_workers.hosts).toEqual(['node2', 'node3'])
    expect(inv.cluster_default.hosts).toEqual(['node1', 'node2', 'node4'])
    expect(inv.cluster_edge_eu.hosts).toEqual(['node3'])
    expect(inv.driver_local.hosts).toHaveLength(4)
    expect(inv.all.children).toEqual(expect.arrayContaining(['belt', 'swarm_managers', 'swarm_workers', 'cluster_default', 'cluster_edge_eu', 'driver_local']))
    expect(Object.keys(inv._meta.hostvars)).toEqual(['node1', 'node2', 'node3', 'node4'])
    expect(inv._meta.hostvars.node3).toEqual({
      ansible_host: '10.9.0.3',
      ansible_user: 'ubuntu',
      ansible_port: 2222,
      ansible_ssh_private_key_file: path.resolve(store.dir, 'keys/edge-eu/id_ed25519'),
      ansible_ssh_common_args: `-o UserKnownHostsFile=${kh} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
      belt_cluster: 'edge-eu',
      belt_driver: 'local',
      belt_private_address: '172.16.0.3',
      belt_swarm_role: 'worker',
      belt_engine_url: 'tcp://10.9.0.3:2376',
    })
    expect(res.warnings).toEqual(['node5 is not created yet (reserved): left out'])
    expect(await readFile(kh, 'utf8')).toMatch(/^10\.9\.0\.1 ssh-ed25519 /)
    // No secret: no private key material anywhere in the output.
    expect(res.output).not.toMatch(/PRIVATE KEY/)
  })

  it('group names are letters, digits and underscores', () => {
    expect(ansibleGroup('edge-eu.1')).toBe('edge_eu_1')
    expect(ansibleInventory([], '/k').swarm_managers).toEqual({hosts: []})
  })
})

describe('ssh-config and json', () => {
  it('ssh-config has one Host block per created host, pointing at the exported known_hosts with strict checking', async () => {
    await put(host('node1'), host('node2', {keys: []}))
    const res = await buildInventory({store, patterns: [], format: 'ssh-config', knownHostsFile: path.join(dir, 'my known_hosts')})
    expect(res.output).toContain(
      [
        'Host node1',
        '  HostName 10.9.0.1',
        '  User root',
        '  Port 22',
        `  IdentityFile ${path.resolve(store.dir, 'keys/default/id_ed25519')}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile "${path.join(dir, 'my known_hosts')}"`,
        '  StrictHostKeyChecking yes',
      ].join('\n'),
    )
    expect(res.warnings).toEqual(['node2 has no pinned host key yet, so ssh will refuse it: run belt ssh node2 true once to pin it'])
    expect(sshConfigText([], '/k')).toBe('')
    // ssh expands % tokens in these paths: a literal % is doubled.
    expect(sshConfigText([JSON.parse(JSON.stringify(res.hosts[0]))], '/srv/100%/known_hosts')).toContain('  UserKnownHostsFile /srv/100%%/known_hosts\n')
  })

  it('json lists every selected host, created or not, with stable fields, and writes no file unless asked', async () => {
    await put(host('node1', {role: 'manager'}), host('node2', {created: false}))
    const res = await buildInventory({store, patterns: ['node*'], format: 'json'})
    expect(res.knownHostsFile).toBeUndefined()
    const hosts = JSON.parse(res.output)
    expect(hosts[0]).toEqual({
      name: 'node1',
      cluster: 'default',
      driver: 'local',
      phase: 'joined',
      address: '10.9.0.1',
      privateAddress: '172.16.0.1',
      ssh: {user: 'root', port: 22, identityFile: path.resolve(store.dir, 'keys/default/id_ed25519'), proxy: null},
      hostKeys: [KEY1],
      engineUrl: 'tcp://10.9.0.1:2376',
      swarm: {role: 'manager', nodeId: 'id-node1'},
    })
    expect(hosts[1]).toMatchObject({name: 'node2', address: null, ssh: null, hostKeys: [], swarm: null})
    await expect(stat(path.join(store.dir, 'known_hosts'))).rejects.toThrow(/ENOENT/)
  })

  it('the default export into a store that does not exist yet makes the store private (0700), as belt create does', async () => {
    const fresh = new Store(path.join(dir, 'fresh'))
    const res = await buildInventory({store: fresh, patterns: [], format: 'ssh-config'})
    expect(res.output).toBe('')
    expect(await readFile(path.join(fresh.dir, 'known_hosts'), 'utf8')).toBe('')
    expect((await stat(fresh.dir)).mode & 0o777).toBe(0o700)
  })

  it('a pattern that matches nothing is a not-found error; an unknown format a usage error', async () => {
    await put(host('node1'))
    await expect(buildInventory({store, patterns: ['web*'], format: 'json'})).rejects.toMatchObject({code: 'E_HOST_NOT_FOUND', exit: 3})
    await expect(buildInventory({store, patterns: [], format: 'yaml' as never})).rejects.toBeInstanceOf(UserError)
  })

  it("a host with the operator's own key behind a bastion: that key, a ProxyCommand checked against the export, the bastion's keys exported once", async () => {
    const behind = (name: string): HostRecord => {
      const r = host(name)
      return {...r, machine: {...r.machine!, ssh: {user: 'admin', port: 22, identityFile: '/home/op/.ssh/id ed25519', proxy: {user: 'jump', host: '198.51.100.9', port: 2222, hostKeys: [KEY2]}}}}
    }
    await put(behind('node1'), behind('node2'))
    const kh = path.join(dir, 'kh')
    const cfg = await buildInventory({store, patterns: [], format: 'ssh-config', knownHostsFile: kh})
    const pc = `ssh -W %h:%p -p 2222 -i '/home/op/.ssh/id ed25519' -o IdentitiesOnly=yes -o UserKnownHostsFile=${kh} -o StrictHostKeyChecking=yes jump@198.51.100.9`
    expect(proxyCommand({user: 'jump', host: '198.51.100.9', port: 2222}, '/home/op/.ssh/id ed25519', kh)).toBe(pc)
    expect(cfg.output).toContain(`  IdentityFile "/home/op/.ssh/id ed25519"\n`)
    expect(cfg.output).toContain(`  ProxyCommand ${pc}\n`)
    expect(await readFile(kh, 'utf8')).toBe(`10.9.0.1 ${KEY1}\n[198.51.100.9]:2222 ${KEY2}\n10.9.0.2 ${KEY1}\n`)
    const vars = JSON.parse((await buildInventory({store, patterns: ['node1'], format: 'ansible', knownHostsFile: kh})).output)._meta.hostvars.node1
    expect(vars.ansible_ssh_private_key_file).toBe('/home/op/.ssh/id ed25519')
    expect(vars.ansible_ssh_common_args).toBe(`-o UserKnownHostsFile=${kh} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o 'ProxyCommand=${pc.replaceAll("'", `'\\''`)}'`)
    expect(proxyCommand({user: 'j', host: 'b', port: 22}, '/k/100%', '/kh')).toContain("-i /k/100%%")
  })

  it('knownHostsText skips malformed keys', () => {
    expect(knownHostsText([{name: 'a', cluster: 'c', driver: 'd', phase: 'created', address: '1.2.3.4', privateAddress: null, ssh: {user: 'r', port: 22, identityFile: '/k', proxy: null}, hostKeys: ['garbage', KEY1], engineUrl: null, swarm: null}])).toBe(`1.2.3.4 ${KEY1}\n`)
  })
})
