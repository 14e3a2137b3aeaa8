import {Flags} from '@oclif/core'
import {findDriver} from '../../drivers/registry.js'
import {BaseCommand} from '../base-command.js'
import {InterruptedBatch, PartialFailure, oneLine, usageError} from '../errors.js'
import {loadClusterFile} from '../services/cluster-file.js'
import {applyCluster, parseDuration, watchCluster, type ApplyResult} from '../services/converge.js'
import {LineReporter} from '../ui/reporter.js'
import {maskedCommandLine} from '../ui/command-line.js'
import {replaceAfterFlag, replaceAfterMs} from './plan.js'

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Converge a cluster to a cluster file'
  static override description = `Creates missing hosts and resumes unfinished ones through the same pipeline as create --swarm (managers groups first), replaces hosts whose machine is Missing or whose node has been Down longer than --replace-after, scales groups down (drain, wait for the tasks to move, leave, remove; managers demoted first, never below quorum), sets swarm node labels, and rolls engine changes (options, labels, version, certificates due): drain, bootstrap, wait until the node is Ready, re-activate; managers one at a time with the leader last, workers --max-unavailable at a time. The store is the only state. An unchanged file does nothing and says so.

--watch converges again every --interval until Ctrl-C, which stops it cleanly after the action in flight.`
  static override examples = [
    '<%= config.bin %> apply -f cluster.yaml',
    '<%= config.bin %> apply -f cluster.yaml --max-unavailable 2 --replace-after 10m',
    '<%= config.bin %> apply -f cluster.yaml --watch --interval 1m',
  ]
  static override enableJsonFlag = true
  static override flags = {
    file: Flags.string({char: 'f', description: 'cluster file (YAML or JSON; schema/cluster.schema.json)', required: true}),
    'replace-after': replaceAfterFlag,
    'max-unavailable': Flags.integer({description: 'workers drained for an engine change or a scale-down at once (managers always go one at a time)', default: 1, min: 1}),
    watch: Flags.boolean({description: 'converge again every --interval until Ctrl-C'}),
    interval: Flags.string({description: 'with --watch: time between rounds (30s, 5m)', default: '30s'}),
  }

  async run(): Promise<ApplyResult | {rounds: number}> {
    const grace = replaceAfterMs(this.flags['replace-after'])
    const interval = parseDuration(this.flags.interval)
    if (interval === undefined || interval <= 0) throw usageError(`--interval ${this.flags.interval} is not a duration above 0`, 'E_DURATION', 'write it as 30s or 5m')
    const load = () => loadClusterFile(this.flags.file)
    const spec = await load()
    const store = this.openStore()
    const signal = this.interruptSignal()
    const reporter = new LineReporter()
    const entry = findDriver(spec.driver)!
    const req = {store, spec, replaceAfterMs: grace, maxUnavailable: this.flags['max-unavailable'], reporter, command: maskedCommandLine(this.id ?? 'apply', this.argv, entry.name, entry.options), signal}
    if (this.flags.watch) {
      let rounds = 0
      reporter.info(`Watching ${this.flags.file}: converging every ${this.flags.interval}; Ctrl-C stops.`)
      await watchCluster({
        ...req,
        intervalMs: interval,
        load,
        onRound: (r) => {
          rounds++
          const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
          if (r instanceof Error) reporter.warn(`${at} round ${rounds}: ${oneLine(r)}`)
          else reporter.info(`${at} round ${rounds}: ${summary(r)}.`)
        },
      })
      reporter.info(`Stopped after ${rounds} round${rounds === 1 ? '' : 's'}.`)
      return {rounds}
    }
    const r = await applyCluster(req)
    const line = summary(r)
    const failed = r.outcomes.filter((o) => !o.ok)
    if (this.interrupted && (failed.length > 0 || r.outcomes.length < r.plan.actions.length))
      throw new InterruptedBatch(`${line}; run the same command to go on`, r, `belt apply -f ${this.flags.file}`)
    if (failed.length > 0) throw new PartialFailure(`${line}; ${failed.map((o) => `${o.action.host}: ${o.error}`).join('; ')}`, r, `belt apply -f ${this.flags.file}`)
    if (!this.jsonEnabled()) process.stdout.write(line + '.\n')
    return r
  }
}

/** One line: what a round did. */
function summary(r: ApplyResult): string {
  if (r.plan.actions.length === 0) {
    const hosts = r.plan.cluster
    return `No changes: cluster ${hosts} matches ${r.plan.file}${r.plan.waiting.length ? ` (waiting: ${r.plan.waiting.map((w) => `${w.host}: ${w.why}`).join('; ')})` : ''}`
  }
  const counts = new Map<string, [number, number]>()
  for (const o of r.outcomes) {
    const c = counts.get(o.action.kind) ?? [0, 0]
    c[o.ok ? 0 : 1]++
    counts.set(o.action.kind, c)
  }
  const done = [...counts].map(([k, [ok, bad]]) => `${k} ${ok}${bad ? ` (${bad} failed)` : ''}`).join(', ')
  return `Applied ${r.plan.file} to cluster ${r.plan.cluster}: ${done || 'nothing done'}${r.outcomes.length < r.plan.actions.length ? `; ${r.plan.actions.length - r.outcomes.length} not done` : ''}`
}
