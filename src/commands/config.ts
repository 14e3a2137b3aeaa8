import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {configArgs} from '../services/machine-info.js'
import {selectHosts} from '../services/select-hosts.js'

export default class Config extends BaseCommand<typeof Config> {
  static override summary = "Print the docker CLI's connection flags for a host"
  static override description =
    "docker-machine's `config`: --tlsverify, --tlscacert, --tlscert, --tlskey (the store's client certificate) and -H, one per line, for `docker $(belt config NAME) ...`. Unlike docker-machine, the paths are not quoted, so that the shell hands them to docker unchanged; a store path the shell would split is refused (use belt env then)."
  static override examples = ['docker $(<%= config.bin %> config node1) info']
  static override args = {name: Args.string({description: 'host name', required: true})}
  static override enableJsonFlag = true

  async run(): Promise<{name: string; args: string[]}> {
    const store = this.openStore()
    const [record] = await selectHosts(store, [this.args.name])
    const args = configArgs(record!, store)
    if (!this.jsonEnabled()) process.stdout.write(args.join('\n') + '\n')
    return {name: record!.name, args}
  }
}
