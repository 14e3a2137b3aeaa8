import {Args} from '@oclif/core'
import {BaseCommand} from './base-command.js'
import {swarmSetRole} from './services/swarm.js'
import {selectHosts} from './services/select-hosts.js'
import {finishBatch} from './ui/batch.js'
import {LineReporter} from './ui/reporter.js'

/** `belt swarm promote` and `belt swarm demote`: one command over the target role. */
export abstract class SwarmRoleCommand extends BaseCommand<typeof SwarmRoleCommand> {
  static override strict = false
  static override args = {names: Args.string({description: "swarm nodes, by host name or pattern", required: false})}
  static override enableJsonFlag = true
  protected abstract readonly role: 'manager' | 'worker'

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const outcomes = await swarmSetRole({store, hosts, role: this.role, reporter: new LineReporter()})
    const verb = this.role === 'manager' ? 'promote' : 'demote'
    const storeFlag = this.flags.store ? ` --store ${this.flags.store}` : ''
    return finishBatch(outcomes, {verb: `${verb}d`, startedAt, retry: (f) => `belt swarm ${verb}${storeFlag} ${f.join(' ')}`})
  }
}
