import {execFile, spawn} from 'node:child_process'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, beltBin} from '../helpers/cli.js'

const run = promisify(execFile)

// A subnet of its own, so the test never meets other hosts.
const SUBNET = ['--local-subnet', '10.229.0.0/16']
const NAMES = ['node1', 'node2', 'node3']
let tmp: string
let store: string

/** The namespaces and bridge of this subnet that exist now. */
async function subnetNamespaces(): Promise<string[]> {
  const {stdout} = await run('ip', ['netns', 'list'])
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => /^belt-(hub-)?10-229(-|$)/.test(n))
}

/** The real OpenSSH client, with no user or system config, so only the options given count. */
function ssh(args: readonly string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return run('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', ...args]).then(
    (r) => ({code: 0, stdout: r.stdout, stderr: r.stderr}),
    (e: {code?: number; stdout?: string; stderr?: string}) => ({code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}),
  )
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-many-'))
  store = path.join(tmp, 'store')
  expect(await subnetNamespaces()).toEqual([])
  // A swarm with one manager and two workers: the inventory's groups come from real roles.
  const r = await belt(['create', '--driver', 'local', ...SUBNET, '--swarm', '--managers', '1', '--no-ingress', 'node[1:3]'], {store})
  expect(r.code, r.stderr).toBe(0)
}, 600_000)

afterAll(async () => {
  const r = await belt(['rm', '-y', '--force', 'node*'], {store})
  expect(r.code, r.stderr).toBe(0)
  expect(await subnetNamespaces()).toEqual([])
  await rm(tmp, {recursive: true, force: true})
}, 180_000)

describe('belt exec', () => {
  it("exec 'node*' -- hostname prints each host's name, prefixed by the host, and exits 0", async () => {
    const r = await belt(['exec', 'node*', '--', 'hostname'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(NAMES.map((n) => `${n} | ${n}`))
    expect(r.stderr).toMatch(/Ran on 3 hosts in [\d.]+ s: 3 exit 0 \(node1, node2, node3\)\./)
  })

  it('a host that exits non-zero makes exit 4 with the exit codes and the retry line; stderr stays prefixed on stderr', async () => {
    const r = await belt(['exec', '-c', '2', 'node[1:3]', '--', 'sh', '-c', 'echo "to err $(hostname)" >&2; [ "$(hostname)" != node2 ] || exit 3'], {store})
    expect(r.code).toBe(4)
    expect(r.stdout).toBe('')
    for (const n of NAMES) expect(r.stderr).toContain(`${n} | to err ${n}\n`)
    expect(r.stderr).toMatch(/NAME\s+EXIT\s+ERROR\nnode2\s+3/)
    expect(r.stderr).toMatch(/2 exit 0 \(node1, node3\), 1 exit 3 \(node2\)/)
    expect(r.stderr).toMatch(/Retry only those with: belt exec .*--concurrency 2 node2 -- sh -c /)
  })

  it('--group prints each host in one block, and --json gives each host its exit code and output', async () => {
    const g = await belt(['exec', '--group', 'node*', '--', 'printf "a\\nb\\n"'], {store})
    expect(g.code, g.stderr).toBe(0)
    for (const n of NAMES) expect(g.stdout).toContain(`==> ${n} (exit 0) <==\na\nb\n`)
    const j = await belt(['exec', '--json', 'node*', '--', 'cat /etc/hostname'], {store})
    expect(j.code, j.stderr).toBe(0)
    const runs = JSON.parse(j.stdout) as {name: string; ok: boolean; exitCode: number; stdout: string}[]
    expect(runs.map((x) => [x.name, x.ok, x.exitCode, x.stdout])).toEqual(NAMES.map((n) => [n, true, 0, `${n}\n`]))
  })

  it('Ctrl-C starts no other host, lets the running one finish, and prints where each host stands (exit 130)', async () => {
    const child = spawn(process.execPath, [beltBin, 'exec', '-c', '1', 'node[1:3]', '--', 'echo started; sleep 1; echo finished'], {
      env: {...process.env, BELT_STORE: store, CI: 'true', NO_COLOR: '1', NODE_ENV: ''},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let sent = false
    child.stdout.on('data', (d) => {
      stdout += d
      // The first host is running: interrupt now.
      if (!sent && stdout.includes('started')) {
        sent = true
        child.kill('SIGINT')
      }
    })
    child.stderr.on('data', (d) => (stderr += d))
    const code = await new Promise<number | null>((res) => child.on('close', res))
    expect(code, stderr).toBe(130)
    const lines = stdout.split('\n').filter(Boolean)
    expect(lines).toHaveLength(2)
    const first = lines[0]!.split(' ')[0]!
    expect(lines).toEqual([`${first} | started`, `${first} | finished`])
    const rest = NAMES.filter((n) => n !== first)
    expect(stderr).toMatch(new RegExp(`${rest.join(', ')} \\(2\\)\\s+not started`))
    expect(stderr).toMatch(new RegExp(`Run the same command to finish the batch: belt exec .*--concurrency 1 ${rest.join(' ')} -- 'echo started; sleep 1; echo finished'`))
  })
})

describe('belt scp to a pattern', () => {
  it("uploads a file to every host with its mode, and single-host scp still works", async () => {
    const file = path.join(tmp, 'app.env')
    await writeFile(file, 'COLOR=blue\n', {mode: 0o640})
    const r = await belt(['scp', file, 'node*:/tmp/'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/Copied to 3 hosts/)
    const check = await belt(['exec', '--json', 'node*', '--', 'stat -c %a /tmp/app.env && cat /tmp/app.env'], {store})
    expect(check.code, check.stderr).toBe(0)
    for (const h of JSON.parse(check.stdout) as {stdout: string}[]) expect(h.stdout).toBe('640\nCOLOR=blue\n')
    const back = path.join(tmp, 'back.env')
    const one = await belt(['scp', 'node2:/tmp/app.env', back], {store})
    expect(one.code, one.stderr).toBe(0)
    expect(await readFile(back, 'utf8')).toBe('COLOR=blue\n')
    const many = await belt(['scp', 'node*:/tmp/app.env', back], {store})
    expect(many.code).toBe(2)
    expect(many.stderr).toMatch(/copy from one host at a time/)
  })
})

describe('belt inventory', () => {
  it('--format ansible is dynamic-inventory JSON naming every host, with swarm groups and the login variables', async () => {
    const r = await belt(['inventory', '--format', 'ansible'], {store})
    expect(r.code, r.stderr).toBe(0)
    const inv = JSON.parse(r.stdout)
    expect([...inv.belt.hosts].sort()).toEqual(NAMES)
    expect(inv.swarm_managers.hosts).toHaveLength(1)
    expect(inv.swarm_workers.hosts).toHaveLength(2)
    expect([...inv.swarm_managers.hosts, ...inv.swarm_workers.hosts].sort()).toEqual(NAMES)
    const ls = JSON.parse((await belt(['ls', '--json'], {store})).stdout) as {name: string; address: string}[]
    for (const n of NAMES) {
      const v = inv._meta.hostvars[n]
      expect(v.ansible_host).toBe(ls.find((h) => h.name === n)!.address)
      expect(v.ansible_user).toBe('root')
      expect(v.ansible_port).toBe(22)
      expect((await stat(v.ansible_ssh_private_key_file)).mode & 0o777).toBe(0o600)
      expect(v.ansible_ssh_common_args).toContain('StrictHostKeyChecking=yes')
    }
    // --list and --host, as Ansible calls an inventory script.
    const list = await belt(['inventory', '--list'], {store})
    expect(JSON.parse(list.stdout)).toEqual(inv)
    const one = await belt(['inventory', '--host', 'node2'], {store})
    expect(JSON.parse(one.stdout)).toEqual(inv._meta.hostvars.node2)
  })

  it('the real ssh client verifies every host against the known_hosts export, and refuses a host whose key does not match', async () => {
    const kh = path.join(tmp, 'known_hosts')
    const r = await belt(['inventory', '--known-hosts', kh, '--format', 'known-hosts'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(await readFile(kh, 'utf8')).toBe(r.stdout)
    const inv = JSON.parse((await belt(['inventory'], {store})).stdout) as {name: string; address: string; ssh: {identityFile: string}}[]
    for (const h of inv) {
      const s = await ssh(['-o', `UserKnownHostsFile=${kh}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-i', h.ssh.identityFile, `root@${h.address}`, 'hostname'])
      expect(s.code, s.stderr).toBe(0)
      expect(s.stdout.trim()).toBe(h.name)
    }
    // The same file with node2's address given node1's keys: strict checking must refuse node2.
    const [n1, n2] = [inv.find((h) => h.name === 'node1')!, inv.find((h) => h.name === 'node2')!]
    const forged = r.stdout
      .split('\n')
      .filter((l) => l.startsWith(`${n1.address} `))
      .map((l) => l.replace(`${n1.address} `, `${n2.address} `))
      .join('\n')
    const bad = path.join(tmp, 'forged_known_hosts')
    await writeFile(bad, forged + '\n')
    const s = await ssh(['-o', `UserKnownHostsFile=${bad}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-i', n2.ssh.identityFile, `root@${n2.address}`, 'hostname'])
    expect(s.code).toBe(255)
    expect(s.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
  })

  it('Ansible takes belt inventory as its inventory script and logs in to every host with the host keys checked strictly', async () => {
    // Ansible calls the script with --list; the wrapper is the two lines the README gives.
    const script = path.join(tmp, 'belt-inv')
    await writeFile(script, `#!/bin/sh\nexec ${process.execPath} ${beltBin} inventory "$@"\n`, {mode: 0o755})
    const env = {
      ...process.env,
      BELT_STORE: store,
      ANSIBLE_HOME: path.join(tmp, 'ansible'),
      ANSIBLE_LOCAL_TEMP: path.join(tmp, 'ansible', 'tmp'),
      // No ControlPersist master left running after the test.
      ANSIBLE_SSH_ARGS: '-o ControlMaster=no',
      ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
      ANSIBLE_NOCOLOR: '1',
    }
    // Ansible's own reading of the inventory: every host, one manager and two workers.
    const parsed = JSON.parse((await run('ansible-inventory', ['-i', script, '--list'], {env})).stdout)
    expect(Object.keys(parsed._meta.hostvars).sort()).toEqual(NAMES)
    expect(parsed.swarm_managers.hosts).toHaveLength(1)
    expect([...parsed.swarm_managers.hosts, ...parsed.swarm_workers.hosts].sort()).toEqual(NAMES)
    const ping = await run('ansible', ['-i', script, 'belt', '-m', 'ping', '-o'], {env})
    for (const n of NAMES) expect(ping.stdout).toMatch(new RegExp(`^${n} \\| SUCCESS`, 'm'))
    // The same inventory pointed at a known_hosts that gives node2 node1's keys: Ansible must refuse node2.
    const inv = (await belt(['inventory', '--format', 'ansible'], {store})).stdout
    const vars = JSON.parse(inv)._meta.hostvars
    const realFile = path.join(store, 'known_hosts')
    const lines = (await readFile(realFile, 'utf8')).split('\n').filter(Boolean)
    const forged = lines
      .filter((l) => !l.startsWith(`${vars.node2.ansible_host} `))
      .concat(lines.filter((l) => l.startsWith(`${vars.node1.ansible_host} `)).map((l) => l.replace(`${vars.node1.ansible_host} `, `${vars.node2.ansible_host} `)))
    const forgedFile = path.join(tmp, 'forged_for_ansible')
    await writeFile(forgedFile, forged.join('\n') + '\n')
    const saved = path.join(tmp, 'inventory.json')
    await writeFile(saved, inv.replaceAll(realFile, forgedFile))
    const staticScript = path.join(tmp, 'forged-inv')
    await writeFile(staticScript, `#!/bin/sh\nexec cat ${saved}\n`, {mode: 0o755})
    const bad = await run('ansible', ['-i', staticScript, 'belt', '-m', 'ping', '-o'], {env}).then(
      () => ({code: 0, stdout: ''}),
      (e: {code: number; stdout: string}) => e,
    )
    expect(bad.code).not.toBe(0)
    expect(bad.stdout).toMatch(/^node2 \| UNREACHABLE![^\n]*\n[\s\S]*Host key verification failed/m)
    expect(bad.stdout).toMatch(/^node1 \| SUCCESS/m)
    expect(bad.stdout).toMatch(/^node3 \| SUCCESS/m)
  })

  it('ssh -F with the ssh-config export logs in by host name with strict checking', async () => {
    const r = await belt(['inventory', '--format', 'ssh-config'], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('StrictHostKeyChecking yes')
    const cfg = path.join(tmp, 'ssh_config')
    await writeFile(cfg, r.stdout)
    for (const n of NAMES) {
      const s = await run('ssh', ['-F', cfg, '-o', 'BatchMode=yes', '-o', 'GlobalKnownHostsFile=/dev/null', n, 'hostname'])
      expect(s.stdout.trim()).toBe(n)
    }
  })
  it('a host behind a bastion is reached through a ProxyCommand that checks the bastion against the export too', async () => {
    // node1 stands as node2's bastion: node2's record gets the proxy the generic driver records.
    const file = path.join(store, 'hosts', 'node2.json')
    const original = await readFile(file, 'utf8')
    const rec = JSON.parse(original)
    const n1 = JSON.parse(await readFile(path.join(store, 'hosts', 'node1.json'), 'utf8'))
    const n3 = JSON.parse(await readFile(path.join(store, 'hosts', 'node3.json'), 'utf8'))
    rec.machine.ssh.proxy = {user: 'root', host: n1.machine.address, port: 22, hostKeys: n1.hostKeys}
    await writeFile(file, JSON.stringify(rec, null, 2))
    try {
      const kh = path.join(tmp, 'bastion_known_hosts')
      const r = await belt(['inventory', '--format', 'ssh-config', '--known-hosts', kh, 'node2'], {store})
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^  ProxyCommand ssh -W %h:%p -p 22 -i \S+ -o IdentitiesOnly=yes -o UserKnownHostsFile=\S+ -o StrictHostKeyChecking=yes root@/m)
      const cfg = path.join(tmp, 'bastion_ssh_config')
      await writeFile(cfg, r.stdout)
      const ok = await ssh(['-F', cfg, '-v', 'node2', 'hostname'])
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout.trim()).toBe('node2')
      expect(ok.stderr).toContain('Executing proxy command')
      // The bastion's entry given node3's keys: the proxy's own ssh must refuse the bastion.
      const good = await readFile(kh, 'utf8')
      const forged = good
        .split('\n')
        .filter((l) => l && !l.startsWith(`${n1.machine.address} `))
        .concat((n3.hostKeys as string[]).map((k) => `${n1.machine.address} ${k}`))
      await writeFile(kh, forged.join('\n') + '\n')
      const bad = await ssh(['-F', cfg, 'node2', 'hostname'])
      expect(bad.code).toBe(255)
      expect(bad.stderr).toMatch(/Host key verification failed/)
    } finally {
      await writeFile(file, original)
    }
  })
})
