import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {engineUrl} from '../services/machine-info.js'
import {selectHosts} from '../services/select-hosts.js'

export default class Url extends BaseCommand<typeof Url> {
  static override summary = "Print the URL of hosts' Docker engines (tcp://ADDRESS:2376)"
  static override examples = ['<%= config.bin %> url node1', 'docker -H "$(<%= config.bin %> url node1)" --tlsverify info']
  static override strict = false
  static override args = {names: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*')", required: false})}
  static override enableJsonFlag = true

  async run(): Promise<{name: string; url: string}[]> {
    const hosts = await selectHosts(this.openStore(), this.positional)
    const out = hosts.map((r) => ({name: r.name, url: engineUrl(r)}))
    if (!this.jsonEnabled()) process.stdout.write(out.map((o) => (hosts.length > 1 ? `${o.name} ${o.url}` : o.url) + '\n').join(''))
    return out
  }
}
