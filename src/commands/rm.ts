import {Args, Flags} from '@oclif/core'
import {BaseCommand, canPrompt} from '../base-command.js'
import {usageError} from '../errors.js'
import {summarizeNames} from '../names.js'
import {removeHosts} from '../services/remove-hosts.js'
import {selectHosts} from '../services/select-hosts.js'
import {finishBatch, interruptedBatch} from '../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {LineReporter} from '../ui/reporter.js'

export default class Rm extends BaseCommand<typeof Rm> {
  static override summary = 'Remove hosts: their cloud resources, then their records'
  static override description = 'Every name must exist (nothing is removed otherwise). On a terminal it asks first; scripts pass -y.'
  static override examples = ['<%= config.bin %> rm node3', '<%= config.bin %> rm -y node[1:5]', "<%= config.bin %> rm -y 'node*'", '<%= config.bin %> rm -y --force node4']
  static override strict = false
  static override args = {names: Args.string({description: "hosts to remove, by name or pattern (node[1:5], 'node*')", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'do not ask for confirmation'}),
    force: Flags.boolean({char: 'f', description: "remove the record even when the driver cannot remove the resource (it is already gone)"}),
    concurrency: Flags.integer({char: 'c', description: 'hosts removed at once', default: 16, min: 1}),
    'clean-host': Flags.boolean({description: "first stop each host's engine and remove Belt's engine config and certificates from it over SSH (for machines that stay: the generic driver's)"}),
  }

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const names = hosts.map((h) => h.name)
    if (!this.flags.yes) {
      if (!canPrompt())
        throw usageError(`refusing to remove ${summarizeNames(names)} without confirmation`, 'E_CONFIRM', 'pass -y to remove without asking')
      const {confirm} = await import('@inquirer/prompts')
      const ok = await confirm({message: `Remove ${hosts.length} host${hosts.length === 1 ? '' : 's'} (${summarizeNames(names)})? This destroys ${hosts.length === 1 ? 'it' : 'them'}.`, default: false})
      if (!ok) {
        this.note('Nothing removed.')
        return []
      }
    }
    const startedAt = Date.now()
    const signal = this.interruptSignal()
    const outcomes = await removeHosts({store, hosts, force: this.flags.force, cleanHost: this.flags['clean-host'], concurrency: this.flags.concurrency, reporter: new LineReporter(), signal})
    // The same flags again (the store quoted), and -y: the hosts were confirmed once.
    const again = (names: string[]) => reproduceCommand(['rm'], {...this.flags, yes: true}, {...(this.ctor as typeof Rm).baseFlags, ...Rm.flags} as Record<string, FlagShape>, {args: names})
    if (this.interrupted && outcomes.some((o) => !o.ok)) throw interruptedBatch(outcomes, again(outcomes.filter((o) => !o.ok).map((o) => o.name)), startedAt)
    return finishBatch(outcomes, {verb: 'removed', startedAt, retry: again})
  }
}
