import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {selectHosts} from '../services/select-hosts.js'
import {upgradeHosts} from '../services/upgrade.js'
import {finishBatch, interruptedBatch} from '../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {LineReporter} from '../ui/reporter.js'

export default class Upgrade extends BaseCommand<typeof Upgrade> {
  static override summary = 'Upgrade the Docker engine of hosts, one host at a time'
  static override description = `docker-machine's \`upgrade\`: the engine packages apt installed (docker.io, or docker-ce and its companions) are upgraded to the newest the host's sources offer, or the --engine-install-url script the host was bootstrapped with runs again; then the engine restarts and the bootstrapper checks its configuration and waits for it over TLS.

A swarm node is drained first (through another manager when there is one) and its tasks are let to move (up to 120 s), then upgraded, awaited until Ready in the swarm, and made active again if it was active. Hosts go one at a time in the order named (Docker advises managers first); the first failure stops the run, and a failed node stays drained.`
  static override examples = ['<%= config.bin %> upgrade node1', "<%= config.bin %> upgrade 'node*'"]
  static override strict = false
  static override args = {names: Args.string({description: "hosts to upgrade, by name or pattern (node[1:3], 'node*')", required: false})}
  static override enableJsonFlag = true

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const signal = this.interruptSignal()
    const outcomes = await upgradeHosts({store, hosts, reporter: new LineReporter(), signal})
    const again = (names: string[]) => reproduceCommand(['upgrade'], this.flags, {...(this.ctor as typeof Upgrade).baseFlags, ...Upgrade.flags} as Record<string, FlagShape>, {args: names})
    if (this.interrupted && outcomes.some((o) => !o.ok)) throw interruptedBatch(outcomes, again(outcomes.filter((o) => !o.ok).map((o) => o.name)), startedAt)
    return finishBatch(outcomes, {verb: 'upgraded', startedAt, retry: again})
  }
}
