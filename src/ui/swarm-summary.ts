import {PartialFailure} from '../errors.js'
import {summarizeNames} from '../names.js'
import type {HostOutcome} from '../services/create-hosts.js'
import {seconds} from './reporter.js'
import {renderTable} from './table.js'

/**
 * The closing summary of a batch that ends in a swarm: a table of results by role, the join
 * timeouts seen, the failed hosts with their errors, and a PartialFailure (exit 4) with the
 * command that retries only those.
 */
export function finishSwarmBatch(
  outcomes: readonly HostOutcome[],
  o: {
    startedAt: number
    clusterId?: string
    leader?: string
    timeouts: readonly string[]
    runFile?: string
    retry: (failed: string[]) => string
    out?: NodeJS.WritableStream
    /** Ghost node entries the run's joins left: removed, kept, not removable. */
    ghosts?: {removed: readonly string[]; kept: readonly string[]; failed: readonly string[]}
  },
): HostOutcome[] {
  const out = o.out ?? process.stderr
  const ok = outcomes.filter((x) => x.ok)
  const failed = outcomes.filter((x) => !x.ok)
  const managers = ok.filter((x) => x.role === 'manager').length
  const workers = ok.filter((x) => x.role === 'worker').length
  const already = ok.length - managers - workers
  const rows = [
    ['joined as manager', String(managers)],
    ['joined as worker', String(workers)],
    ['already a member', String(already)],
    ['failed', String(failed.length)],
  ]
  out.write(renderTable(['RESULT', 'HOSTS'], rows))
  if (o.timeouts.length > 0) out.write(`Join timeouts answered by engines (verified, not failures): ${o.timeouts.length} (${summarizeNames([...o.timeouts])})\n`)
  const g = o.ghosts
  if (g && g.removed.length > 0) out.write(`Removed ${g.removed.length} ghost node entr${g.removed.length === 1 ? 'y' : 'ies'} (joins that never completed) from the swarm's node list:\n${g.removed.map((x) => `  ${x}\n`).join('')}`)
  if (g && g.failed.length > 0) out.write(`Could not remove ${g.failed.length} ghost node entr${g.failed.length === 1 ? 'y' : 'ies'} (belt swarm prune tries again):\n${g.failed.map((x) => `  ${x}\n`).join('')}`)
  if (g && g.kept.length > 0) out.write(`Kept ${g.kept.length} node entr${g.kept.length === 1 ? 'y' : 'ies'} with no hostname (belt swarm status shows them, belt swarm prune clears them once they are ghosts):\n${g.kept.map((x) => `  ${x}\n`).join('')}`)
  if (failed.length > 0) out.write(renderTable(['NAME', 'ERROR'], failed.map((f) => [f.name, f.error ?? ''])))
  out.write(
    `Swarm ${o.clusterId ? o.clusterId.slice(0, 12) : '(none)'}${o.leader ? `, leader ${o.leader}` : ''}: ${ok.length} of ${outcomes.length} host${outcomes.length === 1 ? '' : 's'} in it after ${seconds(Date.now() - o.startedAt)}.${o.runFile ? ` Timeline: belt report` : ''}\n`,
  )
  if (failed.length > 0) {
    const names = failed.map((f) => f.name)
    throw new PartialFailure(`${failed.length} host${failed.length === 1 ? '' : 's'} failed: ${summarizeNames(names)}`, outcomes, o.retry(names))
  }
  return [...outcomes]
}
