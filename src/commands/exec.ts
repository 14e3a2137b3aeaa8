import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {usageError} from '../errors.js'
import {execOnHosts} from '../services/exec-hosts.js'
import {selectHosts} from '../services/select-hosts.js'
import {reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {collectedOutput, finishHostRuns, groupedOutput, interruptedHostRuns, prefixedOutput, type HostRun} from '../ui/host-output.js'

export default class Exec extends BaseCommand<typeof Exec> {
  static override summary = 'Run a command on many hosts at once'
  static override description = `Hosts are named by patterns (node[1:5], 'node*'); the command follows --. One word is a shell command line as written ('uptime; df -h /'), several words are an argv passed exactly (-- sh -c 'exit 3'), as with belt ssh. Hosts run through a window of --concurrency connections, each with the host key Belt pinned.

Each output line is prefixed with its host ("node1 | ..."): the remote stdout on stdout, its stderr on stderr. --group prints each host's whole output in one block when it ends. Standard input is not forwarded.

Exit status: 0 when the command exited 0 on every host; 4 when any host exited non-zero or could not be reached, after a summary of the exit codes and the command that runs it again on those hosts only. This holds for one host too, so that a script's exit status does not depend on how many hosts a pattern matched (like ansible's ad-hoc commands); the per-host codes are in the summary and in --json. For one host's own exit status, use belt ssh HOST -- CMD.

Ctrl-C starts no other host; commands already running are left to finish (a second Ctrl-C exits at once), and belt prints where each host stands.`
  static override examples = [
    "<%= config.bin %> exec 'node*' -- hostname",
    '<%= config.bin %> exec node[1:3] -- docker ps --format {{.Names}}',
    "<%= config.bin %> exec -c 50 --group 'node*' -- 'apt-get -qq update && apt-get -qq -y upgrade'",
    "<%= config.bin %> exec 'node*' --json -- cat /etc/os-release",
  ]
  static override strict = false
  static override enableJsonFlag = true
  static override args = {
    pattern: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*'); several may precede --", required: true}),
    command: Args.string({description: 'the command to run, after --'}),
  }
  static override flags = {
    concurrency: Flags.integer({char: 'c', description: 'hosts run at once', default: 16, min: 1}),
    group: Flags.boolean({char: 'g', description: "print each host's whole output in one block when it ends, instead of prefixed lines"}),
  }

  async run(): Promise<HostRun[]> {
    // oclif's argv sorts words by their first place in the command line, so `-c 2 n1 -- sh -c x`
    // would put the command's -c first: take the words in the order they were parsed instead.
    const {raw} = await this.parse({flags: Exec.flags, baseFlags: Exec.baseFlags, enableJsonFlag: true, args: Exec.args, strict: false})
    const words = raw.filter((t) => t.type === 'arg').map((t) => t.input)
    const {patterns, command} = splitCommand(words, this.argv)
    if (patterns.length === 0 || command.length === 0)
      throw usageError('name the hosts and the command to run', 'E_EXEC_USAGE', "e.g. belt exec 'node*' -- hostname")
    const store = this.openStore()
    const hosts = await selectHosts(store, patterns)
    const json = this.jsonEnabled()
    const collected = json ? collectedOutput() : undefined
    const output = collected ?? (this.flags.group ? groupedOutput() : prefixedOutput(hosts.map((h) => h.name)))
    const startedAt = Date.now()
    const signal = this.interruptSignal()
    const runs = await execOnHosts({store, hosts, command, concurrency: this.flags.concurrency, output, signal})
    const result = collected ? collected.result(runs) : runs
    const again = (names: string[]) =>
      reproduceCommand(['exec'], this.flags, {...Exec.baseFlags, ...Exec.flags} as Record<string, FlagShape>, {args: [...names, '--', ...command]})
    if (this.interrupted && runs.some((r) => r.interrupted))
      throw interruptedHostRuns(result, again(runs.filter((r) => r.interrupted).map((r) => r.name)), startedAt)
    return finishHostRuns(result, {verb: 'Ran on', startedAt, retry: again})
  }
}

/**
 * Patterns and command from the positional words in command-line order. Everything after the first
 * `--` of the raw argv is the command (oclif drops the `--` itself); without `--`, the first word is
 * the pattern and the rest the command.
 */
export function splitCommand(positional: readonly string[], rawArgv: readonly string[]): {patterns: string[]; command: string[]} {
  const dash = rawArgv.indexOf('--')
  if (dash === -1) return {patterns: positional.slice(0, 1), command: positional.slice(1)}
  const n = Math.min(rawArgv.length - dash - 1, positional.length)
  return {patterns: positional.slice(0, positional.length - n), command: positional.slice(positional.length - n)}
}
