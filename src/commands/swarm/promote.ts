import {BaseCommand} from '../../base-command.js'
import {swarmSetRole} from '../../services/swarm.js'
import {selectHosts} from '../../services/select-hosts.js'
import {finishBatch} from '../../ui/batch.js'
import {LineReporter} from '../../ui/reporter.js'

export default class SwarmPromote extends BaseCommand<typeof SwarmPromote> {
  static override summary = 'Promote swarm nodes to managers'
  static override description = 'One node at a time (each change is a Raft membership change). Belt warns when the managers would be an even number.'
  static override examples = ['<%= config.bin %> swarm promote node4']
  static override strict = false
  static override enableJsonFlag = true

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const outcomes = await swarmSetRole({store, hosts, role: 'manager', reporter: new LineReporter()})
    const storeFlag = this.flags.store ? ` --store ${this.flags.store}` : ''
    return finishBatch(outcomes, {verb: 'promoted', startedAt, retry: (f) => `belt swarm promote${storeFlag} ${f.join(' ')}`})
  }
}
