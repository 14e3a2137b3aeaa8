import {Args, Flags, type Interfaces} from '@oclif/core'
import {drivers, findDriver, flagName} from '../../drivers/registry.js'
import {BaseCommand, canPrompt} from '../base-command.js'
import {usageError} from '../errors.js'
import {expandNames, nextNames} from '../names.js'
import {engineConfigFrom, engineFlags} from '../engine-flags.js'
import {runCreatePipeline} from '../services/pipeline.js'
import {parsePorts} from '../services/ports.js'
import {refuseSwarmOptionsWithoutSwarm, swarmFlags, swarmSettingsFrom} from '../swarm-flags.js'
import {finishSwarmBatch} from '../ui/swarm-summary.js'
import {resolveDriverOptions} from '../services/driver-context.js'
import {finishBatch, interruptedBatch} from '../ui/batch.js'
import {maskedCommandLine, reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {batchReporter} from '../ui/live.js'
import type {BatchPhase} from '../ui/reporter.js'

/** `--<driver>-<option>` for every driver's options, each with its env var, grouped by driver in help. */
function driverFlags() {
  const flags: Record<string, Interfaces.OptionFlag<string | undefined> | Interfaces.BooleanFlag<boolean | undefined>> = {}
  for (const d of drivers)
    for (const o of d.options) {
      const aliases = o.aliases?.map((a) => flagName(d.name, a))
      // Docker Machine's boolean flags are given bare (--digitalocean-ipv6): so are these.
      flags[flagName(d.name, o.name)] = o.boolean
        ? (Flags.boolean({description: o.description, env: o.env, allowNo: true, aliases, helpGroup: d.name.toUpperCase()}) as Interfaces.BooleanFlag<boolean | undefined>)
        : Flags.string({
            multiple: false,
            description: o.description + (o.default !== undefined ? ` [default: ${o.default}]` : ''),
            env: o.env,
            aliases,
            options: o.choices ? [...o.choices] : undefined,
            helpGroup: d.name.toUpperCase(),
          })
    }
  return flags
}

export default class Create extends BaseCommand<typeof Create> {
  static override summary = 'Create hosts through a driver'
  static override description = `Names are DNS labels; patterns expand: node[1:300] is node1..node300, node[001:300] pads to three digits. With --count N, names continue after the existing --prefix hosts. Existing names are refused before anything is created.

The same command run again finishes its batch: when the last batch with the same names (or the same --count and --prefix) in this cluster did not finish (Ctrl-C, a killed process, or failed hosts), running it again skips the hosts that are done, takes the others on from their phase, creates the ones never created, and adds no other host. Otherwise --count N adds N hosts.

Ctrl-C: the first one starts nothing new and lets requests in flight return, so every cloud resource is recorded; then Belt prints where each host is and the command that finishes the batch, and exits 130. A second Ctrl-C exits at once.`
  static override examples = [
    '<%= config.bin %> create --driver local node[1:5]',
    '<%= config.bin %> create --driver local --count 20',
    '<%= config.bin %> create --driver local --count 3 --prefix web',
    '<%= config.bin %> create --driver local --engine-label tier=web --engine-opt log-level=warn node[1:3]',
    '<%= config.bin %> create --driver local --no-bootstrap node4',
    '<%= config.bin %> create --driver local --count 50 --swarm --managers 3',
  ]
  static override strict = false
  static override enableJsonFlag = true
  static override args = {
    names: Args.string({description: 'host names or patterns such as node[1:5]', required: false}),
  }
  static override flags = {
    driver: Flags.string({char: 'd', description: "driver that creates the hosts (docker-machine's MACHINE_DRIVER is read when neither this nor BELT_DRIVER is set)", env: 'BELT_DRIVER', options: drivers.map((d) => d.name)}),
    count: Flags.integer({char: 'n', description: 'add N hosts named <prefix><number>, numbered after the existing ones (when the last batch of this same command did not finish, it finishes that batch instead)', min: 1}),
    prefix: Flags.string({description: 'name prefix for --count', default: 'node'}),
    cluster: Flags.string({description: 'cluster the hosts belong to (shared SSH key and cloud resources)', default: 'default', env: 'BELT_CLUSTER'}),
    concurrency: Flags.integer({char: 'c', description: 'hosts created at once [default: per driver, local 8]', min: 1}),
    swarm: Flags.boolean({description: "join each host to the cluster's swarm as soon as its engine is ready (forms the swarm when there is none)"}),
    ...swarmFlags,
    bootstrap: Flags.boolean({description: 'install and configure the Docker engine with mutual TLS on each host as soon as it is created', default: true, allowNo: true}),
    'bootstrap-concurrency': Flags.integer({description: 'hosts bootstrapped at once [default: per driver, local 8]', min: 1}),
    'open-port': Flags.string({
      description: "publish PORT[/tcp|udp] (or FROM-TO) to any address on the cluster's cloud firewall, for every host of the cluster (repeatable; tcp by default). Later: belt ports open|close|ls",
      multiple: true,
      multipleNonGreedy: true,
    }),
    ...engineFlags,
    ...driverFlags(),
  }

  async run() {
    let patterns = this.positional
    if (this.flags.count !== undefined && patterns.length > 0)
      throw usageError('give host names or --count, not both', 'E_NAMES_AND_COUNT')
    // Names and --prefix are checked before anything exists (a usage error leaves no store behind).
    if (this.flags.count === undefined) expandNames(patterns)
    else nextNames(this.flags.prefix, this.flags.count, [])

    const entry = findDriver(await this.chooseDriver())!
    const given: Record<string, string | undefined> = {}
    for (const o of entry.options) {
      const v = (this.flags as Record<string, unknown>)[flagName(entry.name, o.name)]
      given[o.name] = typeof v === 'boolean' ? String(v) : (v as string | undefined)
    }
    let {options, persistable, missing} = resolveDriverOptions(entry, given)
    if (missing.length > 0) {
      if (!canPrompt()) {
        const o = entry.options.find((x) => x.name === missing[0])!
        throw usageError(`missing --${flagName(entry.name, o.name)}${o.env ? ` (or ${o.env})` : ''}`, 'E_MISSING_OPTION', o.description)
      }
      const {input, password, select} = await import('@inquirer/prompts')
      for (const name of missing) {
        const o = entry.options.find((x) => x.name === name)!
        const message = `${o.description} (--${flagName(entry.name, o.name)})`
        given[name] = o.choices ? await select({message, choices: o.choices.map((c) => ({value: c}))}) : o.secret ? await password({message, mask: '*'}) : await input({message, required: true})
      }
      ;({options, persistable} = resolveDriverOptions(entry, given))
    }

    // No names and no --count: the hosts an inventory option names (the generic driver's --generic-hosts).
    if (this.flags.count === undefined && patterns.length === 0) {
      patterns = (await (await entry.load()).hostNames?.(options)) ?? []
      if (patterns.length === 0) throw usageError('no hosts to create', 'E_NO_NAMES', 'name them (belt create --driver local node[1:3]) or pass --count N')
    }

    if (this.flags.swarm && !this.flags.bootstrap) throw usageError('--swarm needs the engines: drop --no-bootstrap', 'E_SWARM_NO_BOOTSTRAP')
    // Swarm options are checked before anything is created (one line, exit 2).
    const swarm = this.flags.swarm ? swarmSettingsFrom(this.flags) : refuseSwarmOptionsWithoutSwarm(this.flags)
    const openPorts = parsePorts(this.flags['open-port'] ?? [], '--open-port')
    const signal = this.interruptSignal()
    const startedAt = Date.now()
    const store = this.openStore()
    const phases: BatchPhase[] = ['create', ...(this.flags.bootstrap ? (['bootstrap'] as const) : []), ...(this.flags.swarm ? (['join'] as const) : [])]
    const n = this.flags.count
    const reporter = batchReporter(phases, {json: this.jsonEnabled(), totals: n ? {create: n, bootstrap: n, join: n} : {}})
    reporter.start()
    const r = await runCreatePipeline({
      store,
      driver: entry,
      options,
      persistable,
      selection: this.flags.count !== undefined ? {count: this.flags.count, prefix: this.flags.prefix} : {patterns},
      cluster: this.flags.cluster,
      createConcurrency: this.flags.concurrency ?? entry.createConcurrency,
      bootstrap: this.flags.bootstrap ? {engine: engineConfigFrom(this.flags), concurrency: this.flags['bootstrap-concurrency'] ?? entry.bootstrapConcurrency} : undefined,
      swarm,
      reporter,
      command: maskedCommandLine(this.id ?? 'create', this.argv, entry.name, entry.options),
      signal,
      openPorts,
    }).finally(() => reporter.stop())
    // Every non-secret option again (values from the environment included), so that the line does
    // exactly this batch's work: same driver options, cluster, engine and swarm settings.
    const otherDrivers = new Set(drivers.filter((d) => d.name !== entry.name).flatMap((d) => d.options.map((o) => flagName(d.name, o.name))))
    const secret = new Set(entry.options.filter((o) => o.secret).map((o) => flagName(entry.name, o.name)))
    const shapes = {...(this.ctor as typeof Create).baseFlags, ...Create.flags} as Record<string, FlagShape>
    // Values read from another variable than the flag's own (Machine's DIGITALOCEAN_USERDATA) go in as flags too.
    const fromAliases: Record<string, unknown> = {}
    for (const o of entry.options) {
      const f = flagName(entry.name, o.name)
      const v = options[o.name]
      if (!o.secret && (this.flags as Record<string, unknown>)[f] === undefined && v !== undefined && v !== o.default) fromAliases[f] = o.boolean ? v === 'true' : v
    }
    const again = (o: {omit?: string[]; args?: string[]}) =>
      reproduceCommand(['create'], {...this.flags, ...fromAliases, driver: entry.name}, shapes, {secret, omit: new Set([...otherDrivers, ...(o.omit ?? [])]), args: o.args})
    // Hosts never created are created, created ones go on from their phase.
    const retry = (failed: string[]) => again({omit: ['count', 'prefix'], args: failed})
    // A Ctrl-C that came after every host was done changes nothing: the batch is complete.
    if (this.interrupted && r.outcomes.some((o) => !o.ok)) throw interruptedBatch(r.outcomes, again({args: patterns}), startedAt)
    if (this.flags.swarm) return finishSwarmBatch(r.outcomes, {...r, startedAt, retry})
    return finishBatch(r.outcomes, {verb: this.flags.bootstrap ? 'created and bootstrapped' : 'created', startedAt, retry})
  }

  /** --driver (BELT_DRIVER), else docker-machine's MACHINE_DRIVER, else a prompt on a terminal, else a usage error naming the flag. */
  private async chooseDriver(): Promise<string> {
    if (this.flags.driver) return this.flags.driver
    // docker-machine's variable, below --driver and BELT_DRIVER.
    const machine = process.env.MACHINE_DRIVER
    if (machine) {
      if (!findDriver(machine)) throw usageError(`MACHINE_DRIVER=${machine}: belt has no such driver; choose one of ${drivers.map((d) => d.name).join(', ')}`, 'E_UNKNOWN_DRIVER', 'pass --driver, or unset MACHINE_DRIVER')
      return machine
    }
    if (!canPrompt())
      throw usageError(`missing --driver: choose one of ${drivers.map((d) => d.name).join(', ')}`, 'E_MISSING_DRIVER', 'e.g. belt create --driver local node1')
    const {select} = await import('@inquirer/prompts')
    return select({message: 'Driver', choices: drivers.map((d) => ({value: d.name, description: d.description}))})
  }
}
