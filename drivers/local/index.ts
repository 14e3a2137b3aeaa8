import {execFile, spawn} from 'node:child_process'
import {constants as fsConstants, existsSync, openSync, closeSync} from 'node:fs'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'
import {ExitCode, UserError, environmentError, usageError} from '../../src/errors.js'
import {Locks} from '../../src/store/lock.js'
import {packageRoot} from '../../src/templates.js'
import type {Driver, DriverContext, DriverOptions, HostSpec, Machine, MachineState, ResourceId} from '../driver.js'
import {
  firstFreeIndex,
  hostAddress,
  hostNamespace,
  hubPort,
  overlappingRoutes,
  parseLocalSubnet,
  takenIndices,
  type LocalNetwork,
} from './network.js'
import {localDescription, localOptions} from './options.js'
import {tcpAccepts} from '../tcp.js'

const run = promisify(execFile)

/** What a local Machine keeps in `data` (no secret: paths, numbers, names). */
export interface LocalMachineData {
  /** The host's name (its hostname). */
  name: string
  netns: string
  subnet: string
  index: number
  /** The host's directory: upper layers of its overlays, /root, /var/lib/docker, init.log. */
  dir: string
  /** PID (in this machine's namespace) of the `unshare` that keeps the host's namespaces. */
  pid: number
}

/** Programs the local driver runs, with the Debian package that has each. */
const REQUIRED_BINARIES: readonly [string, string][] = [
  ['ip', 'iproute2'],
  ['nsenter', 'util-linux'],
  ['unshare', 'util-linux'],
  ['tini', 'tini'],
  ['sshd', 'openssh-server'],
  ['ssh-keygen', 'openssh-client'],
  ['curl', 'curl'],
]

/** Machine-wide locks (all stores share the hub namespaces and addresses of a subnet). */
const LOCK_DIR = '/run/belt/locks'
/**
 * The kernel's ARP table is shared by every network namespace, and its default limit
 * (gc_thresh3 = 1024 entries) overflows at about 30 swarm nodes meshing with each other: new
 * neighbours then fail with "no route to host" (measured: a 50-node join failed this way). While
 * Belt's hubs exist the limits are raised to these; the originals are kept here and restored when
 * the last hub goes.
 */
const NEIGH_THRESH = {gc_thresh1: 8192, gc_thresh2: 65536, gc_thresh3: 131072} as const
const NEIGH_ORIGINAL = '/run/belt/neigh-gc-thresh.json'
const neighFile = (k: string) => `/proc/sys/net/ipv4/neigh/default/${k}`

/** Raises the ARP table limits when they are lower than Belt needs, remembering the originals once. */
async function raiseNeighbourLimits(log: (m: string) => void): Promise<void> {
  const current: Record<string, number> = {}
  for (const k of Object.keys(NEIGH_THRESH)) current[k] = Number((await fs.readFile(neighFile(k), 'utf8')).trim())
  const low = Object.entries(NEIGH_THRESH).filter(([k, v]) => current[k]! < v)
  if (low.length === 0) return
  await fs.mkdir(path.dirname(NEIGH_ORIGINAL), {recursive: true})
  await fs.writeFile(NEIGH_ORIGINAL, JSON.stringify(current), {flag: 'wx'}).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e // the originals were saved by an earlier hub: keep those
  })
  // gc_thresh3 first when raising, so that thresh1 <= thresh2 <= thresh3 holds at every step.
  for (const k of ['gc_thresh3', 'gc_thresh2', 'gc_thresh1'] as const) if (current[k]! < NEIGH_THRESH[k]) await fs.writeFile(neighFile(k), String(NEIGH_THRESH[k]))
  log(`raised the ARP table limit (net.ipv4.neigh.default.gc_thresh3 ${current.gc_thresh3} -> ${NEIGH_THRESH.gc_thresh3}): it is shared by all hosts; restored when the last local host is removed`)
}

/** Puts the ARP table limits back as they were before Belt raised them. */
async function restoreNeighbourLimits(): Promise<void> {
  let saved: Record<string, number>
  try {
    saved = JSON.parse(await fs.readFile(NEIGH_ORIGINAL, 'utf8')) as Record<string, number>
  } catch {
    return
  }
  for (const k of ['gc_thresh1', 'gc_thresh2', 'gc_thresh3']) if (Number.isInteger(saved[k])) await fs.writeFile(neighFile(k), String(saved[k])).catch(() => undefined)
  await fs.rm(NEIGH_ORIGINAL, {force: true})
}

/**
 * A backing option, not a flag: the emulators set it so that a host behaves like a cloud image
 * whose login user is this one (cloud-init's default user: the key in its authorized_keys,
 * passwordless sudo, root's key answering only "Please login as the user ..."). Hosts of
 * `belt create --driver local` never have it and log in as root.
 */
export const CLOUD_USER_OPTION = 'cloud-user'

/** Present while /run/netns exists only because Belt created it. */
const RUN_NETNS_MARK = '/run/belt/created-run-netns'
const READY_TIMEOUT_MS = 60_000

/** How long to wait for a host's processes to go after SIGTERM (stop) before SIGKILL. */
const STOP_GRACE_MS = 10_000

async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    // A process group of its own: the operator's Ctrl-C (sent to belt's whole group by the terminal)
    // must not kill a half-done `ip` step; belt decides what to stop.
    return String((await run(cmd, args, {maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', detached: true} as {maxBuffer: number; encoding: 'utf8'})).stdout)
  } catch (e) {
    const err = e as Error & {stderr?: string}
    throw new Error(`${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, {cause: e})
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function which(bin: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
    try {
      await fs.access(path.join(dir, bin), fsConstants.X_OK)
      return true
    } catch {
      /* next */
    }
  }
  return false
}

function network(options: DriverOptions): LocalNetwork {
  const n = parseLocalSubnet(options.subnet ?? '10.213.0.0/16')
  if (typeof n === 'string') throw usageError(n, 'E_LOCAL_SUBNET')
  return n
}

const netnsExists = (ns: string) => existsSync(`/run/netns/${ns}`)

/** True when `pid` lives and is inside network namespace `ns` (guards against PID reuse). */
async function pidInNetns(pid: number, ns: string): Promise<boolean> {
  try {
    const [link, st] = await Promise.all([fs.readlink(`/proc/${pid}/ns/net`), fs.stat(`/run/netns/${ns}`)])
    return link === `net:[${st.ino}]`
  } catch {
    return false
  }
}

async function netnsPids(ns: string): Promise<number[]> {
  if (!netnsExists(ns)) return []
  const out = await sh('ip', ['netns', 'pids', ns]).catch(() => '')
  return out.split('\n').filter(Boolean).map(Number)
}

function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig)
    } catch {
      /* already gone */
    }
  }
}

async function waitUntil(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await cond()) return true
    if (Date.now() > deadline) return false
    await sleep(50)
  }
}

const tcpOpen = (host: string, port: number) => tcpAccepts(host, port, 1000)

/**
 * The `local` driver: real hosts on this machine. Each host is a network namespace on a private /16
 * whose bridge lives in a hub namespace of its own (so this machine's iptables and sysctls never
 * change), plus mount, uts, ipc and pid namespaces with tini as PID 1, copy-on-write system
 * directories, its own /var/lib/docker, hostname and sshd. Hosts have no default route.
 *
 * Stateless: everything needed later is in the Machine (namespace name, directory, PID). The hub
 * and gateway of a subnet exist while at least one host uses them.
 */
export class LocalDriver implements Driver {
  readonly name = 'local'
  readonly description = localDescription
  readonly options = localOptions
  private readonly locks = new Locks(LOCK_DIR, {timeoutMs: 120_000})

  async preflight(options: DriverOptions, _ctx: DriverContext): Promise<void> {
    if (process.getuid?.() !== 0)
      throw environmentError('the local driver needs root: it creates network namespaces, mounts and processes', 'E_LOCAL_ROOT', 'run belt as root (e.g. sudo belt ...)')
    const net = network(options)
    const missing: string[] = []
    for (const [bin, pkg] of REQUIRED_BINARIES) if (!(await which(bin))) missing.push(`${bin} (${pkg})`)
    if (missing.length > 0)
      throw environmentError(`the local driver needs ${missing.join(', ')}, not found on this machine`, 'E_LOCAL_BINARIES', `install them: apt-get install ${missing.map((m) => m.replace(/.*\((.*)\)/, '$1')).join(' ')}`)
    const clash = overlappingRoutes(net, await sh('ip', ['-o', '-4', 'route', 'show']))
    if (clash.length > 0)
      throw usageError(`--local-subnet ${net.cidr} overlaps a network this machine already uses (${clash[0]})`, 'E_LOCAL_SUBNET_IN_USE', 'choose another, e.g. --local-subnet 10.214.0.0/16')
  }

  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    const net = network(spec.options)
    // A local host is cheap to make: what an interrupted attempt left is removed, not adopted.
    if (spec.leftovers) await this.removeLeftovers({name: spec.name, cluster: spec.cluster.name}, spec.leftovers, spec.options, ctx)
    const cloudUser = spec.options[CLOUD_USER_OPTION] === 'root' ? undefined : spec.options[CLOUD_USER_OPTION] || undefined
    if (cloudUser !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(cloudUser)) throw new Error(`the local driver cannot make '${cloudUser}' a cloud image's login user`)
    const {index, ns} = await this.allocate(net, spec.name, ctx)
    const dir = path.join(ctx.stateDir, 'hosts', ns)
    const address = hostAddress(net, index)
    try {
      await fs.rm(dir, {recursive: true, force: true})
      await fs.mkdir(path.join(dir, 'lib'), {recursive: true, mode: 0o700})
      const tpl = path.join(packageRoot(), 'templates', 'local')
      for (const f of ['hostinit.sh', 'systemctl', 'sudo']) {
        await fs.copyFile(path.join(tpl, f), path.join(dir, 'lib', f))
        await fs.chmod(path.join(dir, 'lib', f), 0o755)
      }
      await fs.writeFile(path.join(dir, 'authorized_keys'), spec.cluster.sshPublicKey.trim() + '\n', {mode: 0o644})
      if (cloudUser) await fs.writeFile(path.join(dir, 'cloud-user'), cloudUser + '\n', {mode: 0o644})
      const partial: Machine = {id: ns, address, ssh: {user: cloudUser ?? 'root', port: 22}, data: {name: spec.name, netns: ns, subnet: net.cidr, index, dir, pid: 0} satisfies LocalMachineData}
      return await this.boot(partial, ctx)
    } catch (e) {
      await this.destroy({ns, dir, index}, net, ctx).catch(() => undefined)
      throw e
    }
  }

  /** Takes the smallest free address of the subnet and creates the host's namespace and link. */
  private async allocate(net: LocalNetwork, name: string, ctx: DriverContext): Promise<{index: number; ns: string}> {
    return this.locks.with(`subnet-${net.tag}`, async () => {
      await this.ensureHub(net)
      await this.locks.with('neighbour-limits', () => raiseNeighbourLimits((m) => ctx.log(m)))
      const taken = takenIndices(await sh('ip', ['-n', net.hub, '-o', 'link', 'show']))
      const index = firstFreeIndex(taken)
      if (index === undefined)
        throw new UserError(`the local network ${net.cidr} is full (1,000 hosts)`, {code: 'E_LOCAL_FULL', exit: ExitCode.environment, hint: 'use another --local-subnet for more hosts'})
      const ns = hostNamespace(net, index, name)
      await sh('ip', ['netns', 'add', ns])
      await ctx.journal({kind: 'netns', id: ns, action: 'created'})
      await sh('ip', ['-n', net.hub, 'link', 'add', hubPort(index), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      await sh('ip', ['-n', net.hub, 'link', 'set', hubPort(index), 'master', 'br0', 'up'])
      return {index, ns}
    })
  }

  /** The hub namespace with its bridge, and the gateway link from this machine. Idempotent. */
  private async ensureHub(net: LocalNetwork): Promise<void> {
    if (netnsExists(net.hub)) return
    // `ip netns add` makes /run/netns a shared bind mount when it is missing; note that Belt made
    // it, so that the last hub's removal can leave the machine as it found it.
    if (!existsSync('/run/netns')) {
      await fs.mkdir(path.dirname(RUN_NETNS_MARK), {recursive: true})
      await fs.writeFile(RUN_NETNS_MARK, '')
    }
    await sh('ip', ['netns', 'add', net.hub])
    try {
      await sh('ip', ['-n', net.hub, 'link', 'set', 'lo', 'up'])
      await sh('ip', ['-n', net.hub, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'])
      // No forwarding, no bridge netfilter in the hub: hosts talk to each other as on a switch.
      await sh('ip', ['netns', 'exec', net.hub, 'sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.disable_ipv6=1'])
      await sh('ip', ['netns', 'exec', net.hub, 'sh', '-c', 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e "$f" ] && echo 0 > "$f"; done; true'])
      await sh('ip', ['-n', net.hub, 'link', 'set', 'br0', 'up'])
      await sh('ip', ['link', 'del', net.gatewayLink]).catch(() => undefined) // left by a crash
      await sh('ip', ['link', 'add', net.gatewayLink, 'type', 'veth', 'peer', 'name', 'up0', 'netns', net.hub])
      await sh('ip', ['-n', net.hub, 'link', 'set', 'up0', 'master', 'br0', 'up'])
      await sh('sysctl', ['-qw', `net.ipv6.conf.${net.gatewayLink}.disable_ipv6=1`]).catch(() => undefined)
      await sh('ip', ['addr', 'add', `${net.gatewayAddress}/16`, 'dev', net.gatewayLink])
      await sh('ip', ['link', 'set', net.gatewayLink, 'up'])
    } catch (e) {
      await sh('ip', ['netns', 'del', net.hub]).catch(() => undefined)
      throw e
    }
  }

  /** Starts the host's namespaces and init in its (existing) netns; resolves when sshd accepts. */
  private async boot(m: Machine, ctx: DriverContext): Promise<Machine> {
    const d = m.data as unknown as LocalMachineData
    const storeRoot = path.dirname(path.dirname(ctx.stateDir))
    const hide = [...new Set([storeRoot, packageRoot()])]
    const logFile = path.join(d.dir, 'init.log')
    const log = openSync(logFile, 'a', 0o600)
    let pid: number
    try {
      const child = spawn(
        'nsenter',
        [`--net=/run/netns/${d.netns}`, '--', 'unshare', '--mount', '--uts', '--ipc', '--pid', '--fork', '--kill-child', '--mount-proc', '--',
          'tini', '--', path.join(d.dir, 'lib', 'hostinit.sh'), d.name, `${m.address}/16`, d.dir, ...hide],
        {detached: true, stdio: ['ignore', log, log]},
      )
      if (child.pid === undefined) throw new Error('could not start nsenter')
      pid = child.pid
      child.unref()
    } finally {
      closeSync(log)
    }
    const booted: Machine = {...m, data: {...d, pid}}
    const ok = await waitUntil(async () => (await tcpOpen(m.address, 22)) || !(await processAlive(pid)), READY_TIMEOUT_MS)
    if (!ok || !(await processAlive(pid)) || !(await tcpOpen(m.address, 22))) {
      const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ')
      throw new Error(`host ${m.id} did not start sshd within ${READY_TIMEOUT_MS / 1000} s${tail ? ` (init log: ${tail})` : ''}`)
    }
    return {...booted, hostKeys: await readHostKeys(d.dir)}
  }

  engineConfig(m: Machine): Readonly<Record<string, unknown>> {
    return {'cgroup-parent': `/belt/${(m.data as unknown as LocalMachineData).netns}`}
  }

  async state(m: Machine, _options: DriverOptions, _ctx: DriverContext): Promise<MachineState> {
    const d = m.data as unknown as LocalMachineData
    if (!netnsExists(d.netns)) return 'missing'
    return (await pidInNetns(d.pid, d.netns)) ? 'running' : 'stopped'
  }

  async remove(m: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const d = m.data as unknown as LocalMachineData
    const net = network({...options, subnet: d.subnet})
    await this.destroy({ns: d.netns, dir: d.dir, index: d.index}, net, ctx)
  }

  /**
   * Removes what an interrupted create left: the journaled namespaces, and any namespace of this
   * subnet named for the host whose directory is in this store (another store's host of the same
   * name is never touched).
   */
  async removeLeftovers(host: {name: string; cluster: string}, leftovers: readonly ResourceId[], options: DriverOptions, ctx: DriverContext): Promise<void> {
    const net = network(options)
    const own = new RegExp(`^belt-${net.tag.replace(/[^a-z0-9-]/g, '')}-([0-9]+)-${host.name}$`)
    const names = new Set(leftovers.filter((r) => r.kind === 'netns').map((r) => r.id))
    for (const ns of await fs.readdir('/run/netns').catch(() => [] as string[]))
      if (own.test(ns) && existsSync(path.join(ctx.stateDir, 'hosts', ns))) names.add(ns)
    for (const ns of names) {
      const m = own.exec(ns)
      if (!m) throw new Error(`namespace ${ns} is not one of host ${host.name} on ${net.cidr}`)
      await this.destroy({ns, dir: path.join(ctx.stateDir, 'hosts', ns), index: Number(m[1])}, net, ctx)
    }
  }

  /** Kills every process of the host, deletes its namespace, directory and cgroups; then the hub if unused. */
  private async destroy(h: {ns: string; dir: string; index: number}, net: LocalNetwork, ctx: DriverContext): Promise<void> {
    const {ns, dir} = h
    await this.killAll(ns)
    // The kernel tears a deleted namespace down asynchronously, so its veth could outlive
    // `ip netns del` for a while: delete the hub's end (and with it the pair) first.
    if (netnsExists(net.hub)) await sh('ip', ['-n', net.hub, 'link', 'del', hubPort(h.index)]).catch(() => undefined)
    if (netnsExists(ns)) {
      await sh('ip', ['netns', 'del', ns])
      await ctx.journal({kind: 'netns', id: ns, action: 'deleted'})
    }
    await removeCgroups(ns)
    await fs.rm(dir, {recursive: true, force: true})
    await this.locks.with(`subnet-${net.tag}`, async () => {
      if (!netnsExists(net.hub)) return
      const ports = takenIndices(await sh('ip', ['-n', net.hub, '-o', 'link', 'show']))
      if (ports.size > 0) return
      await sh('ip', ['netns', 'del', net.hub]) // the bridge and the gateway pair go with it
      await sh('ip', ['link', 'del', net.gatewayLink]).catch(() => undefined)
      const hubsLeft = (await fs.readdir('/run/netns').catch(() => [] as string[])).some((n) => n.startsWith('belt-hub-'))
      if (!hubsLeft) await this.locks.with('neighbour-limits', restoreNeighbourLimits)
      if (existsSync(RUN_NETNS_MARK) && (await fs.readdir('/run/netns').catch(() => ['?'])).length === 0) {
        await sh('umount', ['/run/netns']).catch(() => undefined)
        await fs.rmdir('/run/netns').catch(() => undefined)
        await fs.rm(RUN_NETNS_MARK, {force: true})
      }
    })
  }

  /**
   * SIGKILL to every process in the host's netns; the kernel then ends its pid namespace. Resolves
   * when they are gone, and (bounded) when PID 1 of this machine has reaped them, so that nothing
   * of the host is left when remove resolves.
   */
  private async killAll(ns: string): Promise<void> {
    const seen = new Set<number>()
    const gone = await waitUntil(async () => {
      const pids = await netnsPids(ns)
      for (const p of pids) seen.add(p)
      signalAll(pids, 'SIGKILL')
      return pids.length === 0
    }, 15_000)
    if (!gone) throw new Error(`processes of host ${ns} survived SIGKILL for 15 s: ${(await netnsPids(ns)).join(' ')}`)
    await waitUntil(async () => [...seen].every((p) => !existsSync(`/proc/${p}`)), 5000)
  }

  async stop(m: Machine, _options: DriverOptions, _ctx: DriverContext): Promise<void> {
    const d = m.data as unknown as LocalMachineData
    if (!netnsExists(d.netns)) throw new Error(`host ${m.id} does not exist`)
    // Graceful: SIGTERM to everything but the keepers, so dockerd and sshd shut down cleanly.
    const keepers = await keeperPids(d.pid)
    signalAll((await netnsPids(d.netns)).filter((p) => !keepers.has(p)), 'SIGTERM')
    await waitUntil(async () => (await netnsPids(d.netns)).every((p) => keepers.has(p)), STOP_GRACE_MS)
    await this.killAll(d.netns)
  }

  async kill(m: Machine, _options: DriverOptions, _ctx: DriverContext): Promise<void> {
    const d = m.data as unknown as LocalMachineData
    if (!netnsExists(d.netns)) throw new Error(`host ${m.id} does not exist`)
    await this.killAll(d.netns)
  }

  async start(m: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    const d = m.data as unknown as LocalMachineData
    if (!netnsExists(d.netns)) throw new Error(`host ${m.id} does not exist any more`)
    if (await pidInNetns(d.pid, d.netns)) return m
    await this.killAll(d.netns) // leftovers of a half-stopped host
    void options
    return this.boot(m, ctx)
  }

  async restart(m: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    if (await pidInNetns((m.data as unknown as LocalMachineData).pid, (m.data as unknown as LocalMachineData).netns)) await this.stop(m, options, ctx)
    return this.start(m, options, ctx)
  }
}

async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(stat)
  } catch {
    return false
  }
}

async function directChildren(pid: number): Promise<number[]> {
  return (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number)
}

/**
 * The processes that keep a host alive and are not services: `unshare`, tini (the host's PID 1),
 * hostinit.sh and its `sleep`. Daemons that detached (sshd, dockerd) are tini's children too, so
 * hostinit is told apart by its command line.
 */
async function keeperPids(pid: number): Promise<Set<number>> {
  const keep = new Set([pid])
  const [tini] = await directChildren(pid)
  if (tini === undefined) return keep
  keep.add(tini)
  for (const c of await directChildren(tini)) {
    const cmd = await fs.readFile(`/proc/${c}/cmdline`, 'utf8').catch(() => '')
    if (!cmd.includes('hostinit.sh')) continue
    keep.add(c)
    for (const s of await directChildren(c)) keep.add(s)
  }
  return keep
}

/** The host's sshd public keys, read from the upper layer of its /etc overlay (`type base64`). */
async function readHostKeys(dir: string): Promise<string[]> {
  const sshDir = path.join(dir, 'fs', 'etc', 'ssh')
  const out: string[] = []
  for (const f of ['ssh_host_ed25519_key.pub', 'ssh_host_ecdsa_key.pub']) {
    const text = await fs.readFile(path.join(sshDir, f), 'utf8').catch(() => '')
    const [type, b64] = text.trim().split(/\s+/)
    if (type && b64) out.push(`${type} ${b64}`)
  }
  if (out.length === 0) throw new Error(`host keys not found in ${sshDir}`)
  return out
}

/** Removes the cgroups that engines on the host created under `belt/<ns>` (daemon.json cgroup-parent). */
async function removeCgroups(ns: string): Promise<void> {
  const roots = await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])
  const candidates = ['/sys/fs/cgroup', ...roots.map((r) => path.join('/sys/fs/cgroup', r))]
  for (const root of candidates) await rmdirTree(path.join(root, 'belt', ns))
}

async function rmdirTree(dir: string): Promise<void> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await fs.readdir(dir, {withFileTypes: true})
  } catch {
    return
  }
  for (const e of entries) if (e.isDirectory()) await rmdirTree(path.join(dir, e.name))
  await fs.rmdir(dir).catch(() => undefined)
}

export function createLocalDriver(): Driver {
  return new LocalDriver()
}
