import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {swarmLeave} from '../../services/swarm.js'
import {selectHosts} from '../../services/select-hosts.js'
import {finishBatch} from '../../ui/batch.js'
import {LineReporter} from '../../ui/reporter.js'

export default class SwarmLeave extends BaseCommand<typeof SwarmLeave> {
  static override summary = 'Make hosts leave the swarm and remove them from its node list'
  static override description = 'Managers leave only with --force (it weakens the quorum, and the last one ends the swarm); demote them first instead.'
  static override examples = ['<%= config.bin %> swarm leave node9', "<%= config.bin %> swarm leave --force 'node*'"]
  static override strict = false
  static override args = {names: Args.string({description: "hosts that leave, by name or pattern", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    force: Flags.boolean({description: 'let managers leave too'}),
    concurrency: Flags.integer({char: 'c', description: 'hosts handled at once', default: 16, min: 1}),
  }

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const outcomes = await swarmLeave({store, hosts, force: this.flags.force, reporter: new LineReporter(), concurrency: this.flags.concurrency})
    const storeFlag = this.flags.store ? ` --store ${this.flags.store}` : ''
    return finishBatch(outcomes, {verb: 'removed from the swarm', startedAt, retry: (f) => `belt swarm leave${this.flags.force ? ' --force' : ''}${storeFlag} ${f.join(' ')}`})
  }
}
