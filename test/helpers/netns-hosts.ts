/**
 * Linux hosts made OUTSIDE Belt, for the generic driver's tests: network namespaces on a subnet of
 * their own (10.230.0.0/16 by default), each with mount, uts, ipc and pid namespaces, its own sshd
 * with an authorized key this helper generates, copy-on-write system directories, and this
 * machine's dockerd with the systemctl shim the bootstrapper expects. Not the local driver: its own
 * namespaces, bridge and processes; what happens inside a host is templates/local/hostinit.sh (the
 * same script turns a namespace into a small VM, including a cloud-style login user with
 * passwordless sudo). Torn down by PID and namespace name. Needs root.
 */
import {execFile, spawn} from 'node:child_process'
import {closeSync, existsSync, openSync, promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {tcpAccepts} from '../../drivers/tcp.js'
import {repoRoot} from './cli.js'

const run = promisify(execFile)

export interface NetnsHost {
  name: string
  ns: string
  address: string
  /** The login user: root, or a user with passwordless sudo (root's key then only says "login as"). */
  user: string
  /** PID of the `nsenter` that keeps the host's namespaces (its init is below it). */
  pid: number
  dir: string
}

export interface NetnsHosts {
  hosts: NetnsHost[]
  /** The private key (0600) whose public half every host authorizes. */
  keyFile: string
  /** Runs `script` with sh inside the host (all its namespaces), as root. */
  exec(h: NetnsHost, script: string): Promise<string>
  /** New sshd host keys for `h`, sshd reloaded: what a rebuilt or impostor machine presents. */
  changeHostKey(h: NetnsHost): Promise<void>
  /** Refuses SSH to `h` from anywhere but `from` (a host behind a bastion). */
  onlySshFrom(h: NetnsHost, from: NetnsHost): Promise<void>
  destroy(): Promise<void>
}

export interface NetnsHostsOptions {
  names: readonly string[]
  /** Names whose login user is `user` with passwordless sudo instead of root. */
  nonRoot?: readonly string[]
  /** Second octet of 10.X.0.0/16 (default 230). */
  octet?: number
  /** Directories the hosts must not see (the Belt store). */
  hide?: readonly string[]
  user?: string
}

const sh = async (cmd: string, args: readonly string[]) => String((await run(cmd, args, {encoding: 'utf8'})).stdout)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function netnsPids(ns: string): Promise<number[]> {
  if (!existsSync(`/run/netns/${ns}`)) return []
  return (await sh('ip', ['netns', 'pids', ns]).catch(() => '')).split('\n').filter(Boolean).map(Number)
}

export async function makeNetnsHosts(o: NetnsHostsOptions): Promise<NetnsHosts> {
  if (o.names.length > 5) throw new Error('at most 5 hosts (the machine is shared)')
  const octet = o.octet ?? 230
  const hub = `gen${octet}-hub`
  const gw = `gen${octet}gw`
  const user = o.user ?? 'deploy'
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `netns-hosts-${octet}-`))
  const keyFile = path.join(dir, 'id_ed25519')
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'netns-hosts', '-f', keyFile])
  const publicKey = await fs.readFile(`${keyFile}.pub`, 'utf8')
  const hosts: NetnsHost[] = []
  const made: string[] = []

  const exec = async (h: NetnsHost, script: string): Promise<string> => {
    const [inside] = (await fs.readFile(`/proc/${h.pid}/task/${h.pid}/children`, 'utf8')).split(' ').filter(Boolean)
    if (!inside) throw new Error(`host ${h.name} has no init`)
    // The unshare's child is the host's tini (PID 1 of its pid namespace).
    const [tini] = (await fs.readFile(`/proc/${inside}/task/${inside}/children`, 'utf8')).split(' ').filter(Boolean)
    return sh('nsenter', ['-t', tini ?? inside, '-m', '-u', '-i', '-n', '-p', '--', 'sh', '-c', script])
  }

  const destroy = async () => {
    for (const ns of made) {
      for (let i = 0; i < 100; i++) {
        const pids = await netnsPids(ns)
        if (pids.length === 0) break
        for (const p of pids) {
          try {
            process.kill(p, 'SIGKILL')
          } catch {
            /* gone */
          }
        }
        await sleep(50)
      }
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined)
    }
    await sh('ip', ['netns', 'del', hub]).catch(() => undefined)
    await sh('ip', ['link', 'del', gw]).catch(() => undefined)
    // Engines that ran in the hosts leave their cgroups behind (no containers ran: empty ones).
    await fs.rm(dir, {recursive: true, force: true}).catch(() => undefined)
  }

  try {
    await sh('ip', ['netns', 'add', hub])
    made.push(hub)
    await sh('ip', ['-n', hub, 'link', 'set', 'lo', 'up'])
    await sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'])
    await sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up'])
    await sh('ip', ['link', 'add', gw, 'type', 'veth', 'peer', 'name', 'up0', 'netns', hub])
    await sh('ip', ['-n', hub, 'link', 'set', 'up0', 'master', 'br0', 'up'])
    await sh('ip', ['addr', 'add', `10.${octet}.0.1/16`, 'dev', gw])
    await sh('ip', ['link', 'set', gw, 'up'])
    for (const [i, name] of o.names.entries()) {
      const ns = `gen${octet}-${name}`
      const address = `10.${octet}.1.${i + 1}`
      const hdir = path.join(dir, name)
      await fs.mkdir(path.join(hdir, 'lib'), {recursive: true, mode: 0o700})
      for (const f of ['hostinit.sh', 'systemctl', 'sudo']) {
        await fs.copyFile(path.join(repoRoot, 'templates', 'local', f), path.join(hdir, 'lib', f))
        await fs.chmod(path.join(hdir, 'lib', f), 0o755)
      }
      await fs.writeFile(path.join(hdir, 'authorized_keys'), publicKey, {mode: 0o644})
      const nonRoot = o.nonRoot?.includes(name) ?? false
      if (nonRoot) await fs.writeFile(path.join(hdir, 'cloud-user'), `${user}\n`)
      await sh('ip', ['netns', 'add', ns])
      made.unshift(ns)
      await sh('ip', ['-n', hub, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      await sh('ip', ['-n', hub, 'link', 'set', `p${i}`, 'master', 'br0', 'up'])
      const log = openSync(path.join(hdir, 'init.log'), 'a', 0o600)
      const child = spawn(
        'nsenter',
        [`--net=/run/netns/${ns}`, '--', 'unshare', '--mount', '--uts', '--ipc', '--pid', '--fork', '--kill-child', '--mount-proc', '--',
          'tini', '--', path.join(hdir, 'lib', 'hostinit.sh'), name, `${address}/16`, hdir, ...(o.hide ?? [])],
        {detached: true, stdio: ['ignore', log, log]},
      )
      closeSync(log)
      child.unref()
      hosts.push({name, ns, address, user: nonRoot ? user : 'root', pid: child.pid!, dir: hdir})
    }
    for (const h of hosts) {
      const deadline = Date.now() + 60_000
      while (!(await tcpAccepts(h.address, 22, 1000))) {
        if (Date.now() > deadline) throw new Error(`host ${h.name} did not start sshd: ${await fs.readFile(path.join(h.dir, 'init.log'), 'utf8').catch(() => '')}`)
        await sleep(100)
      }
    }
  } catch (e) {
    await destroy()
    throw e
  }

  return {
    hosts,
    keyFile,
    exec,
    destroy,
    changeHostKey: async (h) => {
      await exec(h, "rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && ssh-keygen -q -t ecdsa -N '' -f /etc/ssh/ssh_host_ecdsa_key && kill -HUP $(cat /run/sshd.pid)")
      // sshd re-executes on SIGHUP: wait until it listens again.
      for (let i = 0; i < 100 && !(await tcpAccepts(h.address, 22, 1000)); i++) await sleep(100)
    },
    onlySshFrom: async (h, from) => {
      await sh('ip', ['netns', 'exec', h.ns, 'iptables', '-I', 'INPUT', '-p', 'tcp', '--dport', '22', '!', '-s', from.address, '-j', 'REJECT', '--reject-with', 'tcp-reset'])
    },
  }
}
