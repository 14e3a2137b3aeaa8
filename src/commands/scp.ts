import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {usageError} from '../errors.js'
import {refuseMovedHosts} from '../services/driver-context.js'
import {copyToHosts} from '../services/exec-hosts.js'
import {openHost} from '../services/host-access.js'
import {selectHosts} from '../services/select-hosts.js'
import {reproduceCommand, type FlagShape} from '../ui/command-line.js'
import {finishHostRuns, interruptedHostRuns, type HostRun} from '../ui/host-output.js'
import {copyFromRemote, copyToRemote, parseScpTarget} from '../ssh/transfer.js'

export default class Scp extends BaseCommand<typeof Scp> {
  static override summary = 'Copy files between this machine and a host over SFTP'
  static override description =
    "Exactly one side names a host as HOST:PATH. File modes are kept. A destination may name many hosts by pattern ('node*':/tmp/, node[1:3]:/tmp/): the upload goes to each host through a window of --concurrency connections, and belt exits 4 when any host failed, naming them with the command that retries only those."
  static override examples = [
    '<%= config.bin %> scp ./daemon.json node1:/etc/docker/daemon.json',
    '<%= config.bin %> scp -r node1:/var/log/apt ./apt-logs',
    "<%= config.bin %> scp ./app.env 'node*':/etc/app/",
  ]
  static override args = {
    source: Args.string({description: 'PATH or HOST:PATH', required: true}),
    destination: Args.string({description: 'PATH or HOST:PATH', required: true}),
  }
  static override flags = {
    recursive: Flags.boolean({char: 'r', description: 'copy directories recursively'}),
    concurrency: Flags.integer({char: 'c', description: 'hosts copied to at once, when the destination is a pattern', default: 16, min: 1}),
  }

  async run(): Promise<void | HostRun[]> {
    const src = parseScpTarget(this.args.source)
    const dst = parseScpTarget(this.args.destination)
    if (Boolean(src.host) === Boolean(dst.host))
      throw usageError('exactly one of SOURCE and DESTINATION must be HOST:PATH', 'E_SCP_TARGET', 'e.g. belt scp ./file node1:/tmp/file')
    if (src.pattern) throw usageError(`copy from one host at a time, not from ${src.host}`, 'E_SCP_TARGET', 'name one host as the source, e.g. belt scp node1:/etc/hostname ./')
    if (dst.pattern) return this.toMany(src.path, dst.host!, dst.path)
    const hostName = (src.host ?? dst.host)!
    const store = this.openStore()
    const record = await store.get(hostName)
    refuseMovedHosts([record])
    const remote = await openHost(store, record)
    try {
      if (dst.host) await copyToRemote(remote, src.path, dst.path, {recursive: this.flags.recursive})
      else await copyFromRemote(remote, src.path, dst.path, {recursive: this.flags.recursive})
    } finally {
      await remote.close()
    }
  }

  /** `belt scp SRC 'PATTERN:PATH'`: one upload per host, through a window. */
  private async toMany(local: string, pattern: string, remotePath: string): Promise<HostRun[]> {
    const store = this.openStore()
    const hosts = await selectHosts(store, [pattern])
    const startedAt = Date.now()
    const signal = this.interruptSignal()
    const done = (r: HostRun) => process.stderr.write(`${r.name}: ${r.ok ? `copied to ${remotePath}` : `failed: ${r.error ?? ''}`}\n`)
    const runs = await copyToHosts({store, hosts, local, remotePath, recursive: this.flags.recursive, concurrency: this.flags.concurrency, output: {done}, signal})
    // One destination names the hosts: the one host that failed, or the pattern again (an upload is idempotent).
    const again = (names: string[]) =>
      reproduceCommand(['scp'], this.flags, {...Scp.baseFlags, ...Scp.flags} as Record<string, FlagShape>, {args: [local, `${names.length === 1 ? names[0] : pattern}:${remotePath}`]})
    if (this.interrupted && runs.some((r) => r.interrupted)) throw interruptedHostRuns(runs, again(runs.filter((r) => r.interrupted).map((r) => r.name)), startedAt)
    return finishHostRuns(runs, {verb: 'Copied to', startedAt, retry: again})
  }
}
