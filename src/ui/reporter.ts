/**
 * Where services report progress. Humans read it on stderr; programs read stdout/--json, which a
 * reporter never touches. Every host line is prefixed with the host's name.
 */
export interface Reporter {
  host(name: string, message: string): void
  info(message: string): void
  warn(message: string): void
  /**
   * Optional: a host entered, finished or failed a batch phase. A live view counts these; plain
   * line output needs nothing more than the host lines.
   */
  phase?(name: string, phase: BatchPhase, event: 'start' | 'done' | 'fail', detail?: string): void
}

/** The phases of a batch, in order. */
export type BatchPhase = 'create' | 'bootstrap' | 'join'

/** Plain lines on a stream (stderr by default): `node3: created at 10.213.1.3 (1.2 s)`. */
export class LineReporter implements Reporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}
  host(name: string, message: string): void {
    this.out.write(`${name}: ${message}\n`)
  }
  info(message: string): void {
    this.out.write(message + '\n')
  }
  warn(message: string): void {
    this.out.write(`Warning: ${message}\n`)
  }
}

/** Discards everything: for --quiet and for tests. */
export const silentReporter: Reporter = {host() {}, info() {}, warn() {}}

/** `1.23 s` */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
