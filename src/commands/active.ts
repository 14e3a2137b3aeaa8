import {BaseCommand} from '../base-command.js'
import {activeHost, noActiveHost} from '../services/machine-info.js'

export default class Active extends BaseCommand<typeof Active> {
  static override summary = 'Print the name of the host DOCKER_HOST points at'
  static override description =
    'docker-machine\'s `active`: the host whose engine URL is DOCKER_HOST (set by `eval "$(belt env NAME)"`). Prints "No active host found" and exits 1 when DOCKER_HOST is unset or names no host of the store.'
  static override examples = ['eval "$(<%= config.bin %> env node1)" && <%= config.bin %> active']
  static override enableJsonFlag = true

  async run(): Promise<{name: string; url: string}> {
    const {records} = await this.openStore().list()
    const host = activeHost(records, process.env.DOCKER_HOST)
    if (!host) throw noActiveHost(process.env.DOCKER_HOST)
    if (!this.jsonEnabled()) process.stdout.write(host.name + '\n')
    return {name: host.name, url: host.engine!.url}
  }
}
