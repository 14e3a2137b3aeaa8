import {oneLine} from '../errors.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import {commandLine} from '../ssh/session.js'
import {exitCodeOf, type SshRemote} from '../ssh/ssh2-remote.js'
import {checkLocalSource, copyToRemote} from '../ssh/transfer.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {HostRun, OutputSink, RunOutput} from '../ui/host-output.js'
import {openHost} from './host-access.js'

export type {HostRun, OutputSink, RunOutput}

/** One connection to a host that runs commands with streamed output. */
export interface HostSession {
  /** Runs a command line; resolves with its exit code (255 when the connection broke). No stdin. */
  run(command: string, out: OutputSink): Promise<number>
  /** Uploads a local file or directory (see copyToRemote). */
  upload(local: string, remotePath: string, o: {recursive?: boolean}): Promise<void>
  close(): Promise<void>
}

/** Opens a session to a recorded host; the default pins its host key (openHost). Tests inject fakes. */
export type OpenSession = (store: Store, r: HostRecord, signal?: AbortSignal) => Promise<HostSession>

/**
 * Runs `command` on an SSH connection with its output streamed to `out`. Standard input is closed at
 * once: with many hosts there is no one stream to forward. A connection that drops settles as 255.
 */
export function streamExec(remote: SshRemote, command: string, out: OutputSink): Promise<number> {
  return new Promise((resolve, reject) => {
    let channelOpen = false
    const lost = () => {
      if (!channelOpen) reject(new Error(`connection to ${remote.hostName} lost`))
    }
    remote.client.once('close', lost)
    remote.client.exec(command, (err, ch) => {
      if (err) {
        remote.client.off('close', lost)
        return reject(err)
      }
      channelOpen = true
      let code: number | undefined
      let signal: string | undefined
      ch.on('data', (d: Buffer) => out.stdout(d))
      ch.stderr.on('data', (d: Buffer) => out.stderr(d))
      ch.on('exit', (c: number | null, s?: string) => {
        if (typeof c === 'number') code = c
        if (s) signal = s
      })
      ch.on('close', () => {
        remote.client.off('close', lost)
        resolve(exitCodeOf(code, signal))
      })
      ch.end()
    })
  })
}

/** The default {@link OpenSession}: Belt's SSH with the pinned host key. */
export const sshSession: OpenSession = async (store, r, signal) => {
  const remote = await openHost(store, r, {signal})
  return {
    run: (command, out) => streamExec(remote, command, out),
    upload: (local, remotePath, o) => copyToRemote(remote, local, remotePath, o),
    close: () => remote.close(),
  }
}

export interface ManyHostsRequest {
  store: Store
  hosts: readonly HostRecord[]
  /** Hosts worked on at once (>= 1). */
  concurrency: number
  /** The run's cancellation: after the first Ctrl-C no other host is started; running ones finish. */
  signal?: AbortSignal
  open?: OpenSession
}

/**
 * `belt exec`: runs one command on every host through a window of `concurrency` connections. The
 * command is the words after `--`: one word is a shell command line as written, several are an argv
 * quoted word by word (the rule of `belt ssh`). A host fails when its command exits non-zero or it
 * cannot be reached; every host is reported, none hides another.
 */
export async function execOnHosts(req: ManyHostsRequest & {command: readonly string[]; output: RunOutput}): Promise<HostRun[]> {
  const line = commandLine(req.command)
  return onHosts(req, async (session, r) => {
    const code = await session.run(line, req.output.sink(r.name))
    return {name: r.name, ok: code === 0, exitCode: code}
  }, req.output)
}

/** `belt scp SRC 'PATTERN:PATH'`: uploads one local file or directory to every host, in a window. */
export async function copyToHosts(req: ManyHostsRequest & {local: string; remotePath: string; recursive?: boolean; output: Pick<RunOutput, 'done'>}): Promise<HostRun[]> {
  await checkLocalSource(req.local, {recursive: req.recursive})
  return onHosts(req, async (session, r) => {
    await session.upload(req.local, req.remotePath, {recursive: req.recursive})
    return {name: r.name, ok: true}
  }, req.output)
}

async function onHosts(req: ManyHostsRequest, fn: (s: HostSession, r: HostRecord) => Promise<HostRun>, output: Pick<RunOutput, 'done'>): Promise<HostRun[]> {
  const open = req.open ?? sshSession
  const settled = await mapSettled(
    req.hosts,
    async (r): Promise<HostRun> => {
      const t0 = Date.now()
      const session = await open(req.store, r, req.signal)
      let run: HostRun
      try {
        run = {...(await fn(session, r)), ms: Date.now() - t0}
      } finally {
        await session.close().catch(() => undefined)
      }
      output.done(run)
      return run
    },
    {concurrency: req.concurrency, signal: req.signal},
  )
  return settled.map((s) => {
    if (s.ok) return s.value
    if (isInterruption(s.error)) return {name: s.item.name, ok: false, interrupted: true}
    const run: HostRun = {name: s.item.name, ok: false, error: oneLine(s.error)}
    output.done(run)
    return run
  })
}
