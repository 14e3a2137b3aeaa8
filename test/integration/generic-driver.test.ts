import {mkdtempSync} from 'node:fs'
import {readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {DriverContext, JournalEntry} from '../../drivers/driver.js'
import {createGenericDriver} from '../../drivers/generic/index.js'
import {describeDriverConformance} from '../../drivers/testing/conformance.js'
import {UserError} from '../../src/errors.js'
import {driverContext} from '../../src/services/driver-context.js'
import {generateSshKeyPair} from '../../src/ssh/keys.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'
import {makeNetnsHosts} from '../helpers/netns-hosts.js'

// Three hosts made outside Belt (10.230.0.0/16): the suite's two and the one it creates again.
const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-generic-conf-'))
const store = new Store(path.join(dir, 'store'))
await store.init()
const lab = await makeNetnsHosts({names: ['conf1', 'conf2', 'conf1r'], nonRoot: ['conf2'], hide: [dir]})
const context = await driverContext(store, 'generic', silentReporter)
afterAll(async () => {
  await lab.destroy()
  await rm(dir, {recursive: true, force: true})
})
const inventory = path.join(dir, 'hosts.csv')
await writeFile(inventory, ['name,address,user', ...lab.hosts.map((h) => `${h.name},${h.address},${h.user}`), ''].join('\n'))
const options = {hosts: inventory, 'ssh-key': lab.keyFile, 'ssh-user': 'root', 'ssh-port': '22'}
const claims = async () => (await readdir(path.join(context.stateDir, 'claims')).catch(() => [] as string[])).sort()

describeDriverConformance({
  name: 'generic',
  makeDriver: () => createGenericDriver(),
  options,
  context,
  cluster: {name: 'conformance', sshPublicKey: generateSshKeyPair('conformance').publicKey},
  hostNames: ['conf1', 'conf2'],
  listResources: claims,
  missingMachine: () => ({id: '10.230.9.9:22', address: '10.230.9.9', ssh: {user: 'root', port: 22, identityFile: lab.keyFile}, data: {name: 'ghost', cluster: 'conformance'}}),
})

describe('generic driver on hosts made outside Belt', () => {
  const cluster = {name: 'conformance', sshPublicKey: generateSshKeyPair('x').publicKey}
  const fail = async (p: Promise<unknown>) => {
    const e = await p.then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(UserError)
    return e as UserError
  }

  it('has no power methods (it cannot switch on a machine it did not make)', () => {
    const d = createGenericDriver()
    expect([d.start, d.stop, d.restart, d.kill]).toEqual([undefined, undefined, undefined, undefined])
  })

  it('reads the inventory names in order', async () => {
    expect(await createGenericDriver().hostNames(options)).toEqual(['conf1', 'conf2', 'conf1r'])
  })

  it('preflight refuses a missing key and two ways of naming hosts, creating nothing', async () => {
    const d = createGenericDriver()
    expect((await fail(d.preflight({...options, 'ssh-key': path.join(dir, 'nope')}, context))).code).toBe('E_GENERIC_KEY')
    expect((await fail(d.preflight({...options, 'ip-address': '10.230.1.1'}, context))).code).toBe('E_GENERIC_OPTIONS')
    expect(await claims()).toEqual([])
  })

  it('a user the host refuses, or one without passwordless sudo, fails the create and leaves no claim', async () => {
    const d = createGenericDriver()
    const journaled: JournalEntry[] = []
    const ctx: DriverContext = {...context, journal: async (e) => (journaled.push(e), context.journal(e))}
    const nobody = await fail(d.create({name: 'conf1', cluster, options: {...options, hosts: undefined, 'ip-address': lab.hosts[0]!.address, 'ssh-user': 'nobody'}}, ctx))
    expect(nobody.code).toBe('E_SSH_AUTH')
    await lab.exec(lab.hosts[1]!, 'rm /etc/sudoers.d/90-cloud-init-users')
    const nosudo = await fail(d.create({name: 'conf2', cluster, options}, ctx))
    expect(nosudo.code).toBe('E_GENERIC_SUDO')
    expect(nosudo.message).toContain('deploy cannot run sudo without a password')
    expect(await claims()).toEqual([])
    expect(journaled.filter((e) => e.action === 'created').length).toBe(journaled.filter((e) => e.action === 'deleted').length)
  })

  it('through a proxy: the host keys of the bastion and the host are learned, state reads through the bastion', async () => {
    const [bastion, , target] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0]]
    await lab.onlySshFrom(target, bastion)
    const d = createGenericDriver()
    // Directly, the host refuses: create keeps trying (a host may be starting) until it is aborted.
    const direct = d.create({name: 'conf1r', cluster, options: {...options, hosts: undefined, 'ip-address': target.address}}, {...context, signal: AbortSignal.timeout(3000)})
    await expect(direct).rejects.toMatchObject({name: 'TimeoutError'})
    expect(await claims()).toEqual([])
    const m = await d.create({name: 'conf1r', cluster, options: {...options, hosts: undefined, 'ip-address': target.address, 'ssh-proxy': `root@${bastion.address}`}}, context)
    expect(m.ssh.proxy).toMatchObject({user: 'root', host: bastion.address, port: 22})
    expect(m.ssh.proxy!.hostKeys![0]).not.toBe(m.hostKeys![0])
    expect(await d.state(m, options, context)).toBe('running')
    await d.remove(m, options, context)
    expect(await d.state(m, options, context)).toBe('missing')
    expect(await claims()).toEqual([])
  })
})
