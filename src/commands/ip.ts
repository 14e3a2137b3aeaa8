import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {UserError} from '../errors.js'
import {selectHosts} from '../services/select-hosts.js'

export default class Ip extends BaseCommand<typeof Ip> {
  static override summary = 'Print the IP address of hosts'
  static override examples = ['<%= config.bin %> ip node1', '<%= config.bin %> ip node[1:3]']
  static override strict = false
  static override args = {names: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*')", required: false})}
  static override enableJsonFlag = true

  async run(): Promise<{name: string; address: string}[]> {
    const hosts = await selectHosts(this.openStore(), this.positional)
    const out = hosts.map((r) => {
      if (!r.machine) throw new UserError(`${r.name} has no address yet (its state is ${r.phase})`, {code: 'E_NO_ADDRESS', exit: 5})
      return {name: r.name, address: r.machine.address}
    })
    if (!this.jsonEnabled()) process.stdout.write(out.map((o) => (hosts.length > 1 ? `${o.name} ${o.address}` : o.address) + '\n').join(''))
    return out
  }
}
