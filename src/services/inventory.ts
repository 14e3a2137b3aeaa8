import path from 'node:path'
import {environmentError, usageError} from '../errors.js'
import {shQuote} from '../ssh/quote.js'
import {writeFileAtomic} from '../store/atomic.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {selectHosts} from './select-hosts.js'

export const INVENTORY_FORMATS = ['json', 'ansible', 'ssh-config', 'known-hosts'] as const
export type InventoryFormat = (typeof INVENTORY_FORMATS)[number]

/** `belt inventory --format json`: one host, with fields kept stable for programs. No secret. */
export interface InventoryHost {
  name: string
  cluster: string
  driver: string
  phase: HostRecord['phase']
  /** Where SSH and the Docker API are reached; null until the host is created. */
  address: string | null
  privateAddress: string | null
  /**
   * null until the host is created. `identityFile` is the key the host logs in with: the cluster key
   * (0600) in the store, or the operator's own key the machine names (generic driver). `proxy` is the
   * bastion to reach it through (ssh's ProxyJump), with its pinned host keys.
   */
  ssh: {user: string; port: number; identityFile: string; proxy: {user: string; host: string; port: number; hostKeys: string[]} | null} | null
  /** The pinned host keys (`type base64`), as Belt checks them. */
  hostKeys: string[]
  /** The engine's URL (`tcp://ADDRESS:2376`, mutual TLS), once bootstrapped. */
  engineUrl: string | null
  /** The host's swarm role and node ID, as Belt last set them. */
  swarm: {role: 'manager' | 'worker' | null; nodeId: string | null} | null
}

/** The file `inventory` writes the pinned keys to unless told otherwise. */
export const defaultKnownHostsFile = (store: Store): string => path.resolve(store.dir, 'known_hosts')

/** One record as an {@link InventoryHost}. */
export function inventoryHost(store: Store, r: HostRecord): InventoryHost {
  const m = r.machine
  return {
    name: r.name,
    cluster: r.cluster,
    driver: r.driver,
    phase: r.phase,
    address: m?.address ?? null,
    privateAddress: m?.privateAddress ?? null,
    ssh: m
      ? {
          user: m.ssh.user,
          port: m.ssh.port,
          identityFile: m.ssh.identityFile ?? path.resolve(store.keysDir(r.cluster), 'id_ed25519'),
          proxy: m.ssh.proxy ? {user: m.ssh.proxy.user, host: m.ssh.proxy.host, port: m.ssh.proxy.port, hostKeys: [...(m.ssh.proxy.hostKeys ?? [])]} : null,
        }
      : null,
    hostKeys: [...(r.hostKeys ?? [])],
    engineUrl: r.engine?.url ?? null,
    swarm: r.swarm ? {role: r.swarm.role ?? null, nodeId: r.swarm.nodeId ?? null} : null,
  }
}

/** The host field of a known_hosts line: `ADDRESS` on port 22, `[ADDRESS]:PORT` otherwise (as ssh looks it up). */
export function knownHostsHost(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`
}

/**
 * OpenSSH known_hosts lines for the hosts' pinned keys, one per key, keyed by address (and port);
 * a bastion's pinned keys too (once, however many hosts go through it).
 */
export function knownHostsText(hosts: readonly InventoryHost[]): string {
  const lines: string[] = []
  const add = (host: string, keys: readonly string[]) => {
    for (const key of keys) {
      const [type, blob] = key.trim().split(/\s+/)
      if (type && blob) lines.push(`${host} ${type} ${blob}`)
    }
  }
  for (const h of hosts) {
    if (!h.address || !h.ssh) continue
    add(knownHostsHost(h.address, h.ssh.port), h.hostKeys)
    if (h.ssh.proxy) add(knownHostsHost(h.ssh.proxy.host, h.ssh.proxy.port), h.ssh.proxy.hostKeys)
  }
  return [...new Set(lines)].map((l) => l + '\n').join('')
}

/**
 * The ProxyCommand that reaches a host through its bastion with the same key and the same strict
 * host-key check against the export (a ProxyJump would check the bastion against the user's own
 * known_hosts and keys instead). `%h:%p` are ssh's tokens; a literal `%` in a path is doubled.
 */
export function proxyCommand(proxy: {user: string; host: string; port: number}, identityFile: string, knownHostsFile: string): string {
  const p = (s: string) => shQuote(s).replaceAll('%', '%%')
  return [
    'ssh -W %h:%p',
    `-p ${proxy.port}`,
    `-i ${p(identityFile)}`,
    '-o IdentitiesOnly=yes',
    `-o UserKnownHostsFile=${p(knownHostsFile)}`,
    '-o StrictHostKeyChecking=yes',
    p(`${proxy.user}@${proxy.host}`),
  ].join(' ')
}

/** An ssh_config word: quoted when it holds a space or a quote. */
const configWord = (s: string): string => (/[\s"]/.test(s) ? `"${s.replaceAll('"', '')}"` : s)
/** A path for IdentityFile/UserKnownHostsFile, where ssh expands `%` tokens: `%` is written `%%`. */
const configPath = (s: string): string => configWord(s.replaceAll('%', '%%'))

/**
 * ssh_config Host blocks (`Include` it from ~/.ssh/config, or `ssh -F FILE node1`): each host's
 * address, user, port and cluster key, and its key checked strictly against the exported
 * known_hosts, as Belt checks it.
 */
export function sshConfigText(hosts: readonly InventoryHost[], knownHostsFile: string): string {
  const blocks: string[] = []
  for (const h of hosts) {
    if (!h.address || !h.ssh) continue
    blocks.push(
      [
        `Host ${h.name}`,
        `  HostName ${h.address}`,
        `  User ${h.ssh.user}`,
        `  Port ${h.ssh.port}`,
        `  IdentityFile ${configPath(h.ssh.identityFile)}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${configPath(knownHostsFile)}`,
        '  StrictHostKeyChecking yes',
        ...(h.ssh.proxy ? [`  ProxyCommand ${proxyCommand(h.ssh.proxy, h.ssh.identityFile, knownHostsFile)}`] : []),
      ].join('\n'),
    )
  }
  return blocks.length === 0 ? '' : `# Generated by belt inventory --format ssh-config\n${blocks.join('\n\n')}\n`
}

/** An Ansible group name: letters, digits and underscores. */
export const ansibleGroup = (s: string): string => s.replace(/[^A-Za-z0-9_]/g, '_')

/** The JSON of an Ansible dynamic inventory (`--list`): groups and `_meta.hostvars`. */
export interface AnsibleInventory {
  _meta: {hostvars: Record<string, Record<string, unknown>>}
  all: {children: string[]}
  [group: string]: {hosts?: string[]; children?: string[]} | AnsibleInventory['_meta']
}

/**
 * Ansible's dynamic-inventory JSON. Groups: `belt` (every host), `cluster_<cluster>`,
 * `driver_<driver>`, `swarm_managers`, `swarm_workers` (always present, maybe empty). Host vars:
 * ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file, and
 * ansible_ssh_common_args that make ssh check the host key strictly against the exported
 * known_hosts; belt_* vars for the cluster, driver, swarm role and engine URL.
 */
export function ansibleInventory(hosts: readonly InventoryHost[], knownHostsFile: string): AnsibleInventory {
  const groups = new Map<string, string[]>([
    ['belt', []],
    ['swarm_managers', []],
    ['swarm_workers', []],
  ])
  const add = (g: string, name: string) => groups.set(g, [...(groups.get(g) ?? []), name])
  const hostvars: Record<string, Record<string, unknown>> = {}
  for (const h of hosts) {
    if (!h.address || !h.ssh) continue
    add('belt', h.name)
    add(`cluster_${ansibleGroup(h.cluster)}`, h.name)
    add(`driver_${ansibleGroup(h.driver)}`, h.name)
    if (h.swarm?.role === 'manager') add('swarm_managers', h.name)
    if (h.swarm?.role === 'worker') add('swarm_workers', h.name)
    hostvars[h.name] = {
      ansible_host: h.address,
      ansible_user: h.ssh.user,
      ansible_port: h.ssh.port,
      ansible_ssh_private_key_file: h.ssh.identityFile,
      ansible_ssh_common_args:
        `-o UserKnownHostsFile=${configPath(knownHostsFile)} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes` +
        (h.ssh.proxy ? ` -o ${shQuote(`ProxyCommand=${proxyCommand(h.ssh.proxy, h.ssh.identityFile, knownHostsFile)}`)}` : ''),
      belt_cluster: h.cluster,
      belt_driver: h.driver,
      ...(h.privateAddress ? {belt_private_address: h.privateAddress} : {}),
      ...(h.swarm?.role ? {belt_swarm_role: h.swarm.role} : {}),
      ...(h.engineUrl ? {belt_engine_url: h.engineUrl} : {}),
    }
  }
  const inv: AnsibleInventory = {_meta: {hostvars}, all: {children: [...groups.keys()]}}
  for (const [g, names] of groups) inv[g] = {hosts: names}
  return inv
}

export interface InventoryRequest {
  store: Store
  /** Host patterns; none means every host of the store. */
  patterns: readonly string[]
  format: InventoryFormat
  /**
   * Where the pinned keys are exported for `ansible` and `ssh-config` (which point ssh at it) or when
   * asked; default `<store>/known_hosts`.
   */
  knownHostsFile?: string
  /** Write the known_hosts file even for `json` and `known-hosts` (`--known-hosts FILE`). */
  writeKnownHosts?: boolean
  env?: NodeJS.ProcessEnv
}

export interface InventoryResult {
  /** What to print on stdout: JSON or text. */
  output: string
  hosts: InventoryHost[]
  /** The known_hosts file written, if any. */
  knownHostsFile?: string
  /** Hosts left out, and why, for stderr. */
  warnings: string[]
}

/**
 * `belt inventory`: the hosts in the format asked for. For `ansible` and `ssh-config` (and with
 * `--known-hosts FILE`) it also writes the pinned keys of EVERY host of the store to the known_hosts
 * file, atomically, so that a config generated for some hosts stays valid after another export.
 */
export async function buildInventory(req: InventoryRequest): Promise<InventoryResult> {
  const {store} = req
  if (!INVENTORY_FORMATS.includes(req.format)) throw usageError(`unknown inventory format '${req.format}'`, 'E_FORMAT', `use one of ${INVENTORY_FORMATS.join(', ')}`)
  const records = req.patterns.length > 0 ? await selectHosts(store, req.patterns, {env: req.env}) : (await store.list()).records
  const hosts = records.map((r) => inventoryHost(store, r))
  const warnings: string[] = []
  if (req.format !== 'json') {
    for (const h of hosts) {
      if (!h.address) warnings.push(`${h.name} is not created yet (${h.phase}): left out`)
      else if (h.hostKeys.length === 0) warnings.push(`${h.name} has no pinned host key yet, so ssh will refuse it: run belt ssh ${h.name} true once to pin it`)
    }
  }
  const file = path.resolve(req.knownHostsFile ?? defaultKnownHostsFile(store))
  let written: string | undefined
  if (req.format === 'ansible' || req.format === 'ssh-config' || req.writeKnownHosts) {
    const every = req.patterns.length > 0 ? (await store.list()).records.map((r) => inventoryHost(store, r)) : hosts
    // The default file lives in the store: made as `belt create` makes it (0700), never loosely.
    if (file === defaultKnownHostsFile(store)) await store.init()
    try {
      await writeFileAtomic(file, knownHostsText(every), 0o644)
    } catch (e) {
      throw environmentError(`cannot write the known_hosts file ${file}: ${(e as Error).message}`, 'E_KNOWN_HOSTS_WRITE', 'pass --known-hosts FILE in a directory you can write', e)
    }
    written = file
  }
  let output: string
  if (req.format === 'json') output = JSON.stringify(hosts, null, 2) + '\n'
  else if (req.format === 'ansible') output = JSON.stringify(ansibleInventory(hosts, file), null, 2) + '\n'
  else if (req.format === 'ssh-config') output = sshConfigText(hosts, file)
  else output = knownHostsText(hosts)
  return {output, hosts, knownHostsFile: written, warnings}
}
