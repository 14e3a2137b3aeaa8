import {createRequire} from 'node:module'
import {constants as osConstants} from 'node:os'
import type {Client as SshClient, ClientChannel, ConnectConfig, SFTPWrapper} from 'ssh2'
import {ExitCode, UserError} from '../errors.js'
import {blobToLine, fingerprintOf} from './keys.js'
import type {ExecOptions, ExecResult, Remote} from './remote.js'

/**
 * ssh2's client class alone: the package's index also loads its server, agents and HTTP agents,
 * about 25 ms of CPU on every command that connects to a host.
 */
const Client = createRequire(import.meta.url)('ssh2/lib/client.js') as typeof SshClient

/** Counters for benchmarks: how many SSH handshakes this process completed. */
export const sshStats = {handshakes: 0, connectAttempts: 0}

export interface SshConnectOptions {
  host: string
  port: number
  username: string
  /** OpenSSH private key (the cluster key). */
  privateKey: string
  /** Belt's name for the host, for messages. */
  hostName: string
  /**
   * Pinned host keys (`type base64`). When non-empty the host must present one of them, or the
   * connection is refused with E_HOST_KEY_CHANGED. When empty, the first key seen is accepted and
   * handed to `onFirstContact` to be pinned (trust on first use, like ssh's accept-new).
   */
  knownHostKeys: readonly string[]
  onFirstContact?: (key: string) => Promise<void>
  /** Handshake bound (default 20 s). */
  readyTimeoutMs?: number
  signal?: AbortSignal
  /**
   * A jump host (ssh's ProxyJump): Belt connects to it first, with its own pinned keys, and reaches
   * `host:port` through a channel it forwards; the jump connection closes with this one.
   */
  via?: SshConnectOptions
  /** The operator's key file, when it is not the cluster key: named when the host refuses it. */
  keyFile?: string
}

/** The host-key algorithms a client may accept for a pinned key type. */
function algorithmsFor(types: readonly string[]): string[] {
  const out: string[] = []
  for (const t of types) {
    if (t === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa')
    else out.push(t)
  }
  return [...new Set(out)]
}

const normalizeKey = (line: string): string => line.trim().split(/\s+/).slice(0, 2).join(' ')

/** A live SSH connection: commands as channels, files over one lazily opened SFTP session. */
export class SshRemote implements Remote {
  private sftpSession?: Promise<SFTPWrapper>
  private closed = false
  /**
   * Rejects when the connection goes away. Every operation races it: ssh2 does not always call
   * back a pending SFTP request (a close of a handle, say) once its session died, and a promise
   * that never settles, with no socket left, ended belt with Node's exit 13 mid-batch.
   */
  private readonly lost: Promise<never>

  constructor(
    readonly client: InstanceType<typeof Client>,
    readonly hostName: string,
  ) {
    this.lost = new Promise<never>((_, reject) => {
      client.on('close', () => {
        this.closed = true
        reject(new Error(`Connection lost to ${hostName}`))
      })
    })
    this.lost.catch(() => undefined)
  }

  /** `p`, or a rejection as soon as the connection is gone. */
  private guard<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost])
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.guard(
      new Promise((resolve, reject) => {
        this.client.exec(command, (err, ch) => {
          if (err) return reject(err)
          collect(ch, opts).then(resolve, reject)
        })
      }),
    )
  }

  /** The connection's SFTP session, opened on first use. */
  sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= this.guard(new Promise((resolve, reject) => this.client.sftp((err, s) => (err ? reject(err) : resolve(s)))))
    return this.sftpSession
  }

  async upload(path: string, content: string | Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp()
    const data = typeof content === 'string' ? Buffer.from(content) : content
    const handle = await this.guard(new Promise<Buffer>((res, rej) => sftp.open(path, 'w', {mode}, (e, h) => (e ? rej(sftpError(e, path)) : res(h)))))
    try {
      // The mode first, then the bytes: an existing file with a wider mode never holds the new
      // content (a private key) while still readable by others; open's mode obeys the umask.
      await this.guard(new Promise<void>((res, rej) => sftp.fchmod(handle, mode, (e) => (e ? rej(sftpError(e, path)) : res()))))
      let off = 0
      while (off < data.length) {
        const n = Math.min(32 * 1024, data.length - off)
        await this.guard(new Promise<void>((res, rej) => sftp.write(handle, data, off, n, off, (e) => (e ? rej(sftpError(e, path)) : res()))))
        off += n
      }
    } finally {
      await this.guard(new Promise<void>((res) => sftp.close(handle, () => res()))).catch(() => undefined)
    }
  }

  async download(path: string): Promise<Buffer> {
    const sftp = await this.sftp()
    return this.guard(new Promise((resolve, reject) => sftp.readFile(path, (e: unknown, b: Buffer) => (e ? reject(sftpError(e, path)) : resolve(b)))))
  }

  async close(): Promise<void> {
    if (this.closed) return
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000)
      this.client.once('close', () => {
        clearTimeout(t)
        resolve()
      })
      this.client.end()
    })
    this.closed = true
  }
}

/** SFTP errors carry numeric codes; map "no such file" to ENOENT like fs does. */
function sftpError(e: unknown, path: string): Error {
  const err = e instanceof Error ? e : new Error(String(e))
  if ((err as {code?: unknown}).code === 2) Object.assign(err, {code: 'ENOENT', message: `${path}: no such file`})
  return err
}

/** Reads a channel to its end: exit status, stdout and stderr. */
function collect(ch: ClientChannel, opts: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let code: number | undefined
    let signal: string | undefined
    let timer: NodeJS.Timeout | undefined
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        ch.close()
        reject(new Error(`remote command timed out after ${Math.round(opts.timeoutMs! / 1000)} s`))
      }, opts.timeoutMs)
    }
    ch.on('data', (d: Buffer) => out.push(d))
    ch.stderr.on('data', (d: Buffer) => err.push(d))
    ch.on('exit', (c: number | null, s?: string) => {
      if (typeof c === 'number') code = c
      if (s) signal = s
    })
    ch.on('close', () => {
      if (timer) clearTimeout(timer)
      resolve({code: exitCodeOf(code, signal), signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
    })
    if (opts.stdin !== undefined) ch.end(opts.stdin)
    else ch.end()
  })
}

/** A shell-style exit code: the status, 128+N for signal N, 255 when nothing came back. */
export function exitCodeOf(code: number | undefined, signal?: string): number {
  if (code !== undefined) return code
  if (signal) {
    const n = (osConstants.signals as Record<string, number>)[`SIG${signal}`] ?? (osConstants.signals as Record<string, number>)[signal]
    return 128 + (n ?? 0)
  }
  return 255
}

/** Errors worth another attempt while a host boots: nothing listens yet, or it is still starting. */
export function isTransientSshError(e: unknown): boolean {
  if (e instanceof UserError) return e.code === 'E_SSH_AUTH' // keys may land after sshd starts (cloud-init)
  const code = (e as {code?: string}).code
  const level = (e as {level?: string}).level
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(code)) return true
  const msg = e instanceof Error ? e.message : String(e)
  return level === 'client-timeout' || /Timed out while waiting for handshake|Connection lost before handshake|handshake/i.test(msg)
}

/**
 * Opens one SSH connection with the host key checked against the pinned keys. Rejects with a
 * UserError for a changed host key (never retried) or refused credentials. With `via`, the
 * connection goes through the jump host (its key checked the same way).
 */
export async function connect(o: SshConnectOptions): Promise<SshRemote> {
  if (!o.via) return connectOne(o)
  const jump = await connectOne({...o.via, signal: o.signal})
  try {
    const sock = await new Promise<ClientChannel>((resolve, reject) =>
      jump.client.forwardOut('127.0.0.1', 0, o.host, o.port, (err, ch) => {
        if (!err) return resolve(ch)
        // The jump host could not open the TCP connection: for retries, the same as a refusal here.
        reject(Object.assign(new Error(`${o.via!.hostName} (${o.via!.host}) could not reach ${o.host}:${o.port}: ${err.message}`), {code: 'ECONNREFUSED'}))
      }),
    )
    const remote = await connectOne(o, sock)
    remote.client.once('close', () => void jump.close())
    return remote
  } catch (e) {
    await jump.close()
    throw e
  }
}

function connectOne(o: SshConnectOptions, sock?: ClientChannel): Promise<SshRemote> {
  sshStats.connectAttempts++
  const known = o.knownHostKeys.map(normalizeKey)
  const knownTypes = [...new Set(known.map((k) => k.split(' ')[0]!))]
  let presented: string | undefined
  let mismatch = false
  return new Promise((resolve, reject) => {
    const client = new Client()
    let settled = false
    const fail = (e: unknown) => {
      if (settled) return
      settled = true
      client.end()
      reject(e)
    }
    const onAbort = () => fail(o.signal?.reason ?? new Error('aborted'))
    o.signal?.addEventListener('abort', onAbort, {once: true})
    client.once('handshake', () => sshStats.handshakes++)
    client.once('ready', async () => {
      o.signal?.removeEventListener('abort', onAbort)
      try {
        if (known.length === 0 && presented && o.onFirstContact) await o.onFirstContact(presented)
      } catch (e) {
        return fail(e)
      }
      if (settled) return
      settled = true
      resolve(new SshRemote(client, o.hostName))
    })
    client.on('error', (e: Error & {level?: string}) => {
      o.signal?.removeEventListener('abort', onAbort)
      if (mismatch) {
        return fail(
          new UserError(
            `the SSH host key of ${o.hostName} (${o.host}) has changed: it presented ${fingerprintOf(presented!)}, and belt pinned ${known.map((k) => fingerprintOf(k)).join(', ')}; the connection was refused`,
            {
              code: 'E_HOST_KEY_CHANGED',
              exit: ExitCode.environment,
              hint: `if you know the host was rebuilt, accept the new key with: belt ssh-keys reset ${o.hostName}`,
            },
          ),
        )
      }
      if (e.level === 'client-authentication')
        return fail(
          new UserError(`${o.hostName} (${o.host}) refused ${o.keyFile ? `the SSH key ${o.keyFile}` : "belt's SSH key"} for user ${o.username}`, {
            code: 'E_SSH_AUTH',
            exit: ExitCode.environment,
            hint: o.keyFile ? `put ${o.keyFile}.pub in ${o.username}'s authorized_keys on the host` : 'check that the cluster key is in the host\'s authorized_keys',
            cause: e,
          }),
        )
      fail(e)
    })
    client.on('close', () => fail(new Error(`the SSH connection to ${o.hostName} (${o.host}:${o.port}) closed before it was ready`)))
    const config: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.username,
      privateKey: o.privateKey,
      readyTimeout: o.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      ...(sock ? {sock: sock as unknown as ConnectConfig['sock']} : {}),
      hostVerifier: (key: Buffer) => {
        presented = blobToLine(key)
        if (known.length === 0) return true
        if (known.includes(presented)) return true
        mismatch = true
        return false
      },
    }
    // With pinned keys, ask only for the key types we know, so the host presents a pinned one.
    if (knownTypes.length > 0) config.algorithms = {serverHostKey: algorithmsFor(knownTypes) as never}
    client.connect(config)
  })
}

/**
 * How long an sshd that answers may refuse the key before Belt gives up on the user: cloud-init
 * writes the login user's authorized_keys before sshd starts on Ubuntu and Debian cloud images, so
 * a refusal that lasts this long is the wrong user (or key), not a host still booting.
 */
export const KEY_REFUSED_WINDOW_MS = 30_000

export interface WaitForSshOptions {
  timeoutMs: number
  signal?: AbortSignal
  /** Give up this long after the first refusal of the key by a running sshd (default {@link KEY_REFUSED_WINDOW_MS}). */
  keyRefusedWindowMs?: number
  /** The flag that sets the login user (e.g. `--amazonec2-ssh-user`), named when the key is refused. */
  userFlag?: string
}

/**
 * One line for a key the host kept refusing: the user tried and, when there is one, the flag to
 * change it (a host keeps the login user it was created with: it must be created again).
 */
export function keyRefusedMessage(hostName: string, host: string, user: string, seconds: number, userFlag?: string): string {
  const why = `${hostName} (${host}) refused belt's SSH key for user ${user} for ${seconds} s after its sshd came up`
  return userFlag
    ? `${why}: if the image logs in as another user, create it again with ${userFlag} USER (belt rm ${hostName} first)`
    : `${why}: check that the cluster key is in ${user}'s authorized_keys`
}

/**
 * Connects, retrying with exponential backoff and jitter while the host is still coming up (port
 * closed, handshake cut), until `timeoutMs`. A changed host key is never retried; a key that a
 * running sshd keeps refusing fails after `keyRefusedWindowMs`, naming the user and `userFlag`.
 */
export async function waitForSsh(o: SshConnectOptions, w: WaitForSshOptions): Promise<SshRemote> {
  const deadline = Date.now() + w.timeoutMs
  const window = w.keyRefusedWindowMs ?? KEY_REFUSED_WINDOW_MS
  let delay = 250
  let last: unknown
  let refusedSince: number | undefined
  for (;;) {
    if (w.signal?.aborted) throw w.signal.reason ?? new Error('aborted')
    try {
      return await connect({...o, readyTimeoutMs: Math.max(2000, Math.min(o.readyTimeoutMs ?? 20_000, deadline - Date.now()))})
    } catch (e) {
      if (!isTransientSshError(e)) throw e
      last = e
      if (e instanceof UserError && e.code === 'E_SSH_AUTH') {
        refusedSince ??= Date.now()
        if (Date.now() - refusedSince >= window)
          throw new UserError(keyRefusedMessage(o.hostName, o.host, o.username, Math.round((Date.now() - refusedSince) / 1000), w.userFlag), {
            code: 'E_SSH_AUTH',
            exit: ExitCode.environment,
            cause: e,
          })
      }
    }
    if (Date.now() + delay > deadline) {
      const why = last instanceof Error ? last.message : String(last)
      throw new UserError(`${o.hostName} (${o.host}:${o.port}) did not answer SSH within ${Math.round(w.timeoutMs / 1000)} s (last error: ${why})`, {
        code: 'E_SSH_TIMEOUT',
        exit: ExitCode.environment,
        cause: last,
      })
    }
    await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())))
    delay = Math.min(delay * 2, 4000)
  }
}

