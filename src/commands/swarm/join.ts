import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {usageError} from '../../errors.js'
import {swarmInit} from '../../services/swarm.js'
import {swarmFlags, swarmSettingsFrom} from '../../swarm-flags.js'
import {batchReporter} from '../../ui/live.js'
import {finishSwarmBatch} from '../../ui/swarm-summary.js'
import {interruptedBatch} from '../../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../../ui/command-line.js'

export default class SwarmJoin extends BaseCommand<typeof SwarmJoin> {
  static override summary = "Join hosts to their cluster's swarm"
  static override description = 'As workers, or as managers with --manager (one at a time). Members are skipped.'
  static override examples = ['<%= config.bin %> swarm join node7', "<%= config.bin %> swarm join --manager 'node[4:5]'"]
  static override strict = false
  static override args = {names: Args.string({description: "hosts to join, by name or pattern", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    manager: Flags.boolean({description: 'join as managers'}),
    'join-concurrency': swarmFlags['join-concurrency'],
    'advertise-addr-type': swarmFlags['advertise-addr-type'],
    'manager-availability': swarmFlags['manager-availability'],
  }

  async run() {
    if (this.positional.length === 0) throw usageError('name the hosts to join', 'E_NO_NAMES', 'e.g. belt swarm join node7')
    const startedAt = Date.now()
    const reporter = batchReporter(['join'], {json: this.jsonEnabled()})
    reporter.start()
    const r = await swarmInit({
      store: this.openStore(),
      patterns: this.positional,
      // The role is forced for every named host, so the manager count only has to be valid.
      settings: swarmSettingsFrom({...this.flags, managers: 7}),
      role: this.flags.manager ? 'manager' : 'worker',
      reporter,
      command: ['belt', 'swarm', 'join', ...this.argv].join(' '),
      signal: this.interruptSignal(),
    }).finally(() => reporter.stop())
    const again = (names: readonly string[]) => reproduceCommand(['swarm', 'join'], this.flags, {...(this.ctor as typeof SwarmJoin).baseFlags, ...SwarmJoin.flags} as Record<string, FlagShape>, {args: [...names]})
    if (this.interrupted && r.outcomes.some((o) => !o.ok)) throw interruptedBatch(r.outcomes, again(this.positional), startedAt)
    return finishSwarmBatch(r.outcomes, {...r, startedAt, retry: again})
  }
}
