import {Args} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {refuseMovedHosts} from '../../services/driver-context.js'
import {openHost} from '../../services/host-access.js'
import {fingerprintOf} from '../../ssh/keys.js'

export default class SshKeysReset extends BaseCommand<typeof SshKeysReset> {
  static override summary = "Forget a host's recorded SSH host key and pin the key it presents now"
  static override description =
    'Use it only when you know why the key changed (the host was rebuilt): belt then trusts whatever key the host presents, and prints its fingerprint so you can compare it with the console.'
  static override examples = ['<%= config.bin %> ssh-keys reset node1']
  static override enableJsonFlag = true
  static override args = {name: Args.string({description: 'host name', required: true})}

  async run(): Promise<{name: string; fingerprint: string}> {
    const store = this.openStore()
    const before = await store.get(this.args.name)
    refuseMovedHosts([before])
    // The old key stays recorded until the host answers: a failed attempt loses nothing.
    const remote = await openHost(store, {...before, hostKeys: undefined})
    await remote.close()
    const after = await store.get(this.args.name)
    const fingerprint = after.hostKeys?.[0] ? fingerprintOf(after.hostKeys[0]) : 'none'
    this.note(`${after.name}: pinned host key ${fingerprint}`)
    return {name: after.name, fingerprint}
  }
}
