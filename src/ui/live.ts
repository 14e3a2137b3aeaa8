import {summarizeNames} from '../names.js'
import type {BatchPhase, Reporter} from './reporter.js'
import {LineReporter} from './reporter.js'

/** What the live view knows of one phase. */
export interface PhaseCounts {
  /** Hosts in the phase now, with the time each entered it. */
  running: Map<string, number>
  done: number
  failed: string[]
  /** Hosts stopped by the operator's Ctrl-C in this phase (not failures). */
  interrupted?: number
  /** Hosts expected to pass through the phase, when known. */
  total?: number
}

/** A host running this long in a phase is named as slow. */
export const SLOW_MS = 30_000

const LABEL: Record<BatchPhase, string> = {create: 'Create', bootstrap: 'Bootstrap', join: 'Join swarm'}

/**
 * One line per phase, readable at 300 hosts: counts, then the failed hosts and the slowest ones by
 * name (never one line per host). Pure, for tests.
 */
export function phaseTitle(phase: BatchPhase, c: PhaseCounts, now: number): string {
  const parts = [`${c.done}${c.total !== undefined ? `/${c.total}` : ''} done`]
  if (c.running.size > 0) parts.push(`${c.running.size} running`)
  if (c.failed.length > 0) parts.push(`${c.failed.length} failed (${summarizeNames(c.failed, 3)})`)
  if (c.interrupted) parts.push(`${c.interrupted} interrupted`)
  const slow = [...c.running]
    .map(([name, since]) => [name, now - since] as const)
    .filter(([, ms]) => ms >= SLOW_MS)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
  if (slow.length > 0) parts.push(`slow: ${slow.map(([n, ms]) => `${n} ${Math.round(ms / 1000)} s`).join(', ')}`)
  return `${LABEL[phase].padEnd(10)} ${parts.join(' · ')}`
}

/**
 * The terminal view of a batch: listr2 with one parent task per phase, titles refreshed with the
 * counts. Host lines are kept out of the view (they would scroll hundreds of lines); failures show
 * in the titles and in the summary table after. Info and warnings are printed when the view ends.
 */
export class LiveReporter implements Reporter {
  private readonly counts = new Map<BatchPhase, PhaseCounts>()
  private readonly finish = new Map<BatchPhase, () => void>()
  private readonly titles = new Map<BatchPhase, (t: string) => void>()
  private timer?: NodeJS.Timeout
  private run?: Promise<unknown>
  private readonly later: string[] = []
  private stopping = false

  constructor(
    private readonly phases: readonly BatchPhase[],
    totals: Partial<Record<BatchPhase, number>> = {},
  ) {
    for (const p of phases) this.counts.set(p, {running: new Map(), done: 0, failed: [], total: totals[p]})
  }

  /** Starts the view; listr2 is loaded here, so commands without a live view never load it. */
  start(): void {
    this.run = import('listr2')
      .then(({Listr, ListrLogger, ProcessOutput}) => {
        const list = new Listr(
          this.phases.map((p) => ({
            title: phaseTitle(p, this.counts.get(p)!, Date.now()),
            task: (_: unknown, task: {title: string}) =>
              new Promise<void>((resolve) => {
                this.titles.set(p, (t) => (task.title = t))
                this.finish.set(p, resolve)
                // A batch that ended before listr2 was loaded: show the final counts and end.
                if (this.stopping) {
                  task.title = phaseTitle(p, this.counts.get(p)!, Date.now())
                  resolve()
                }
              }),
          })),
          {
            concurrent: true,
            exitOnError: false,
            registerSignalListeners: false,
            // The view goes to stderr: stdout is for data and --json.
            rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)}), collapseSubtasks: false},
          },
        )
        return list.run()
      })
      .catch(() => undefined)
    this.timer = setInterval(() => this.refresh(), 500)
  }

  private refresh(): void {
    const now = Date.now()
    for (const [p, set] of this.titles) set(phaseTitle(p, this.counts.get(p)!, now))
  }

  /** Ends the view (all phase tasks complete) and prints what was held back. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    this.refresh()
    for (const f of this.finish.values()) f()
    await this.run
    for (const l of this.later) process.stderr.write(l + '\n')
  }

  phase(name: string, phase: BatchPhase, event: 'start' | 'done' | 'fail', detail?: string): void {
    const c = this.counts.get(phase)
    if (!c) return
    if (event === 'start') c.running.set(name, Date.now())
    else {
      c.running.delete(name)
      if (event === 'done') c.done++
      else if (detail === 'interrupted') c.interrupted = (c.interrupted ?? 0) + 1
      else c.failed.push(name)
    }
  }

  host(): void {}
  info(message: string): void {
    this.later.push(message)
  }
  warn(message: string): void {
    this.later.push(`Warning: ${message}`)
  }
}

/** A live view on a terminal (not under CI, not with --json), plain host lines otherwise. */
export function batchReporter(phases: readonly BatchPhase[], o: {json?: boolean; totals?: Partial<Record<BatchPhase, number>>} = {}): Reporter & {start(): void; stop(): Promise<void>} {
  const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== '0' && process.env.CI.toLowerCase() !== 'false'
  if (process.stderr.isTTY && !ci && !o.json) return new LiveReporter(phases, o.totals)
  const r = new LineReporter()
  return Object.assign(r, {start() {}, async stop() {}})
}
