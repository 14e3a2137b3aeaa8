import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {refuseMovedHosts} from '../services/driver-context.js'
import {openHost} from '../services/host-access.js'
import {runSsh} from '../ssh/session.js'

export default class Ssh extends BaseCommand<typeof Ssh> {
  static override summary = 'Log in to a host, or run a command on it'
  static override description =
    "The host key recorded for the host must match (a changed key is refused). With a command, belt exits with the command's exit code. Put -- before a command that has its own flags."
  static override examples = ['<%= config.bin %> ssh node1', '<%= config.bin %> ssh node3 hostname', '<%= config.bin %> ssh node1 -- ls -la /etc/docker']
  static override strict = false
  static override args = {
    name: Args.string({description: 'host name', required: true}),
    command: Args.string({description: 'command and arguments to run instead of a login shell'}),
  }

  async run(): Promise<void> {
    const [name, ...command] = this.positional
    const store = this.openStore()
    const record = await store.get(name!)
    refuseMovedHosts([record])
    const remote = await openHost(store, record)
    try {
      const code = await runSsh(remote, {
        command: command.length > 0 ? command : undefined,
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        tty: Boolean(process.stdin.isTTY && process.stdout.isTTY),
      })
      process.exitCode = code
    } finally {
      await remote.close()
    }
  }
}
