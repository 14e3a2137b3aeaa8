import {BaseCommand} from '../../base-command.js'
import {changeClusterPorts, parsePorts, type ClusterPorts} from '../../services/ports.js'
import {LineReporter} from '../../ui/reporter.js'
import {portArgs, portsFlags, portsTable} from '../../ui/ports.js'

export default class PortsClose extends BaseCommand<typeof PortsClose> {
  static override summary = "Withdraw published ports from a cluster's cloud firewall"
  static override description = `Removes the rules that open these ports to any address. Belt's own rules (SSH and Docker TLS from the admin CIDR, the swarm ports between the cluster's hosts) are never touched; closing a port that is not published changes nothing.`
  static override examples = ['<%= config.bin %> ports close 80', '<%= config.bin %> ports close 53/udp --cluster dns']
  static override strict = false
  static override enableJsonFlag = true
  static override flags = portsFlags
  static override args = portArgs

  async run(): Promise<ClusterPorts[]> {
    const close = parsePorts(this.positional, 'belt ports close')
    const list = await changeClusterPorts({store: this.openStore(), cluster: this.flags.cluster, reporter: new LineReporter(), change: {open: [], close}})
    if (!this.jsonEnabled()) process.stdout.write(portsTable(list, false))
    return list
  }
}
