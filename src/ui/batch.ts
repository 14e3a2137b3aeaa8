import {InterruptedBatch, PartialFailure} from '../errors.js'
import type {HostOutcome} from '../services/create-hosts.js'
import {summarizeNames} from '../names.js'
import {renderTable} from './table.js'
import {seconds} from './reporter.js'

/**
 * Closes a batch: a summary on stderr, and a PartialFailure (exit 4) naming every failed host with
 * the command that retries only those. Returns the outcomes for --json.
 */
export function finishBatch(outcomes: readonly HostOutcome[], opts: {verb: string; startedAt: number; retry: (failed: string[]) => string; table?: boolean}): HostOutcome[] {
  const failed = outcomes.filter((o) => !o.ok)
  if (opts.table !== false && failed.length > 0) {
    process.stderr.write(renderTable(['NAME', 'ERROR'], failed.map((o) => [o.name, o.error ?? ''])))
  }
  const ok = outcomes.length - failed.length
  process.stderr.write(`${capital(opts.verb)} ${ok} of ${outcomes.length} host${outcomes.length === 1 ? '' : 's'} in ${seconds(Date.now() - opts.startedAt)}${failed.length ? `; ${failed.length} failed` : ''}.\n`)
  if (failed.length > 0) {
    const names = failed.map((o) => o.name)
    throw new PartialFailure(`${failed.length} host${failed.length === 1 ? '' : 's'} failed: ${summarizeNames(names)}`, outcomes, opts.retry(names))
  }
  return [...outcomes]
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** How a host stands after a Ctrl-C, in words for the table. */
function standing(o: HostOutcome): string {
  if (o.ok) return o.already ? `done earlier (${o.phase})` : `done (${o.phase})`
  if (!o.interrupted) return `failed: ${o.error ?? ''}`
  if (o.phase === 'reserved') return 'not started'
  if (o.phase === 'creating') return 'creating: its resource (if any) is recorded'
  if (o.phase === 'created' || o.phase === 'bootstrapping') return 'created; engine not ready yet'
  if (o.phase === 'bootstrapped') return 'engine ready; not in the swarm yet'
  return `interrupted (${o.phase})`
}

/**
 * Closes a batch the operator interrupted: where every unfinished host stands, on stderr, and an
 * InterruptedBatch (exit 130) with the command that finishes the batch.
 */
export function interruptedBatch(outcomes: readonly HostOutcome[], resume: string, startedAt: number, out: NodeJS.WritableStream = process.stderr): InterruptedBatch<HostOutcome[]> {
  const unfinished = outcomes.filter((o) => !o.ok)
  // One row per standing, not per host: 300 hosts make a handful of lines.
  const groups = new Map<string, string[]>()
  for (const o of unfinished) groups.set(standing(o), [...(groups.get(standing(o)) ?? []), o.name])
  if (unfinished.length > 0) out.write(renderTable(['HOSTS', 'WHERE THEY STAND'], [...groups].map(([where, names]) => [`${summarizeNames(names)} (${names.length})`, where])))
  const done = outcomes.length - unfinished.length
  const notStarted = unfinished.filter((o) => o.interrupted && o.phase === 'reserved').length
  return new InterruptedBatch(
    `${done} of ${outcomes.length} host${outcomes.length === 1 ? '' : 's'} done after ${seconds(Date.now() - startedAt)}, ${unfinished.length - notStarted} unfinished, ${notStarted} not started; every resource created is recorded`,
    [...outcomes],
    resume,
  )
}
