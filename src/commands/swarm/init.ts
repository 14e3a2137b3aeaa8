import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {swarmInit} from '../../services/swarm.js'
import {swarmFlags, swarmSettingsFrom} from '../../swarm-flags.js'
import {batchReporter} from '../../ui/live.js'
import {finishSwarmBatch} from '../../ui/swarm-summary.js'
import {interruptedBatch} from '../../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../../ui/command-line.js'

export default class SwarmInit extends BaseCommand<typeof SwarmInit> {
  static override summary = 'Form a swarm from bootstrapped hosts (or grow the one that exists)'
  static override description =
    'With no names, every host of the cluster. The first manager initialises the swarm, the other managers join one at a time, workers join through a sliding window. Hosts already in the swarm are skipped; hosts in another swarm are reported. Running it again converges.'
  static override examples = ['<%= config.bin %> swarm init', "<%= config.bin %> swarm init --managers 5 'node[1:100]'", '<%= config.bin %> swarm init --manager-availability active']
  static override strict = false
  static override args = {names: Args.string({description: "hosts to form the swarm from (default: every host of the cluster)", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    ...swarmFlags,
    cluster: Flags.string({description: 'only the hosts of this cluster (with no names)', env: 'BELT_CLUSTER'}),
  }

  async run() {
    const settings = swarmSettingsFrom(this.flags) // checked before anything changes (one line, exit 2)
    const startedAt = Date.now()
    const reporter = batchReporter(['join'], {json: this.jsonEnabled()})
    reporter.start()
    const r = await swarmInit({
      store: this.openStore(),
      patterns: this.positional,
      cluster: this.flags.cluster,
      settings,
      reporter,
      command: ['belt', 'swarm', 'init', ...this.argv].join(' '),
      signal: this.interruptSignal(),
    }).finally(() => reporter.stop())
    const again = (names: readonly string[]) => reproduceCommand(['swarm', 'init'], this.flags, {...(this.ctor as typeof SwarmInit).baseFlags, ...SwarmInit.flags} as Record<string, FlagShape>, {args: [...names]})
    if (this.interrupted && r.outcomes.some((o) => !o.ok)) throw interruptedBatch(r.outcomes, again(this.positional), startedAt)
    return finishSwarmBatch(r.outcomes, {...r, startedAt, retry: again})
  }
}
