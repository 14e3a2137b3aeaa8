/**
 * The remote side of a host, as the bootstrapper and the commands see it: run a command, move a
 * file, close. One implementation speaks SSH (ssh2-remote.ts); unit tests use fakes that fail on
 * unexpected calls. After k3sup's two-method interface.
 */

export interface ExecResult {
  /** The remote command's exit status; 128+N when it died of signal N; 255 when none came back. */
  code: number
  signal?: string
  stdout: string
  stderr: string
}

export interface ExecOptions {
  /** Kill the channel and reject after this long (default: no limit). */
  timeoutMs?: number
  /** Written to the command's standard input, then closed (how secrets travel: never argv). */
  stdin?: string | Buffer
}

export interface Remote {
  /** Runs `command` through the login user's shell on a channel of the existing connection. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>
  /** Writes `content` to `path` over SFTP with exactly `mode` (not left to the remote umask). */
  upload(path: string, content: string | Buffer, mode: number): Promise<void>
  /** Reads a whole remote file over SFTP. Rejects with code ENOENT when it does not exist. */
  download(path: string): Promise<Buffer>
  /** Closes the connection. Idempotent. */
  close(): Promise<void>
}

/** A remote command that exited non-zero: carries the command's name (never its secrets) and output. */
export class RemoteCommandError extends Error {
  constructor(
    readonly what: string,
    readonly result: ExecResult,
  ) {
    const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' ').slice(0, 400)
    super(`${what} exited ${result.code}${tail ? `: ${tail}` : ''}`)
    this.name = 'RemoteCommandError'
  }
}

/**
 * The user a host asks for instead, when it lets a user in only to refuse it the way cloud-init's
 * disable_root does on Ubuntu images: the key is accepted, and every command prints `Please login
 * as the user "ubuntu" rather than the user "root".` and exits 142. Undefined otherwise.
 */
export function redirectedLogin(result: ExecResult): string | undefined {
  if (result.code === 0) return undefined
  return /Please login as the user "([^"\s]+)" rather than the user "[^"]*"/.exec(result.stdout + result.stderr)?.[1]
}

/** Runs `command` and rejects with a {@link RemoteCommandError} unless it exits 0. */
export async function execOk(remote: Remote, command: string, opts: ExecOptions & {what?: string} = {}): Promise<ExecResult> {
  const r = await remote.exec(command, opts)
  if (r.code !== 0) throw new RemoteCommandError(opts.what ?? firstWords(command), r)
  return r
}

/** The first words of a command, for error messages: enough to recognise it, short of any payload. */
function firstWords(command: string): string {
  const s = command.replace(/\s+/g, ' ').trim()
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}
