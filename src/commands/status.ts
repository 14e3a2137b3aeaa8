import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {environmentError} from '../errors.js'
import {liveState} from '../services/list-hosts.js'

export default class Status extends BaseCommand<typeof Status> {
  static override summary = "Print a host's live state (Running, Stopped, Missing, ...)"
  static override examples = ['<%= config.bin %> status node1']
  static override enableJsonFlag = true
  static override args = {name: Args.string({description: 'host name', required: true})}

  async run(): Promise<{name: string; state: string}> {
    const store = this.openStore()
    const r = await store.get(this.args.name)
    const {state, error} = await liveState(store, r)
    // A state that cannot be read (no credentials, an unreachable API) is an environment problem: exit 5.
    if (error)
      throw environmentError(`cannot read the state of ${r.name}: ${error.replace(/\.$/, '')}`, 'E_STATE_UNKNOWN', `check the ${r.driver} driver's credentials (flags or environment) and network, then run belt status ${r.name} again`)
    const shown = state.charAt(0).toUpperCase() + state.slice(1)
    if (!this.jsonEnabled()) process.stdout.write(shown + '\n')
    return {name: r.name, state: shown}
  }
}
