import {BaseCommand} from '../../base-command.js'
import {swarmSetRole} from '../../services/swarm.js'
import {selectHosts} from '../../services/select-hosts.js'
import {finishBatch} from '../../ui/batch.js'
import {LineReporter} from '../../ui/reporter.js'

export default class SwarmDemote extends BaseCommand<typeof SwarmDemote> {
  static override summary = 'Demote swarm nodes to workers'
  static override description = 'One node at a time (each change is a Raft membership change). Belt warns when the managers would be an even number.'
  static override examples = ['<%= config.bin %> swarm demote node4']
  static override strict = false
  static override enableJsonFlag = true

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const outcomes = await swarmSetRole({store, hosts, role: 'worker', reporter: new LineReporter()})
    const storeFlag = this.flags.store ? ` --store ${this.flags.store}` : ''
    return finishBatch(outcomes, {verb: 'demoted', startedAt, retry: (f) => `belt swarm demote${storeFlag} ${f.join(' ')}`})
  }
}
