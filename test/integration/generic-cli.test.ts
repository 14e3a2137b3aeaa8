import {execFile} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {tcpAccepts} from '../../drivers/tcp.js'
import {Store} from '../../src/store/store.js'
import {belt} from '../helpers/cli.js'
import {makeNetnsHosts, type NetnsHosts} from '../helpers/netns-hosts.js'

// Five hosts made outside Belt on 10.230.0.0/16: gen1 is root and the bastion, gen2 logs in as a
// user with passwordless sudo, gen5 answers SSH only from gen1 (reached through --generic-ssh-proxy).
const run = promisify(execFile)
let tmp: string
let store: string
let lab: NetnsHosts

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-generic-cli-'))
  store = path.join(tmp, 'store')
  lab = await makeNetnsHosts({names: ['gen1', 'gen2', 'gen3', 'gen4', 'gen5'], nonRoot: ['gen2'], hide: [tmp]})
  await lab.onlySshFrom(lab.hosts[4]!, lab.hosts[0]!)
})
afterAll(async () => {
  await belt(['rm', '-y', '--force', 'gen*'], {store}).catch(() => undefined)
  await lab?.destroy()
  await rm(tmp, {recursive: true, force: true})
})

async function dockerOn(host: string, args: string[]) {
  const e = await belt(['env', '--shell', 'bash', host], {store})
  const env = Object.fromEntries([...e.stdout.matchAll(/^export (\w+)="(.*)"$/gm)].map((m) => [m[1]!, m[2]!]))
  return run('docker', args, {env: {PATH: process.env.PATH, DOCKER_CONFIG: path.join(tmp, 'docker-config'), ...env}})
}

describe('generic driver: hosts made outside Belt', () => {
  it('a bad inventory is refused in one line naming the file and line, before anything exists', async () => {
    const bad = path.join(tmp, 'bad.csv')
    await writeFile(bad, 'name,address,port\ngen1,10.230.1.1,22\ngen2,10.230.1.2,ssh\n')
    const r = await belt(['create', '--driver', 'generic', '--generic-hosts', bad, '--generic-ssh-key', lab.keyFile], {store: path.join(tmp, 'never')})
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`${bad}:3: port must be a TCP port (1-65535), not 'ssh'`)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(await tcpAccepts(lab.hosts[0]!.address, 22, 2000)).toBe(true)
    await expect(run('test', ['-e', path.join(tmp, 'never')])).rejects.toThrow()
  })

  it('a host behind the bastion does not answer SSH directly (the proxy test is real)', async () => {
    expect(await tcpAccepts(lab.hosts[4]!.address, 22, 2000)).toBe(false)
    expect(await tcpAccepts(lab.hosts[0]!.address, 22, 2000)).toBe(true)
  })

  it('belt create --driver generic --generic-hosts FILE --swarm: 5/5 Ready per the docker CLI', async () => {
    const [g1, g2, g3, g4, g5] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0]]
    const inventory = path.join(tmp, 'hosts.yaml')
    await writeFile(
      inventory,
      [
        'hosts:',
        `  - {name: gen1, address: ${g1.address}}`,
        `  - {name: gen2, address: ${g2.address}, user: ${g2.user}}`,
        `  - {name: gen3, address: ${g3.address}, port: 22}`,
        `  - {name: gen4, address: ${g4.address}}`,
        `  - {name: gen5, address: ${g5.address}, proxy: root@${g1.address}}`,
        '',
      ].join('\n'),
    )
    const r = await belt(['create', '--driver', 'generic', '--generic-hosts', inventory, '--generic-ssh-key', lab.keyFile, '--swarm', '--managers', '3'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toContain('PRIVATE KEY')
    const {records} = await new Store(store).list()
    expect(records.map((x) => x.name).sort()).toEqual(['gen1', 'gen2', 'gen3', 'gen4', 'gen5'])
    for (const x of records) {
      expect(x.phase).toBe('joined')
      expect(x.hostKeys?.length).toBe(1)
      expect(x.machine!.ssh.identityFile).toBe(lab.keyFile)
    }
    const rec = (n: string) => records.find((x) => x.name === n)!
    expect(rec('gen2').machine!.ssh.user).toBe('deploy')
    expect(rec('gen5').machine!.ssh.proxy).toMatchObject({user: 'root', host: g1.address, port: 22})
    expect(rec('gen5').machine!.ssh.proxy!.hostKeys).toEqual(rec('gen1').hostKeys)
    // The key is referenced, never copied into the store.
    const keyText = (await run('cat', [lab.keyFile])).stdout.trim().split('\n')[1]!
    const grep = await run('grep', ['-rl', '--', keyText, store]).catch((e: {code: number}) => ({stdout: '', code: e.code}))
    expect(grep.stdout).toBe('')

    const manager = records.find((x) => x.swarm?.role === 'manager')!.name
    const ls = await dockerOn(manager, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])
    const lines = ls.stdout.trim().split('\n').sort()
    expect(lines).toEqual(['gen1 Ready', 'gen2 Ready', 'gen3 Ready', 'gen4 Ready', 'gen5 Ready'])
  }, 600_000)

  it('belt ssh goes through the bastion and the sudo user works', async () => {
    const five = await belt(['ssh', 'gen5', 'hostname'], {store})
    expect(five.code, five.stderr).toBe(0)
    expect(five.stdout.trim()).toBe('gen5')
    const two = await belt(['ssh', 'gen2', '--', 'sudo', '-n', 'id', '-u'], {store})
    expect(two.code, two.stderr).toBe(0)
    expect(two.stdout.trim()).toBe('0')
    const ls = await belt(['ls', '--json'], {store})
    expect(ls.code, ls.stderr).toBe(0)
    const states = Object.fromEntries((JSON.parse(ls.stdout) as {name: string; state: string}[]).map((h) => [h.name, h.state]))
    expect(states.gen5).toMatch(/running/i)
  })

  it('a changed host key is refused, and nothing runs on the impostor', async () => {
    await lab.changeHostKey(lab.hosts[2]!)
    const r = await belt(['ssh', 'gen3', '--', 'touch', '/tmp/ran'], {store})
    expect(r.code).toBe(5)
    expect(r.stderr).toMatch(/host key of gen3 .* has changed/)
    expect(await lab.exec(lab.hosts[2]!, 'test -e /tmp/ran && echo ran || echo not')).toBe('not\n')
    // So is a changed bastion key: gen5 is reached only through gen1.
    await lab.changeHostKey(lab.hosts[0]!)
    const five = await belt(['ssh', 'gen5', 'true'], {store})
    expect(five.code).toBe(5)
    expect(five.stderr).toMatch(/host key of the SSH proxy of gen5 .* has changed/)
  })

  it('rm forgets a host and leaves the machine alone; with --clean-host it stops the engine and removes Belt\'s files', async () => {
    const g4 = lab.hosts[3]!
    const g2 = lab.hosts[1]!
    const running = (h: typeof g4) => lab.exec(h, 'systemctl is-active docker; ls /etc/docker')
    expect(await running(g4)).toContain('server.pem')
    const plain = await belt(['rm', '-y', 'gen4'], {store})
    expect(plain.code, plain.stderr).toBe(0)
    expect(await running(g4)).toMatch(/^active\n[\s\S]*server\.pem/)
    expect(await tcpAccepts(g4.address, 22, 2000)).toBe(true)
    const clean = await belt(['rm', '-y', '--clean-host', 'gen2'], {store})
    expect(clean.code, clean.stderr).toBe(0)
    const after = await lab.exec(g2, 'systemctl is-active docker; ls /etc/docker; ls /etc/systemd/system/docker.service.d 2>/dev/null; true')
    expect(after).toMatch(/^inactive\n/)
    expect(after).not.toMatch(/server\.pem|ca\.pem|daemon\.json|10-belt\.conf/)
    expect(await tcpAccepts(g2.address, 22, 2000)).toBe(true)
    // A forgotten machine can be created again (its claim went with it).
    const again = await belt(['create', '--driver', 'generic', '--generic-ip-address', g4.address, '--generic-ssh-key', lab.keyFile, '--no-bootstrap', 'gen4b'], {store})
    expect(again.code, again.stderr).toBe(0)
    // ...but not twice: one machine is one host.
    const twice = await belt(['create', '--driver', 'generic', '--generic-ip-address', g4.address, '--generic-ssh-key', lab.keyFile, '--no-bootstrap', 'gen4c'], {store})
    expect(twice.code).toBe(4)
    expect(twice.stderr).toContain('already host gen4b')
    await belt(['rm', '-y', '--force', 'gen4c'], {store})
    // A host that stops accepting the operator's key: the line names that key, not Belt's.
    await lab.exec(g4, ': > /root/.ssh/authorized_keys')
    const refused = await belt(['ssh', 'gen4b', 'true'], {store})
    expect(refused.code).toBe(5)
    expect(refused.stderr).toContain(`refused the SSH key ${lab.keyFile} for user root`)
  }, 300_000)
})
