import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {environmentError, oneLine} from '../errors.js'
import {engineUrl, engineVersion, readClientTls, type EngineVersion} from '../services/machine-info.js'
import {selectHosts} from '../services/select-hosts.js'

export default class Version extends BaseCommand<typeof Version> {
  static override summary = "Print Belt's version, or the Docker engine version of a host"
  static override description =
    "Without a name: Belt's version (the same as belt --version, one line). With a name (docker-machine's `version NAME`): the engine's version, read live from its API over mutual TLS."
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version node1']
  static override args = {name: Args.string({description: 'host name', required: false})}
  static override enableJsonFlag = true
  static override flags = {
    timeout: Flags.integer({char: 't', description: 'seconds to wait for the engine to answer', default: 10, min: 1}),
  }

  async run(): Promise<{belt: string} | ({name: string} & EngineVersion)> {
    if (!this.args.name) {
      if (!this.jsonEnabled()) process.stdout.write(this.config.userAgent + '\n')
      return {belt: this.config.version}
    }
    const store = this.openStore()
    const [record] = await selectHosts(store, [this.args.name])
    const url = engineUrl(record!)
    const v = await engineVersion(record!, await readClientTls(store), this.flags.timeout * 1000).catch((e: unknown) => {
      throw environmentError(`the engine of ${record!.name} (${url}) did not tell its version: ${oneLine(e)}`, 'E_ENGINE_UNREACHABLE', `check that the host runs: belt status ${record!.name}`)
    })
    if (!this.jsonEnabled()) process.stdout.write(v.version + '\n')
    return {name: record!.name, ...v}
  }
}
