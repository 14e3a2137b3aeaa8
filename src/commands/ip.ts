import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ipCommand} from '../fast-path.js'

export default class Ip extends BaseCommand<typeof Ip> {
  static override summary = 'Print the IP address of hosts'
  static override examples = ['<%= config.bin %> ip node1', '<%= config.bin %> ip node[1:3]']
  static override strict = false
  static override args = {names: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*')", required: false})}
  static override enableJsonFlag = true

  async run(): Promise<{name: string; address: string}[]> {
    // The same function as the start-up fast path's (bin/run.js), which runs the plain forms without oclif.
    return ipCommand(this.openStore(), this.positional, this.jsonEnabled())
  }
}
