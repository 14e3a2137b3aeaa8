import {Args, Flags} from '@oclif/core'
import {findDriver} from '../../drivers/registry.js'
import {BaseCommand, canPrompt} from '../base-command.js'
import {usageError} from '../errors.js'
import {summarizeNames} from '../names.js'
import {ensureCa, rotateCa, rotateClientCert} from '../pki/ca.js'
import {bootstrapHosts, prepareBootstrap} from '../services/bootstrap-hosts.js'
import {selectHosts} from '../services/select-hosts.js'
import {finishBatch} from '../ui/batch.js'
import {LineReporter} from '../ui/reporter.js'

export default class RegenerateCerts extends BaseCommand<typeof RegenerateCerts> {
  static override summary = "Issue new TLS server certificates for hosts' engines"
  static override description =
    'Each engine gets a new server certificate and restarts; its data, engine ID and swarm membership are kept (containers come back as their restart policy says). --client-certs also replaces the client certificate; --ca replaces the CA itself, and then every host of the store must get a new server certificate.'
  static override examples = [
    '<%= config.bin %> regenerate-certs node2',
    "<%= config.bin %> regenerate-certs -y 'node*'",
    "<%= config.bin %> regenerate-certs -y --ca 'node*'",
  ]
  static override strict = false
  static override args = {names: Args.string({description: "hosts whose engines get new certificates, by name or pattern", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    yes: Flags.boolean({char: 'y', description: 'do not ask for confirmation'}),
    'client-certs': Flags.boolean({description: 'also replace the client certificate (the CA stays)'}),
    ca: Flags.boolean({description: 'replace the CA and the client certificate too; requires every host of the store'}),
    concurrency: Flags.integer({char: 'c', description: 'hosts handled at once [default: per driver, local 8]', min: 1}),
  }

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const names = hosts.map((h) => h.name)
    if (this.flags.ca) {
      const {records} = await store.list()
      const left = records.filter((r) => r.engine && !names.includes(r.name)).map((r) => r.name)
      if (left.length > 0)
        throw usageError(`--ca replaces the CA that every engine trusts, and ${summarizeNames(left)} would be cut off`, 'E_CA_PARTIAL', "name every host, e.g. belt regenerate-certs --ca 'node*'")
    }
    if (!this.flags.yes) {
      if (!canPrompt()) throw usageError(`refusing to restart the engines of ${summarizeNames(names)} without confirmation`, 'E_CONFIRM', 'pass -y')
      const {confirm} = await import('@inquirer/prompts')
      const ok = await confirm({message: `Regenerate certificates and restart the engines of ${summarizeNames(names)}?`, default: false})
      if (!ok) {
        this.note('Nothing changed.')
        return []
      }
    }
    const startedAt = Date.now()
    if (this.flags.ca) {
      const r = await rotateCa(store)
      this.note(`New CA ${r.ca.fingerprint}${r.previousDir ? ` (the old one is kept in ${r.previousDir})` : ''} and a new client certificate.`)
    } else if (this.flags['client-certs']) {
      await rotateClientCert(store, await ensureCa(store))
      this.note('New client certificate.')
    }
    const setup = await prepareBootstrap(store)
    const concurrency = this.flags.concurrency ?? Math.min(...hosts.map((h) => findDriver(h.driver)?.bootstrapConcurrency ?? 8))
    const outcomes = await bootstrapHosts(setup, names, {renewCert: true, reporter: new LineReporter(), concurrency})
    const storeFlag = this.flags.store ? ` --store ${this.flags.store}` : ''
    return finishBatch(outcomes, {verb: 'regenerated certificates of', startedAt, retry: (failed) => `belt regenerate-certs -y${storeFlag} ${failed.join(' ')}`})
  }
}
