/**
 * Pure builders for what the bootstrapper sends to a host: every command string and file body is
 * made here, from data, and table-tested. Strings meet the shell only through shQuote.
 */
import {createHash} from 'node:crypto'
import path from 'node:path'
import {installUrlProblem} from '../install-url.js'
import {shQuote} from '../ssh/quote.js'
import {fillTemplate} from '../templates.js'
import type {EngineRecord} from '../store/types.js'

/** The Docker API port with mutual TLS (IANA's docker-s). */
export const DOCKER_TLS_PORT = 2376

/** Where the engine's TLS files live on a host. */
export const ENGINE_PATHS = {
  dir: '/etc/docker',
  ca: '/etc/docker/ca.pem',
  cert: '/etc/docker/server.pem',
  key: '/etc/docker/server-key.pem',
  daemonJson: '/etc/docker/daemon.json',
  dropInDir: '/etc/systemd/system/docker.service.d',
  dropIn: '/etc/systemd/system/docker.service.d/10-belt.conf',
  keyJson: '/etc/docker/key.json',
} as const

/** Engine settings from `--engine-*` flags (the shape saved in each host's record). */
export type EngineConfig = EngineRecord['config']

export const emptyEngineConfig = (): EngineConfig => ({labels: [], opts: [], insecureRegistries: [], registryMirrors: []})

/** /etc/os-release, parsed. */
export interface OsRelease {
  id: string
  idLike: string[]
  versionId?: string
  prettyName?: string
}

export function parseOsRelease(text: string): OsRelease {
  const kv = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (!m) continue
    let v = m[2]!
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1)
    kv.set(m[1]!, v)
  }
  return {
    id: (kv.get('ID') ?? 'unknown').toLowerCase(),
    idLike: (kv.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    versionId: kv.get('VERSION_ID'),
    prettyName: kv.get('PRETTY_NAME'),
  }
}

export const isDebianFamily = (os: OsRelease): boolean => os.id === 'debian' || os.id === 'ubuntu' || os.idLike.includes('debian') || os.idLike.includes('ubuntu')

/**
 * Wraps a command for the SSH user: as is for root, through `sudo -n` otherwise (never a password
 * prompt that would hang a batch).
 */
export function privileged(command: string, user: string): string {
  return user === 'root' ? command : `sudo -n sh -c ${shQuote(command)}`
}

/**
 * What `belt rm --clean-host` runs (privileged) on a host Belt did not make: stops the engine and
 * removes what the bootstrapper wrote (TLS pair, CA, daemon.json, the systemd drop-in). Docker
 * itself, images and volumes stay.
 */
export function cleanEngineCommand(): string {
  const files = [ENGINE_PATHS.ca, ENGINE_PATHS.cert, ENGINE_PATHS.key, ENGINE_PATHS.daemonJson, ENGINE_PATHS.dropIn]
  return `systemctl stop docker.socket >/dev/null 2>&1; systemctl stop docker || exit $?; rm -f ${files.join(' ')} && systemctl daemon-reload`
}

/** A file {@link writeFilesCommand} writes: its bytes come on the command's stdin, in order. */
export interface StdinFile {
  path: string
  mode: number
  /** Length in bytes. */
  size: number
  /** SHA-256 of the content, lower-case hex: the host checks what arrived before it moves it into place. */
  sha256: string
}

/**
 * Writes files from the command's stdin, one after another (`head -c SIZE` of GNU coreutils reads
 * no byte past SIZE), each into a temporary file beside its path (`mktemp`: 0600 under umask 077),
 * checked against its SHA-256, given its mode and renamed over the path (atomic, never a partly
 * written key). What arrives damaged is removed and the command fails naming the path. Nothing of
 * the content is on the command line (a private key must not show in `ps`). Run privileged: the
 * files are then root's, as `install -o root` made them. First, temporary files an SSH session cut
 * off mid-write left in those directories over an hour ago are removed (a write takes well under a
 * second, so none of them belongs to a writer still at work).
 */
export function writeFilesCommand(files: readonly StdinFile[]): string {
  if (files.length === 0) throw new Error('no files to write')
  const dirOf = (f: StdinFile) => shQuote(path.posix.dirname(f.path))
  const dirs = [...new Set(files.map(dirOf))]
  const sweep = `{ find ${dirs.join(' ')} -maxdepth 1 -type f -name '.belt.????????' -mmin +60 -exec rm -f {} + 2>/dev/null || true; }`
  const steps = files.map((f) => {
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw new Error(`bad size ${f.size} for ${f.path}`)
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new Error(`bad SHA-256 for ${f.path}`)
    if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o7777) throw new Error(`bad mode for ${f.path}`)
    const p = shQuote(f.path)
    const dir = dirOf(f)
    const damaged = shQuote(`belt: ${f.path} arrived damaged (not the ${f.size} bytes sent) and was not replaced`)
    return (
      `t=$(mktemp ${dir}/.belt.XXXXXXXX) && ` +
      `{ head -c ${f.size} > "$t" && s=$(sha256sum < "$t") && [ "\${s%% *}" = ${f.sha256} ] || { rm -f "$t"; echo ${damaged} >&2; exit 1; }; } && ` +
      `chmod ${f.mode.toString(8).padStart(4, '0')} "$t" && mv -f "$t" ${p}`
    )
  })
  return `umask 077 && ${sweep} && ${steps.join(' && ')}`
}

/** A file's {@link StdinFile} entry: its byte length and SHA-256. */
export function stdinFile(f: {path: string; content: string; mode: number}): StdinFile {
  const bytes = Buffer.from(f.content, 'utf8')
  return {path: f.path, mode: f.mode, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex')}
}

/**
 * The bootstrap's one configuring command, run privileged: sets the host name, makes the engine's
 * directories, writes `files` from stdin ({@link writeFilesCommand}), removes key.json (so a cloned
 * image's engines get distinct IDs) and (re)starts the engine, each step only when asked and
 * stopping at the first that fails.
 */
export function configureCommand(o: {name: string; files: readonly StdinFile[]; resetEngineId: boolean; restart: boolean}): string {
  const steps = [hostnameCommand(o.name), `mkdir -p ${ENGINE_PATHS.dir} ${ENGINE_PATHS.dropInDir}`]
  if (o.files.length) steps.push(writeFilesCommand(o.files))
  if (o.resetEngineId) steps.push(`rm -f ${ENGINE_PATHS.keyJson}`)
  if (o.restart) steps.push(`{ ${restartEngineCommand}; }`)
  return steps.join(' && ')
}

/** Prints a file (one the login user may not be allowed to read by SFTP); run privileged. */
export function readFileCommand(path: string): string {
  return `cat -- ${shQuote(path)}`
}

/**
 * Runs the engine install script sent on its stdin, once; run privileged. The command makes a
 * private directory (`mktemp -d`: unpredictable name, 0700), writes the script into it and runs it
 * with stdin closed and, as `$1`, another path of that directory to download an installer to (so
 * nothing overwrites the script while sh is still reading it), then removes the directory and
 * exits with the script's status. No fixed path in /tmp, nothing left behind.
 */
export const installEngineCommand =
  'd=$(mktemp -d /tmp/belt-install.XXXXXXXX) || exit 1; cat > "$d/install.sh" && sh "$d/install.sh" "$d/installer.sh" </dev/null; rc=$?; rm -rf -- "$d"; exit $rc'

/**
 * One round trip that tells the bootstrapper what it needs: os-release, the dockerd path (empty when
 * absent), whether cloud-init exists, and the sha256 of the files belt manages (to skip a restart
 * when nothing changed).
 */
export function probeCommand(): string {
  const files = [ENGINE_PATHS.ca, ENGINE_PATHS.cert, ENGINE_PATHS.key, ENGINE_PATHS.daemonJson, ENGINE_PATHS.dropIn]
  return [
    'echo "--os"; cat /etc/os-release 2>/dev/null',
    'echo "--dockerd"; command -v dockerd 2>/dev/null || { test -x /usr/bin/dockerd && echo /usr/bin/dockerd; } || true',
    'echo "--cloud-init"; command -v cloud-init >/dev/null 2>&1 && echo yes || echo no',
    'echo "--keyjson"; test -e /etc/docker/key.json && echo yes || echo no',
    `echo "--active"; systemctl is-active docker 2>/dev/null || true`,
    `echo "--sums"; for f in ${files.join(' ')}; do if [ -f "$f" ]; then sha256sum "$f"; fi; done`,
  ].join('; ')
}

export interface Probe {
  os: OsRelease
  dockerd?: string
  cloudInit: boolean
  keyJson: boolean
  active: boolean
  sums: Map<string, string>
}

export function parseProbe(out: string): Probe {
  const sections = new Map<string, string[]>()
  let cur = ''
  for (const line of out.split('\n')) {
    if (/^--[a-z-]+$/.test(line)) {
      cur = line.slice(2)
      sections.set(cur, [])
    } else sections.get(cur)?.push(line)
  }
  const text = (k: string) => (sections.get(k) ?? []).join('\n').trim()
  const sums = new Map<string, string>()
  for (const l of sections.get('sums') ?? []) {
    const m = /^([0-9a-f]{64})\s+(\S+)$/.exec(l.trim())
    if (m) sums.set(m[2]!, m[1]!)
  }
  return {
    os: parseOsRelease(text('os')),
    dockerd: text('dockerd') || undefined,
    cloudInit: text('cloud-init') === 'yes',
    keyJson: text('keyjson') === 'yes',
    active: text('active') === 'active',
    sums,
  }
}

/** `cloud-init status --wait`: the cure for apt-lock failures on freshly booted cloud images. */
export const cloudInitWaitCommand = 'cloud-init status --wait >/dev/null 2>&1 || true'

/**
 * The engine install script for a host without dockerd, for {@link installEngineCommand}. Throws a
 * plain Error naming the OS when belt has no way to install on it, or the install URL when it is
 * not https (a record may predate that rule); the caller turns it into a host failure.
 */
export function installScript(os: OsRelease, cfg: EngineConfig, templates: {debian: string; script: string}): string {
  if (cfg.installUrl) {
    const problem = installUrlProblem(cfg.installUrl)
    if (problem) throw new Error(`--engine-install-url: ${problem}`)
    return fillTemplate('install-script.sh', templates.script, {
      URL: shQuote(cfg.installUrl),
      CURL_PROTO: new URL(cfg.installUrl).protocol === 'https:' ? `--proto ${shQuote('=https')}` : '',
      VERSION_ENV: cfg.version ? `VERSION=${shQuote(cfg.version)}` : '',
    })
  }
  if (!isDebianFamily(os))
    throw new Error(`no Docker engine on this ${os.prettyName ?? os.id} host and belt installs only on Debian/Ubuntu: install Docker yourself or pass --engine-install-url`)
  return fillTemplate('install-debian.sh', templates.debian, {
    VERSION_PIN: cfg.version ? `=${shQuote(cfg.version + '*')}` : '',
    APT_OPTS: cfg.installProxy ? `-o Acquire::http::Proxy=${shQuote(cfg.installProxy)}` : '',
  })
}

/** Sets the hostname now and across reboots, and maps it in /etc/hosts. */
export function hostnameCommand(name: string): string {
  const q = shQuote(name)
  return [
    `(hostnamectl set-hostname ${q} 2>/dev/null || hostname ${q})`,
    `echo ${q} > /etc/hostname`,
    `if grep -q '^127.0.1.1' /etc/hosts; then sed -i "s/^127.0.1.1.*/127.0.1.1 "${q}"/" /etc/hosts; else echo "127.0.1.1 "${q} >> /etc/hosts; fi`,
  ].join(' && ')
}

/** Parses an `--engine-opt` value's right-hand side into the JSON type dockerd expects. */
function typed(v: string): unknown {
  if (v === 'true') return true
  if (v === 'false') return false
  if (/^-?[0-9]+$/.test(v)) return Number(v)
  return v
}

/**
 * /etc/docker/daemon.json: TLS, labels (always `provider=<driver>`), registries, storage driver and
 * `--engine-opt` keys. Never a "hosts" key (see templates/engine/10-belt.conf).
 */
export function daemonJson(cfg: EngineConfig, driver: string, extra: Readonly<Record<string, unknown>> = {}): string {
  const json: Record<string, unknown> = {
    tlsverify: true,
    tlscacert: ENGINE_PATHS.ca,
    tlscert: ENGINE_PATHS.cert,
    tlskey: ENGINE_PATHS.key,
    labels: [`provider=${driver}`, ...cfg.labels.filter((l) => !l.startsWith('provider='))],
    ...extra,
  }
  if (cfg.insecureRegistries.length) json['insecure-registries'] = [...cfg.insecureRegistries]
  if (cfg.registryMirrors.length) json['registry-mirrors'] = [...cfg.registryMirrors]
  if (cfg.storageDriver) json['storage-driver'] = cfg.storageDriver
  for (const opt of cfg.opts) {
    const i = opt.indexOf('=')
    if (i <= 0) throw new Error(`--engine-opt ${opt}: expected KEY=VALUE, e.g. log-level=warn`)
    const key = opt.slice(0, i)
    if (key === 'hosts' || key === 'host') throw new Error(`--engine-opt ${key}: listeners are set by belt (port ${DOCKER_TLS_PORT}) and cannot be set in daemon.json`)
    const value = typed(opt.slice(i + 1))
    const prev = json[key]
    json[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return JSON.stringify(json, null, 2) + '\n'
}

/**
 * The systemd drop-in with the listeners, for the dockerd found on the host, and one `Environment=`
 * line per `--engine-env KEY=VALUE` (see {@link systemdEnvironment}).
 */
export function dropIn(dockerd: string, template: string, env: readonly string[] = []): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(dockerd)) throw new Error(`unexpected dockerd path ${JSON.stringify(dockerd)}`)
  const unit = fillTemplate('10-belt.conf', template, {DOCKERD: dockerd, PORT: String(DOCKER_TLS_PORT)})
  return env.length === 0 ? unit : unit.replace(/\n*$/, '\n') + env.map(systemdEnvironment).join('\n') + '\n'
}

/** Why an `--engine-env` value cannot be used, or undefined: KEY=VALUE, KEY a variable name, no control characters. */
export function engineEnvProblem(kv: string): string | undefined {
  const i = kv.indexOf('=')
  if (i <= 0) return `expected KEY=VALUE, e.g. HTTP_PROXY=http://10.0.0.1:3128, not ${JSON.stringify(kv)}`
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(kv.slice(0, i))) return `${JSON.stringify(kv.slice(0, i))} is not an environment variable name (letters, digits, _)`
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(kv)) return `the value of ${kv.slice(0, i)} has a control character (newline, tab, ...)`
  return undefined
}

/**
 * One `Environment=` line of a systemd unit for `KEY=VALUE`: the whole assignment in double quotes,
 * with `\` and `"` escaped (systemd's quoting) and `%` doubled (systemd's specifiers); systemd does
 * not expand `$` in Environment=. Throws a plain Error for a value {@link engineEnvProblem} refuses.
 */
export function systemdEnvironment(kv: string): string {
  const problem = engineEnvProblem(kv)
  if (problem) throw new Error(`--engine-env: ${problem}`)
  return `Environment="${kv.replace(/[\\"]/g, '\\$&').replace(/%/g, '%%')}"`
}

/**
 * The engine upgrade script (`belt upgrade`), for {@link installEngineCommand} (sent on stdin, run
 * privileged, `$1` a download path of its private directory). Hosts installed through
 * `--engine-install-url` run that script again; the others upgrade the engine packages apt
 * installed (docker.io, or docker-ce and its companions) to the newest their sources offer. Either
 * way the engine restarts at the end, so that the daemon runs the binary now on disk.
 */
export function upgradeScript(cfg: EngineConfig, templates: {script: string}): string {
  const restart = `${restartEngineCommand}\n`
  if (cfg.installUrl) return installScript({id: 'unknown', idLike: []}, cfg, {debian: '', script: templates.script}).replace(/\n*$/, '\n') + restart
  const apt = cfg.installProxy ? `-o Acquire::http::Proxy=${shQuote(cfg.installProxy)} ` : ''
  return [
    '#!/bin/sh',
    '# Written by belt: upgrades the Docker engine packages apt installed, then restarts the engine.',
    'set -eu',
    'export DEBIAN_FRONTEND=noninteractive',
    'command -v apt-get >/dev/null 2>&1 || { echo "belt upgrades engines through apt (Debian/Ubuntu) or --engine-install-url; this host has no apt-get" >&2; exit 3; }',
    // Package names come from dpkg itself: letters, digits and .+- only, safe unquoted.
    "pkgs=$(dpkg-query -W -f='${Package} ${db:Status-Status}\\n' docker.io docker-ce docker-ce-cli containerd.io containerd runc 2>/dev/null | awk '$2 == \"installed\" {print $1}' | tr '\\n' ' ')",
    '[ -n "$pkgs" ] || { echo "no Docker engine package (docker.io or docker-ce) is installed through apt on this host" >&2; exit 3; }',
    `apt-get ${apt}-o DPkg::Lock::Timeout=300 update -q`,
    `apt-get ${apt}-o DPkg::Lock::Timeout=300 install -y -q --only-upgrade -o Dpkg::Options::=--force-confold $pkgs`,
    restart,
  ].join('\n')
}

/** Reload units and (re)start the engine; `enable` so it comes back after a reboot. */
export const restartEngineCommand = 'systemctl daemon-reload; systemctl enable docker >/dev/null 2>&1; systemctl restart docker'

/**
 * Opt-in kernel settings for hosts of large swarms (`--engine-kernel-profile`), in the order they
 * are applied. Why `large-swarm`: the kernel's neighbour (ARP/NDP) table is one table for the whole
 * host, every network namespace included, and its defaults (gc_thresh1/2/3 = 128/512/1,024) are
 * for a desktop. A swarm node keeps an entry per peer on the underlay, and one per peer in each
 * overlay network it is attached to (the ingress included): about N x (1 + networks) entries. At
 * 300 nodes with the ingress and one overlay that is ~900; one more network and it passes 1,024,
 * the hard limit, where the kernel logs "neighbour table overflow" and drops packets (joins and
 * gossip fail as "no route to host"; on the local driver's shared table it happened at about 30
 * hosts). The profile raises the limits 64x (room for thousands of peers) and conntrack's table,
 * which the routing mesh fills with one entry per connection through it (default 65,536 on small
 * hosts). gc_thresh3 goes first so that thresh1 <= thresh2 <= thresh3 holds at every step.
 */
export const KERNEL_PROFILES = {
  'large-swarm': [
    ['net.ipv4.neigh.default.gc_thresh3', '65536'],
    ['net.ipv4.neigh.default.gc_thresh2', '32768'],
    ['net.ipv4.neigh.default.gc_thresh1', '8192'],
    ['net.ipv6.neigh.default.gc_thresh3', '65536'],
    ['net.ipv6.neigh.default.gc_thresh2', '32768'],
    ['net.ipv6.neigh.default.gc_thresh1', '8192'],
    ['net.netfilter.nf_conntrack_max', '262144'],
  ],
} as const satisfies Record<string, readonly (readonly [string, string])[]>
export type KernelProfile = keyof typeof KERNEL_PROFILES

/** The sysctl.d file of a profile: systemd-sysctl applies it again at every boot. */
export const kernelProfilePath = (profile: KernelProfile): string => `/etc/sysctl.d/90-belt-${profile}.conf`

/** The body of {@link kernelProfilePath}. */
export function kernelProfileFile(profile: KernelProfile): string {
  return [`# Written by belt (--engine-kernel-profile ${profile}); see belt's README, "Kernel profile".`, ...KERNEL_PROFILES[profile].map(([k, v]) => `${k} = ${v}`), ''].join('\n')
}

/**
 * Applies a profile now, key by key, through /proc/sys (no procps needed), and prints `applied KEY`
 * or `skipped KEY` per setting: a key the kernel does not have (conntrack not loaded) or will not
 * let this host set (inside a network namespace, such as the local driver's hosts, these are the
 * machine's, read-only or absent) is skipped, not an error. `root` is for tests.
 */
export function applyKernelProfileCommand(profile: KernelProfile, root = '/proc/sys'): string {
  return KERNEL_PROFILES[profile]
    .map(([k, v]) => {
      const file = shQuote(`${root}/${k.replaceAll('.', '/')}`)
      return `if [ -f ${file} ] && printf '%s\\n' ${shQuote(v)} > ${file} 2>/dev/null; then echo ${shQuote(`applied ${k}`)}; else echo ${shQuote(`skipped ${k}`)}; fi`
    })
    .join('; ')
}

/** What {@link applyKernelProfileCommand} printed: the keys applied and skipped. */
export function parseKernelProfileApply(out: string): {applied: string[]; skipped: string[]} {
  const applied: string[] = []
  const skipped: string[] = []
  for (const line of out.split('\n')) {
    const m = /^(applied|skipped) (\S+)$/.exec(line.trim())
    if (m) (m[1] === 'applied' ? applied : skipped).push(m[2]!)
  }
  return {applied, skipped}
}
