import type {ClientChannel} from 'ssh2'
import {shJoin} from './quote.js'
import {exitCodeOf, type SshRemote} from './ssh2-remote.js'

export interface SessionOptions {
  /**
   * The command: one argument is a shell command line, passed as written (`belt ssh n1 'ls | wc -l'`,
   * like ssh); several arguments are an argv, quoted so the host runs exactly those words
   * (`belt ssh n1 -- sh -c 'exit 7'`). Undefined: a login shell.
   */
  command?: readonly string[]
  stdin: NodeJS.ReadableStream & {isTTY?: boolean; setRawMode?: (raw: boolean) => unknown}
  stdout: NodeJS.WritableStream & {columns?: number; rows?: number; on?: (ev: string, fn: () => void) => unknown}
  stderr: NodeJS.WritableStream
  /** Allocate a terminal (interactive use). */
  tty: boolean
}

/** The remote command line for {@link SessionOptions.command}. */
export function commandLine(command: readonly string[]): string {
  return command.length === 1 ? command[0]! : shJoin(command)
}

/**
 * Runs an interactive or one-shot session over an open connection and resolves with the remote
 * exit code (128+N for a signal, 255 when the connection broke), as ssh(1) does.
 */
export function runSsh(remote: SshRemote, o: SessionOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const pty = o.tty ? {term: process.env.TERM ?? 'xterm-256color', cols: o.stdout.columns ?? 80, rows: o.stdout.rows ?? 24} : undefined
    const onChannel = (err: Error | undefined, ch: ClientChannel) => {
      if (err) return reject(err)
      let code: number | undefined
      let signal: string | undefined
      const raw = o.tty && o.stdin.isTTY && typeof o.stdin.setRawMode === 'function'
      if (raw) o.stdin.setRawMode!(true)
      const resize = () => ch.setWindow(o.stdout.rows ?? 24, o.stdout.columns ?? 80, 0, 0)
      if (o.tty) process.stdout.on('resize', resize)
      o.stdin.pipe(ch)
      ch.pipe(o.stdout, {end: false})
      ch.stderr.pipe(o.stderr, {end: false})
      ch.on('exit', (c: number | null, s?: string) => {
        if (typeof c === 'number') code = c
        if (s) signal = s
      })
      ch.on('close', () => {
        o.stdin.unpipe(ch)
        if (raw) o.stdin.setRawMode!(false)
        if (o.tty) process.stdout.off('resize', resize)
        // stdin may be a pipe that never ends: stop reading so the process can exit.
        ;(o.stdin as NodeJS.ReadableStream & {pause(): unknown}).pause()
        resolve(exitCodeOf(code, signal))
      })
    }
    if (o.command && o.command.length > 0) remote.client.exec(commandLine(o.command), pty ? {pty} : {}, onChannel)
    else remote.client.shell(pty ?? false, onChannel)
  })
}
