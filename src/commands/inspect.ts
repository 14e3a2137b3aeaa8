import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import type {HostRecord} from '../store/types.js'
import {hostCertWarning, storeCertWarnings} from '../services/cert-warnings.js'
import {refuseMovedHosts} from '../services/driver-context.js'

export default class Inspect extends BaseCommand<typeof Inspect> {
  static override summary = "Print a host's record as JSON"
  static override description = 'The record holds no secret: API tokens and private keys are never saved in it.'
  static override examples = ['<%= config.bin %> inspect node1']
  static override args = {name: Args.string({description: 'host name', required: true})}

  async run(): Promise<HostRecord> {
    const store = this.openStore()
    const record = await store.get(this.args.name)
    refuseMovedHosts([record])
    for (const w of [hostCertWarning(record), ...(await storeCertWarnings(store))]) if (w) this.note(`Warning: ${w}`)
    process.stdout.write(JSON.stringify(record, null, 2) + '\n')
    return record
  }
}
