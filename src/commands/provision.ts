import {Args, Flags} from '@oclif/core'
import {findDriver} from '../../drivers/registry.js'
import {BaseCommand} from '../base-command.js'
import {engineConfigFrom, engineFlags, engineFlagsGiven} from '../engine-flags.js'
import {bootstrapHosts, prepareBootstrap} from '../services/bootstrap-hosts.js'
import {selectHosts} from '../services/select-hosts.js'
import {finishBatch, interruptedBatch} from '../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {batchReporter} from '../ui/live.js'

export default class Provision extends BaseCommand<typeof Provision> {
  static override summary = 'Bootstrap existing hosts: install and configure the Docker engine with mutual TLS'
  static override description =
    'Idempotent: files are compared by hash and the engine restarts only when its configuration changed. Without --engine-* flags, each host keeps the engine settings it was bootstrapped with.'
  static override examples = ['<%= config.bin %> provision node1', "<%= config.bin %> provision 'node*' --engine-opt log-level=warn"]
  static override strict = false
  static override args = {names: Args.string({description: "hosts to bootstrap, by name or pattern", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    concurrency: Flags.integer({char: 'c', description: 'hosts bootstrapped at once [default: per driver, local 8]', min: 1}),
    ...engineFlags,
  }

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const setup = await prepareBootstrap(store)
    const concurrency = this.flags.concurrency ?? Math.min(...hosts.map((h) => findDriver(h.driver)?.bootstrapConcurrency ?? 8))
    const reporter = batchReporter(['bootstrap'], {json: this.jsonEnabled(), totals: {bootstrap: hosts.length}})
    reporter.start()
    const signal = this.interruptSignal()
    const outcomes = await bootstrapHosts(setup, hosts.map((h) => h.name), {
      engine: engineFlagsGiven(this.flags) ? engineConfigFrom(this.flags) : undefined,
      reporter,
      concurrency,
      signal,
    }).finally(() => reporter.stop())
    // The same engine settings again, so that a retry configures what this run meant to.
    const again = (names: string[]) => reproduceCommand(['provision'], this.flags, {...(this.ctor as typeof Provision).baseFlags, ...Provision.flags} as Record<string, FlagShape>, {args: names})
    if (this.interrupted && outcomes.some((o) => !o.ok)) throw interruptedBatch(outcomes, again(outcomes.filter((o) => !o.ok).map((o) => o.name)), startedAt)
    return finishBatch(outcomes, {verb: 'provisioned', startedAt, retry: again})
  }
}
