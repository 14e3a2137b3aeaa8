import {InterruptedBatch, PartialFailure} from '../errors.js'
import {summarizeNames} from '../names.js'
import {seconds} from './reporter.js'
import {renderTable} from './table.js'

/** Where one host's output goes, chunk by chunk, as it arrives. */
export interface OutputSink {
  stdout(chunk: Buffer): void
  stderr(chunk: Buffer): void
}

/** What `belt exec` and `belt scp` to a pattern report of one host. */
export interface HostRun {
  name: string
  /** The command exited 0 (exec), or the copy completed (scp). */
  ok: boolean
  /** The remote command's exit status (128+N for a signal, 255 when none came back). */
  exitCode?: number
  /** Why the host failed before or instead of an exit status (unreachable, changed host key, ...). */
  error?: string
  /** Never started because the operator pressed Ctrl-C: not a failure. */
  interrupted?: boolean
  ms?: number
}

/** Receives each host's output and its end; rendered by the functions below. */
export interface RunOutput {
  /** The sink for a host's output; called once, when its command starts. */
  sink(name: string): OutputSink
  /** The host is done (after its last chunk). */
  done(run: HostRun): void
}

interface Streams {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

/** Splits chunks into whole lines; a partial line waits for its end (or for `flush`). */
class LineSplitter {
  private rest = ''
  private readonly decoder = new TextDecoder('utf-8')
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: Buffer): void {
    const text = this.rest + this.decoder.decode(chunk, {stream: true})
    const lines = text.split('\n')
    this.rest = lines.pop()!
    for (const l of lines) this.emit(l.endsWith('\r') ? l.slice(0, -1) : l)
  }
  flush(): void {
    const text = this.rest + this.decoder.decode()
    this.rest = ''
    if (text !== '') this.emit(text)
  }
}

/**
 * `belt exec` default output: every line as it arrives, prefixed `NAME | ` (names padded to one
 * width, like `docker compose logs`); the remote stdout goes to stdout, its stderr to stderr. A host
 * that fails before its command ran gets one line on stderr. A line is never cut by another host's.
 */
export function prefixedOutput(names: readonly string[], io: Streams = process): RunOutput {
  const width = Math.max(0, ...names.map((n) => n.length))
  const open = new Map<string, LineSplitter[]>()
  const prefix = (name: string) => `${name.padEnd(width)} | `
  return {
    sink(name): OutputSink {
      const out = new LineSplitter((l) => io.stdout.write(prefix(name) + l + '\n'))
      const err = new LineSplitter((l) => io.stderr.write(prefix(name) + l + '\n'))
      open.set(name, [out, err])
      return {stdout: (c) => out.push(c), stderr: (c) => err.push(c)}
    },
    done(run) {
      for (const s of open.get(run.name) ?? []) s.flush()
      open.delete(run.name)
      if (run.error) io.stderr.write(`${prefix(run.name)}belt: ${run.error}\n`)
    },
  }
}

/** Each host's output kept in memory until it ends. */
function heldOutput(): {held: Map<string, {out: Buffer[]; err: Buffer[]}>; sink(name: string): OutputSink} {
  const held = new Map<string, {out: Buffer[]; err: Buffer[]}>()
  return {
    held,
    sink(name) {
      const h = {out: [] as Buffer[], err: [] as Buffer[]}
      held.set(name, h)
      return {stdout: (c) => h.out.push(c), stderr: (c) => h.err.push(c)}
    },
  }
}

/**
 * `belt exec --group`: each host's whole output in one block when it ends, headed
 * `==> NAME (exit N) <==`; its stdout on stdout, its stderr on stderr right after.
 */
export function groupedOutput(io: Streams = process): RunOutput {
  const {held, sink} = heldOutput()
  return {
    sink,
    done(run) {
      const h = held.get(run.name) ?? {out: [], err: []}
      held.delete(run.name)
      io.stdout.write(`==> ${run.name} (${runStatus(run)}) <==\n`)
      const out = Buffer.concat(h.out).toString('utf8')
      const err = Buffer.concat(h.err).toString('utf8')
      if (out) io.stdout.write(out.endsWith('\n') ? out : out + '\n')
      if (err) io.stderr.write(err.endsWith('\n') ? err : err + '\n')
    },
  }
}

/** `--json`: output kept per host (as text) for the result; nothing printed while running. */
export function collectedOutput(): RunOutput & {result(runs: readonly HostRun[]): (HostRun & {stdout: string; stderr: string})[]} {
  const {held, sink} = heldOutput()
  return {
    sink,
    done() {},
    result: (runs) =>
      runs.map((r) => {
        const h = held.get(r.name)
        return {...r, stdout: h ? Buffer.concat(h.out).toString('utf8') : '', stderr: h ? Buffer.concat(h.err).toString('utf8') : ''}
      }),
  }
}

/** `exit 0`, `failed: <reason>`, `not started`. */
function runStatus(r: HostRun): string {
  if (r.interrupted) return 'not started'
  if (r.error) return `failed: ${r.error}`
  return r.exitCode === undefined ? 'done' : `exit ${r.exitCode}`
}

/**
 * The summary of a run over many hosts on stderr: the failed hosts in a table (NAME, EXIT, ERROR),
 * then one line counting hosts per exit code. Ends in a PartialFailure (exit 4) naming the failed
 * hosts with the command that retries only those. Returns the runs (for --json).
 */
export function finishHostRuns<T extends HostRun>(runs: readonly T[], opts: {verb: string; startedAt: number; retry: (failed: string[]) => string; out?: NodeJS.WritableStream}): T[] {
  const out = opts.out ?? process.stderr
  const failed = runs.filter((r) => !r.ok)
  if (failed.length > 0) out.write(renderTable(['NAME', 'EXIT', 'ERROR'], failed.map((r) => [r.name, r.exitCode === undefined ? '-' : String(r.exitCode), r.error ?? ''])))
  out.write(`${opts.verb} ${runs.length} host${runs.length === 1 ? '' : 's'} in ${seconds(Date.now() - opts.startedAt)}: ${exitSummary(runs)}.\n`)
  if (failed.length > 0) {
    const names = failed.map((r) => r.name)
    throw new PartialFailure(`${failed.length} of ${runs.length} host${runs.length === 1 ? '' : 's'} failed: ${summarizeNames(names)}`, [...runs], opts.retry(names))
  }
  return [...runs]
}

/** `2 exit 0 (node1, node2), 1 exit 3 (node3), 1 unreachable (node4)`; `3 ok` when there are no codes. */
export function exitSummary(runs: readonly HostRun[]): string {
  const groups = new Map<string, string[]>()
  const add = (key: string, name: string) => groups.set(key, [...(groups.get(key) ?? []), name])
  for (const r of runs) {
    if (r.interrupted) add('not started', r.name)
    else if (r.exitCode !== undefined) add(`exit ${r.exitCode}`, r.name)
    else if (r.error) add('failed', r.name)
    else add('ok', r.name)
  }
  const order = (k: string) => (k === 'ok' || k === 'exit 0' ? -1 : k.startsWith('exit ') ? Number(k.slice(5)) : 1000 + k.length)
  return [...groups]
    .sort(([a], [b]) => order(a) - order(b))
    .map(([k, names]) => `${names.length} ${k} (${summarizeNames(names, 3)})`)
    .join(', ')
}

/**
 * After Ctrl-C: where each host stands (ran / failed / not started), and an InterruptedBatch (exit
 * 130) with the command that runs on the hosts never started.
 */
export function interruptedHostRuns<T extends HostRun>(runs: readonly T[], resume: string, startedAt: number, out: NodeJS.WritableStream = process.stderr): InterruptedBatch<T[]> {
  const groups = new Map<string, string[]>()
  for (const r of runs) groups.set(runStatus(r), [...(groups.get(runStatus(r)) ?? []), r.name])
  out.write(renderTable(['HOSTS', 'WHERE THEY STAND'], [...groups].map(([where, names]) => [`${summarizeNames(names)} (${names.length})`, where])))
  const notStarted = runs.filter((r) => r.interrupted).length
  return new InterruptedBatch(`${runs.length - notStarted} of ${runs.length} host${runs.length === 1 ? '' : 's'} ran after ${seconds(Date.now() - startedAt)}, ${notStarted} not started`, [...runs], resume)
}
