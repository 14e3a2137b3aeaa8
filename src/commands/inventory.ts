import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {INVENTORY_FORMATS, buildInventory, type InventoryFormat} from '../services/inventory.js'

export default class Inventory extends BaseCommand<typeof Inventory> {
  static override summary = 'Export the hosts for Ansible, ssh and programs, with their pinned host keys'
  static override description = `Prints the hosts (every host, or those named by patterns) on stdout:
  json        Belt's own list: name, cluster, driver, phase, address, privateAddress, ssh {user, port, identityFile, proxy}, hostKeys, engineUrl, swarm {role, nodeId}
  ansible     Ansible's dynamic-inventory JSON: groups belt, cluster_<cluster>, driver_<driver>, swarm_managers, swarm_workers; _meta.hostvars with ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file and ansible_ssh_common_args that check host keys strictly against the exported known_hosts
  ssh-config  Host blocks for ssh -F FILE (or Include): HostName, User, Port, IdentityFile, UserKnownHostsFile (the export), StrictHostKeyChecking yes, and a ProxyCommand for a host behind a bastion
  known-hosts the pinned host keys in OpenSSH known_hosts format ([ADDRESS]:PORT when the port is not 22)

ansible and ssh-config write the pinned keys of every host of the store to --known-hosts FILE (default <store>/known_hosts) and point ssh at it, so that Ansible and plain ssh check each host's key exactly as Belt does; --known-hosts FILE also writes it with the other formats. Hosts not created yet are left out (with a warning) of all but json.

As an Ansible inventory script, a two-line wrapper does: #!/bin/sh + exec belt inventory "$@" (Ansible calls it with --list, and --host NAME).`
  static override examples = [
    '<%= config.bin %> inventory --format ansible > hosts.json',
    "<%= config.bin %> inventory --format ssh-config 'node*' > belt.ssh_config && ssh -F belt.ssh_config node1",
    '<%= config.bin %> inventory --format known-hosts > known_hosts',
    '<%= config.bin %> inventory --known-hosts ./known_hosts --format json',
  ]
  static override strict = false
  static override flags = {
    format: Flags.string({char: 'o', description: 'output format', options: [...INVENTORY_FORMATS], default: 'json'}),
    'known-hosts': Flags.file({description: 'write the pinned host keys of every host to this known_hosts file (and point ansible/ssh-config at it) [default: <store>/known_hosts]'}),
    list: Flags.boolean({description: "Ansible's inventory-script call: the same as --format ansible", exclusive: ['host']}),
    host: Flags.string({description: "Ansible's inventory-script call: one host's variables as JSON"}),
  }

  async run(): Promise<void> {
    const store = this.openStore()
    const ansible = this.flags.list || this.flags.host !== undefined
    const format = (ansible ? 'ansible' : this.flags.format) as InventoryFormat
    const patterns = this.flags.host !== undefined ? [this.flags.host] : this.positional
    const res = await buildInventory({
      store,
      patterns,
      format,
      knownHostsFile: this.flags['known-hosts'],
      writeKnownHosts: this.flags['known-hosts'] !== undefined,
    })
    for (const w of res.warnings) this.note(`Warning: ${w}`)
    if (this.flags.host !== undefined) {
      const vars = (JSON.parse(res.output) as {_meta: {hostvars: Record<string, unknown>}})._meta.hostvars[this.flags.host] ?? {}
      process.stdout.write(JSON.stringify(vars, null, 2) + '\n')
      return
    }
    process.stdout.write(res.output)
  }
}
