import {PartialFailure} from '../errors.js'
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
