import {createHash} from 'node:crypto'
import type {Machine} from '../../drivers/driver.js'
import {shQuote} from '../ssh/quote.js'
import type {Remote} from '../ssh/remote.js'
import {execOk} from '../ssh/remote.js'
import {
  DOCKER_TLS_PORT,
  ENGINE_PATHS,
  cloudInitWaitCommand,
  daemonJson,
  dropIn,
  hostnameCommand,
  installScript,
  parseProbe,
  privileged,
  probeCommand,
  restartEngineCommand,
  type EngineConfig,
  type Probe,
} from './commands.js'
import {waitForEngine, type ClientTls, type EngineInfo} from './engine-api.js'

/** A PEM certificate and its private key. */
export interface KeyPair {
  certPem: string
  keyPem: string
}

/** The templates the bootstrapper sends, read once per batch. */
export interface EngineTemplates {
  dropIn: string
  installDebian: string
  installScript: string
}

export interface BootstrapInput {
  /** One SSH connection to the host: every step is a channel on it. */
  remote: Remote
  name: string
  driver: string
  machine: Machine
  engine: EngineConfig
  templates: EngineTemplates
  caPem: string
  clientTls: ClientTls
  /**
   * The server certificate now on the host (downloaded), or undefined; returns true when it can be
   * kept (signed by this CA, SANs cover the host's addresses, not near expiry).
   */
  keepServerCert(currentPem: string | undefined): boolean
  /** Issues a new server certificate for this host (its key never touches the operator's disk). */
  issueServerCert(): Promise<KeyPair>
  /** Remove /etc/docker/key.json so cloned images get distinct engine IDs (first bootstrap only). */
  resetEngineId: boolean
  /** Always restart the engine, e.g. after new certificates. */
  forceRestart?: boolean
  /** daemon.json keys a driver needs (e.g. a cgroup parent per local host). */
  daemonExtra?: Readonly<Record<string, unknown>>
  log(message: string): void
  timeouts?: {cloudInitMs?: number; installMs?: number; engineMs?: number}
  signal?: AbortSignal
}

export interface BootstrapResult {
  engine: EngineInfo
  url: string
  installed: boolean
  restarted: boolean
  certRenewed: boolean
  /** The server certificate now on the host (new or kept), when known. */
  serverCertPem?: string
  /** Files whose content changed on the host. */
  changed: string[]
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

/**
 * Turns a reachable Linux host into a Docker engine with mutual TLS on :2376. Every step is
 * idempotent: files are compared by hash and only changed ones are written; the engine restarts only
 * when its configuration changed or it is not running. Resolves once the engine answers over TLS
 * with the client certificate; rejects with the failing step otherwise.
 */
export async function bootstrapHost(input: BootstrapInput): Promise<BootstrapResult> {
  const {remote, machine, log} = input
  const user = machine.ssh.user
  const run = (cmd: string, timeoutMs?: number) => execOk(remote, privileged(cmd, user), {timeoutMs})

  let probe: Probe = parseProbe((await run(probeCommand())).stdout)
  if (probe.cloudInit) {
    log('waiting for cloud-init to finish')
    await run(cloudInitWaitCommand, input.timeouts?.cloudInitMs ?? 600_000)
  }

  let installed = false
  if (!probe.dockerd) {
    log(`installing the Docker engine on ${probe.os.prettyName ?? probe.os.id}`)
    const script = installScript(probe.os, input.engine, {debian: input.templates.installDebian, script: input.templates.installScript})
    const path = '/tmp/belt-install-engine.sh'
    await putFile(remote, user, path, script, 0o700)
    await run(`sh ${path}; rc=$?; rm -f ${path}; exit $rc`, input.timeouts?.installMs ?? 900_000)
    probe = parseProbe((await run(probeCommand())).stdout)
    if (!probe.dockerd) throw new Error('the engine install finished but dockerd is still not on the PATH')
    installed = true
  }

  await run(`${hostnameCommand(input.name)} && mkdir -p ${ENGINE_PATHS.dir} ${ENGINE_PATHS.dropInDir}`)

  // Server certificate: keep the one on the host when it is still right, so a re-run restarts nothing.
  const currentCert = probe.sums.has(ENGINE_PATHS.cert) ? (await remote.download(ENGINE_PATHS.cert).catch(() => undefined))?.toString('utf8') : undefined
  const keep = !input.forceRestart && probe.sums.has(ENGINE_PATHS.key) && input.keepServerCert(currentCert)
  const server = keep ? undefined : await input.issueServerCert()

  const files: {path: string; content: string; mode: number}[] = [
    {path: ENGINE_PATHS.ca, content: input.caPem, mode: 0o644},
    {path: ENGINE_PATHS.daemonJson, content: daemonJson(input.engine, input.driver, input.daemonExtra), mode: 0o644},
    {path: ENGINE_PATHS.dropIn, content: dropIn(probe.dockerd, input.templates.dropIn), mode: 0o644},
  ]
  if (server) files.push({path: ENGINE_PATHS.cert, content: server.certPem, mode: 0o644}, {path: ENGINE_PATHS.key, content: server.keyPem, mode: 0o600})
  const changed: string[] = []
  for (const f of files) {
    if (probe.sums.get(f.path) === sha256(f.content)) continue
    await putFile(remote, user, f.path, f.content, f.mode)
    changed.push(f.path)
  }
  if (input.resetEngineId && probe.keyJson) {
    await run(`rm -f ${ENGINE_PATHS.keyJson}`)
    changed.push(ENGINE_PATHS.keyJson)
  }

  const restart = changed.length > 0 || !probe.active || Boolean(input.forceRestart)
  if (restart) {
    log(probe.active ? 'restarting the engine' : 'starting the engine')
    await run(restartEngineCommand, 120_000)
  }
  const engine = await waitForEngine(machine.address, DOCKER_TLS_PORT, input.clientTls, input.timeouts?.engineMs ?? 90_000, input.signal)
  return {engine, url: `tcp://${machine.address}:${DOCKER_TLS_PORT}`, installed, restarted: restart, certRenewed: Boolean(server), serverCertPem: server?.certPem ?? currentCert, changed}
}

/**
 * Writes a file on the host with an explicit mode, by SFTP (no content ever passes through a shell
 * command line). As root, straight to the path; otherwise into a private temp directory, then
 * `sudo install` to the path.
 */
export async function putFile(remote: Remote, user: string, path: string, content: string, mode: number): Promise<void> {
  if (user === 'root') return remote.upload(path, content, mode)
  const dir = (await execOk(remote, 'mktemp -d /tmp/belt.XXXXXXXX')).stdout.trim()
  const tmp = `${dir}/file`
  try {
    await remote.upload(tmp, content, 0o600)
    await execOk(remote, privileged(`install -o root -g root -m ${mode.toString(8)} ${shQuote(tmp)} ${shQuote(path)}`, user))
  } finally {
    await remote.exec(`rm -rf ${shQuote(dir)}`).catch(() => undefined)
  }
}
