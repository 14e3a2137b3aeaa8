import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {usageError} from '../errors.js'
import {refuseMovedHosts} from '../services/driver-context.js'
import {openHost} from '../services/host-access.js'
import {copyFromRemote, copyToRemote, parseScpTarget} from '../ssh/transfer.js'

export default class Scp extends BaseCommand<typeof Scp> {
  static override summary = 'Copy files between this machine and a host over SFTP'
  static override description = 'Exactly one side names a host as HOST:PATH. File modes are kept.'
  static override examples = ['<%= config.bin %> scp ./daemon.json node1:/etc/docker/daemon.json', '<%= config.bin %> scp -r node1:/var/log/apt ./apt-logs']
  static override args = {
    source: Args.string({description: 'PATH or HOST:PATH', required: true}),
    destination: Args.string({description: 'PATH or HOST:PATH', required: true}),
  }
  static override flags = {
    recursive: Flags.boolean({char: 'r', description: 'copy directories recursively'}),
  }

  async run(): Promise<void> {
    const src = parseScpTarget(this.args.source)
    const dst = parseScpTarget(this.args.destination)
    if (Boolean(src.host) === Boolean(dst.host))
      throw usageError('exactly one of SOURCE and DESTINATION must be HOST:PATH', 'E_SCP_TARGET', 'e.g. belt scp ./file node1:/tmp/file')
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
}
