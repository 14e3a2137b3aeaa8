import type {Machine} from '../../drivers/driver.js'
import {ExitCode, UserError} from '../errors.js'
import type {Remote} from '../ssh/remote.js'
import {RemoteCommandError, execOk, redirectedLogin} from '../ssh/remote.js'
import {
  DOCKER_TLS_PORT,
  ENGINE_PATHS,
  cloudInitWaitCommand,
  configureCommand,
  stdinFile,
  writeFilesCommand,
  daemonJson,
  dropIn,
  installEngineCommand,
  installScript,
  parseProbe,
  privileged,
  probeCommand,
  readFileCommand,
  type EngineConfig,
  type Probe,
  KERNEL_PROFILES,
  applyKernelProfileCommand,
  kernelProfileFile,
  kernelProfilePath,
  parseKernelProfileApply,
  type KernelProfile,
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
  /** The flag that sets the login user (e.g. `--amazonec2-ssh-user`), named when the host refuses the user. */
  userFlag?: string
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

/**
 * Turns a reachable Linux host into a Docker engine with mutual TLS on :2376. Every step is
 * idempotent: files are compared by hash and only changed ones are written; the engine restarts only
 * when its configuration changed or it is not running. Resolves once the engine answers over TLS
 * with the client certificate; rejects with the failing step otherwise.
 *
 * The login user may be root or any user with passwordless sudo (Ubuntu's `ubuntu` on EC2): then
 * every privileged step runs through `sudo -n`, and files go by SFTP into a private staging
 * directory and are moved into place by `sudo install` with their modes.
 */
export async function bootstrapHost(input: BootstrapInput): Promise<BootstrapResult> {
  const {remote, machine, log} = input
  const user = machine.ssh.user
  const run = (cmd: string, timeoutMs?: number) => execOk(remote, privileged(cmd, user), {timeoutMs})

  let probe: Probe = parseProbe((await firstCommand(input, privileged(probeCommand(), user))).stdout)
  if (probe.cloudInit) {
    log('waiting for cloud-init to finish')
    await run(cloudInitWaitCommand, input.timeouts?.cloudInitMs ?? 600_000)
  }

  let installed = false
  if (!probe.dockerd) {
    log(`installing the Docker engine on ${probe.os.prettyName ?? probe.os.id}`)
    const script = installScript(probe.os, input.engine, {debian: input.templates.installDebian, script: input.templates.installScript})
    // The script goes on stdin into a private directory that the command makes and removes.
    await execOk(remote, privileged(installEngineCommand, user), {stdin: script, timeoutMs: input.timeouts?.installMs ?? 900_000, what: 'the engine install'})
    probe = parseProbe((await run(probeCommand())).stdout)
    if (!probe.dockerd) throw new Error('the engine install finished but dockerd is still not on the PATH')
    installed = true
  }

  // Server certificate: keep the one on the host when it is still right, so a re-run restarts nothing.
  const currentCert = probe.sums.has(ENGINE_PATHS.cert) ? await readHostFile(remote, user, ENGINE_PATHS.cert) : undefined
  const keep = !input.forceRestart && probe.sums.has(ENGINE_PATHS.key) && input.keepServerCert(currentCert)
  const server = keep ? undefined : await input.issueServerCert()

  const files: {path: string; content: string; mode: number}[] = [
    {path: ENGINE_PATHS.ca, content: input.caPem, mode: 0o644},
    {path: ENGINE_PATHS.daemonJson, content: daemonJson(input.engine, input.driver, input.daemonExtra), mode: 0o644},
    {path: ENGINE_PATHS.dropIn, content: dropIn(probe.dockerd, input.templates.dropIn, input.engine.env), mode: 0o644},
  ]
  if (server) files.push({path: ENGINE_PATHS.cert, content: server.certPem, mode: 0o644}, {path: ENGINE_PATHS.key, content: server.keyPem, mode: 0o600})
  // Each file's size and SHA-256, once: compared with the probe's sums, and checked again on the host.
  const changing = files.map((f) => ({...f, sent: stdinFile(f)})).filter((f) => probe.sums.get(f.path) !== f.sent.sha256)
  // The opt-in kernel profile: a sysctl.d file (applied again at every boot) and the settings now; no engine restart.
  const profile = input.engine.kernelProfile
  if (profile && Object.hasOwn(KERNEL_PROFILES, profile)) {
    const p = profile as KernelProfile
    const file = {path: kernelProfilePath(p), content: kernelProfileFile(p), mode: 0o644}
    const r = await execOk(remote, privileged(`mkdir -p /etc/sysctl.d && ${writeFilesCommand([stdinFile(file)])} && ${applyKernelProfileCommand(p)}`, user), {
      stdin: file.content,
      what: `the kernel profile ${p}`,
    })
    const {applied, skipped} = parseKernelProfileApply(r.stdout)
    log(`kernel profile ${p}: ${applied.length} of ${applied.length + skipped.length} settings applied${skipped.length ? ` (not settable on this host: ${skipped.join(', ')})` : ''}`)
  }
  const changed: string[] = changing.map((f) => f.path)
  const resetId = input.resetEngineId && probe.keyJson
  if (resetId) changed.push(ENGINE_PATHS.keyJson)
  const restart = changed.length > 0 || !probe.active || Boolean(input.forceRestart)
  if (restart) log(probe.active ? 'restarting the engine' : 'starting the engine')
  // One command for the rest (each step a channel's worth of round trips less): the host name, the
  // files that changed (their bytes on stdin, so no content is ever on a command line), the engine
  // ID reset, and the restart.
  await execOk(remote, privileged(configureCommand({name: input.name, files: changing.map((f) => f.sent), resetEngineId: resetId, restart}), user), {
    stdin: changing.map((f) => f.content).join(''),
    timeoutMs: 120_000,
    what: restart ? 'the engine configuration and restart' : 'the engine configuration',
  })
  const engine = await waitForEngine(machine.address, DOCKER_TLS_PORT, input.clientTls, input.timeouts?.engineMs ?? 90_000, input.signal)
  return {engine, url: `tcp://${machine.address}:${DOCKER_TLS_PORT}`, installed, restarted: restart, certRenewed: Boolean(server), serverCertPem: server?.certPem ?? currentCert, changed}
}

/**
 * Runs the first command of a bootstrap, and turns a host that lets the user in only to refuse it
 * (cloud-init's "Please login as the user ..." for root on Ubuntu images) into one line that names
 * the user to log in as and the flag that sets it.
 */
async function firstCommand(input: BootstrapInput, command: string) {
  const r = await input.remote.exec(command)
  if (r.code === 0) return r
  const wanted = redirectedLogin(r)
  if (wanted) {
    const m = input.machine
    throw new UserError(
      `${input.name} (${m.address}) refuses logins as ${m.ssh.user} and asks for user ${wanted}: ${input.userFlag ? `create it again with ${input.userFlag} ${wanted} (belt rm ${input.name} first)` : `log in as ${wanted}`}`,
      {code: 'E_SSH_WRONG_USER', exit: ExitCode.environment},
    )
  }
  if (input.machine.ssh.user !== 'root' && /sudo: a (password|terminal) is required/.test(r.stderr))
    throw new UserError(`${input.name} (${input.machine.address}): user ${input.machine.ssh.user} has no passwordless sudo, which belt needs to set up the engine`, {
      code: 'E_SUDO_PASSWORD',
      exit: ExitCode.environment,
    })
  throw new RemoteCommandError('the host probe', r)
}

/** A file on the host as text, or undefined when it cannot be read; through sudo when not root. */
async function readHostFile(remote: Remote, user: string, path: string): Promise<string | undefined> {
  if (user === 'root') return (await remote.download(path).catch(() => undefined))?.toString('utf8')
  const r = await remote.exec(privileged(readFileCommand(path), user))
  return r.code === 0 ? r.stdout : undefined
}
