import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {UserError, environmentError, oneLine, usageError} from '../errors.js'
import {writeFileAtomic} from '../store/atomic.js'
import {listRuns, loadRun} from '../store/runs.js'
import {renderRunList, renderSummaryText, renderTimelineSvg, runListEntry, summarizeRun, type RunListEntry, type RunSummary} from '../services/report.js'

export default class Report extends BaseCommand<typeof Report> {
  static override summary = 'Summarize a batch run and draw its timeline'
  static override description =
    'Every batch (belt create, belt swarm init, ...) records when each host was requested, got an address, answered SSH, had its engine ready and joined the swarm. This prints, per phase, how many hosts went through it and how long it took (p50, p90, max, nearest rank), the throughput, the failures by phase and the join timeouts, and writes an SVG timeline: one row per host, one coloured segment per phase, failures and timeouts marked, with the cumulative count of hosts joined above it.'
  static override examples = [
    {description: 'The newest run: figures on stdout, the timeline in <store>/runs/<RUN>.svg', command: '<%= config.bin %> report'},
    {description: 'A given run, with the timeline where you want it, rows ordered by join time', command: '<%= config.bin %> report 20261123T063000Z-ab12 --out swarm2k.svg --sort joined'},
    {description: 'The recorded runs, oldest first', command: '<%= config.bin %> report --list'},
    {description: 'The figures for a program', command: "<%= config.bin %> report --json | jq '.phases[] | {phase, p90}'"},
  ]
  static override enableJsonFlag = true
  static override args = {run: Args.string({description: 'run id, as listed by --list [default: the newest run]'})}
  static override flags = {
    list: Flags.boolean({char: 'l', description: 'list the recorded runs (ID, HOSTS, FAILED, WALL, COMMAND) instead', default: false}),
    out: Flags.string({char: 'o', description: 'file to write the SVG timeline to [default: <store>/runs/<RUN>.svg]'}),
    sort: Flags.string({description: 'order of the host rows in the timeline', options: ['start', 'joined'], default: 'start'}),
  }

  async run(): Promise<RunListEntry[] | (RunSummary & {svg: string})> {
    const store = this.openStore()
    if (this.flags.list) {
      if (this.args.run) throw usageError('--list takes no run id', 'E_REPORT_LIST_ARG', `run: belt report ${this.args.run}`)
      const entries: RunListEntry[] = []
      for (const id of await listRuns(store)) {
        try {
          entries.push(runListEntry(await loadRun(store, id)))
        } catch (e) {
          // One unreadable run must not hide the others; loadRun names the file.
          if (!(e instanceof UserError)) throw e
          this.note(`Warning: ${e.message}`)
        }
      }
      if (!this.jsonEnabled()) process.stdout.write(renderRunList(entries))
      return entries
    }

    const run = await loadRun(store, this.args.run)
    const summary = summarizeRun(run)
    const file = path.resolve(this.flags.out ?? path.join(store.dir, 'runs', `${run.id}.svg`))
    try {
      await writeFileAtomic(file, renderTimelineSvg(run, {sort: this.flags.sort as 'start' | 'joined'}))
    } catch (e) {
      throw environmentError(`cannot write the timeline to ${file}: ${oneLine(e)}`, 'E_REPORT_WRITE', 'choose another file with --out', e)
    }
    if (!this.jsonEnabled()) process.stdout.write(renderSummaryText(summary))
    this.note(`Timeline of ${run.hosts.length} hosts written to ${file}`)
    return {...summary, svg: file}
  }
}
