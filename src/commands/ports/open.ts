import {BaseCommand} from '../../base-command.js'
import {changeClusterPorts, parsePorts, type ClusterPorts} from '../../services/ports.js'
import {LineReporter} from '../../ui/reporter.js'
import {portArgs, portsFlags, portsTable} from '../../ui/ports.js'

export default class PortsOpen extends BaseCommand<typeof PortsOpen> {
  static override summary = "Publish ports to any address on a cluster's cloud firewall"
  static override description = `The rule holds for every host of the cluster, present and future: a service published on those ports (docker service create -p 80:80 ...) is reachable on every host's address. Opening a port already open changes nothing. 22 and 2376 are refused: the admin CIDR governs them. The local and generic drivers have no cloud firewall.`
  static override examples = ['<%= config.bin %> ports open 80 443', '<%= config.bin %> ports open 53/udp --cluster dns', '<%= config.bin %> ports open 8000-8010/tcp']
  static override strict = false
  static override enableJsonFlag = true
  static override flags = portsFlags
  static override args = portArgs

  async run(): Promise<ClusterPorts[]> {
    const open = parsePorts(this.positional, 'belt ports open')
    const list = await changeClusterPorts({store: this.openStore(), cluster: this.flags.cluster, reporter: new LineReporter(), change: {open, close: []}})
    if (!this.jsonEnabled()) process.stdout.write(portsTable(list, false))
    return list
  }
}
