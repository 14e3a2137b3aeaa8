import {Args, Flags} from '@oclif/core'
import type {PowerAction} from '../drivers/driver.js'
import {BaseCommand} from './base-command.js'
import {powerHosts} from './services/power.js'
import {selectHosts} from './services/select-hosts.js'
import {finishBatch, interruptedBatch} from './ui/batch.js'
import {reproduceCommand, type FlagShape} from './ui/command-line.js'
import {LineReporter} from './ui/reporter.js'

/** start, stop, restart and kill: the same command over a driver's optional capability. */
export abstract class PowerCommand extends BaseCommand<typeof PowerCommand> {
  static override strict = false
  static override args = {names: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*')", required: false})}
  static override enableJsonFlag = true
  static override flags = {
    concurrency: Flags.integer({char: 'c', description: 'hosts handled at once', default: 16, min: 1}),
  }
  protected abstract readonly action: PowerAction

  async run() {
    const store = this.openStore()
    const hosts = await selectHosts(store, this.positional)
    const startedAt = Date.now()
    const signal = this.interruptSignal()
    const outcomes = await powerHosts({store, hosts, action: this.action, concurrency: this.flags.concurrency, reporter: new LineReporter(), signal})
    const ctor = this.ctor as typeof PowerCommand
    const again = (names: string[]) => reproduceCommand([this.action], this.flags, {...ctor.baseFlags, ...ctor.flags} as Record<string, FlagShape>, {args: names})
    if (this.interrupted && outcomes.some((o) => !o.ok)) throw interruptedBatch(outcomes, again(outcomes.filter((o) => !o.ok).map((o) => o.name)), startedAt)
    const past = {start: 'started', stop: 'stopped', restart: 'restarted', kill: 'killed'}[this.action]
    return finishBatch(outcomes, {verb: past, startedAt, retry: again})
  }
}
