/**
 * Two error families, after Shopify's CLI:
 *  - {@link UserError}: the operator can fix it. One line naming the problem, an optional next step,
 *    a stable code and an exit code. Rendered without a stack.
 *  - anything else is a bug: rendered with its stack and a request to report it.
 */

/** Exit codes, also listed in the README. */
export const ExitCode = {
  ok: 0,
  /** An unexpected error: a bug in Belt. */
  bug: 1,
  /** Bad flags, arguments or names. Nothing was changed. */
  usage: 2,
  /** A named host, record or resource does not exist. */
  notFound: 3,
  /** A batch finished but some hosts failed; the others succeeded and are recorded. */
  partial: 4,
  /** The environment is not fit: missing privileges, binaries, credentials, a corrupted record. */
  environment: 5,
  /** Interrupted by the operator (SIGINT). */
  interrupted: 130,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface UserErrorOptions {
  /** Stable machine-readable code, e.g. `E_NAME_INVALID`. */
  code: string
  /** What to do next, one short sentence (printed after the message). */
  hint?: string
  exit?: ExitCodeValue
  cause?: unknown
}

/** An error the operator can fix. The message is one line and names the problem. */
export class UserError extends Error {
  readonly code: string
  readonly hint?: string
  readonly exit: ExitCodeValue
  constructor(message: string, opts: UserErrorOptions) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'UserError'
    this.code = opts.code
    this.hint = opts.hint
    this.exit = opts.exit ?? ExitCode.usage
  }
}

export const usageError = (message: string, code: string, hint?: string): UserError =>
  new UserError(message, {code, hint, exit: ExitCode.usage})

export const notFoundError = (message: string, code: string, hint?: string): UserError =>
  new UserError(message, {code, hint, exit: ExitCode.notFound})

export const environmentError = (message: string, code: string, hint?: string, cause?: unknown): UserError =>
  new UserError(message, {code, hint, exit: ExitCode.environment, cause})

/** Thrown by a batch that completed with some failures; carries the result for rendering. */
export class PartialFailure<T = unknown> extends Error {
  readonly exit = ExitCode.partial
  constructor(
    message: string,
    readonly result: T,
    readonly retryCommand?: string,
  ) {
    super(message)
    this.name = 'PartialFailure'
  }
}

/**
 * Thrown by a batch that stopped early because the operator pressed Ctrl-C (or sent SIGTERM): the
 * work in flight returned and was recorded; `result` says where each host is. Exit 130.
 */
export class InterruptedBatch<T = unknown> extends Error {
  readonly exit = ExitCode.interrupted
  constructor(
    message: string,
    readonly result: T,
    readonly resumeCommand?: string,
  ) {
    super(message)
    this.name = 'InterruptedBatch'
  }
}

export const isUserError = (e: unknown): e is UserError => e instanceof UserError

/** A short, single-line description of any error, for per-host failure columns. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e)
  return msg.split('\n').map((s) => s.trim()).filter(Boolean).join(' ').slice(0, 300)
}

/** What BaseCommand.catch (and the start-up fast path) prints for an error: exit code, stderr line, `--json` body. */
export interface ErrorOutput {
  code: number
  line: string
  body: Record<string, unknown>
}

/** A UserError: its one line with the hint as the next sentence, and its exit code. */
export function userErrorOutput(err: UserError): ErrorOutput {
  return {
    code: err.exit,
    line: err.hint ? `Error: ${err.message}. ${err.hint.charAt(0).toUpperCase()}${err.hint.slice(1)}.` : `Error: ${err.message}.`,
    body: {code: err.code, message: err.message, hint: err.hint},
  }
}

/** Anything that is not a UserError or another known family: a bug, with its stack. */
export function bugOutput(err: Error): ErrorOutput {
  return {
    code: ExitCode.bug,
    line: `Error: ${err.message}\n${err.stack ?? ''}\nThis is a bug in belt: please report it with the command you ran.`,
    body: {code: 'E_BUG', message: err.message},
  }
}
