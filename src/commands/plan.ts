import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {usageError} from '../errors.js'
import {loadClusterFile} from '../services/cluster-file.js'
import {DEFAULT_REPLACE_AFTER_MS, describeAction, parseDuration, planCluster, type ConvergencePlan} from '../services/converge.js'

/** `--replace-after`, shared by plan and apply. */
export const replaceAfterFlag = Flags.string({
  description: 'replace a host whose swarm node has been Down this long (90s, 5m, 1h; 0: at once); a Missing machine is replaced at once',
  default: `${DEFAULT_REPLACE_AFTER_MS / 60_000}m`,
})

export function replaceAfterMs(v: string): number {
  const ms = parseDuration(v)
  if (ms === undefined) throw usageError(`--replace-after ${v} is not a duration`, 'E_DURATION', 'write it as 90s, 5m or 1h')
  return ms
}

export default class Plan extends BaseCommand<typeof Plan> {
  static override summary = 'Show what belt apply -f FILE would do, changing nothing'
  static override description =
    'Reads the cluster file, the store, each host\'s live state and the swarm\'s node list, and prints the actions apply would take: create, resume, replace, remove (drain, then remove), relabel, roll. Exit 0 whether or not there are changes; 2 when the file is invalid (one line per problem: file, line, field).'
  static override examples = ['<%= config.bin %> plan -f cluster.yaml', '<%= config.bin %> plan -f cluster.yaml --json']
  static override enableJsonFlag = true
  static override flags = {
    file: Flags.string({char: 'f', description: 'cluster file (YAML or JSON; schema/cluster.schema.json)', required: true}),
    'replace-after': replaceAfterFlag,
  }

  async run(): Promise<ConvergencePlan> {
    const grace = replaceAfterMs(this.flags['replace-after'])
    const spec = await loadClusterFile(this.flags.file)
    const plan = await planCluster(this.openStore(), spec, grace)
    if (this.jsonEnabled()) return plan
    process.stdout.write(renderPlan(plan))
    return plan
  }
}

/** The plan as text: one line per action, then what waits, what is blocked and what is left alone. */
export function renderPlan(p: ConvergencePlan & {swarmError?: string}): string {
  const out: string[] = []
  for (const a of p.actions) out.push(`  ${describeAction(a)}`)
  for (const w of p.waiting) out.push(`  wait     ${w.host}: ${w.why}`)
  for (const b of p.blocked) out.push(`  blocked  ${b.host}: ${b.why}`)
  if (p.unmanaged.length > 0) out.push(`  (hosts of cluster ${p.cluster} in no group, left alone: ${p.unmanaged.join(', ')})`)
  if (p.swarmError) out.push(`  (the swarm's node list could not be read: ${p.swarmError})`)
  const counts = new Map<string, number>()
  for (const a of p.actions) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1)
  const summary =
    p.actions.length === 0
      ? `No changes: cluster ${p.cluster} matches ${p.file}.`
      : `Plan for cluster ${p.cluster} (${p.file}): ${[...counts].map(([k, n]) => `${n} to ${k}`).join(', ')}.`
  return [summary, ...out, ...(p.blocked.length > 0 ? ['belt apply would refuse and change nothing until the blocked hosts are fixed.'] : [])].join('\n') + '\n'
}
