import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {listClusterPorts, type ClusterPorts} from '../../services/ports.js'
import {LineReporter} from '../../ui/reporter.js'
import {portsTable} from '../../ui/ports.js'

export default class PortsLs extends BaseCommand<typeof PortsLs> {
  static override summary = "List the ports published on a cluster's cloud firewall"
  static override description = `Published ports are open to any address on every host of the cluster (DigitalOcean: the firewall belt-<cluster>; EC2: the security group belt-<cluster>). --all adds the rules Belt itself keeps: SSH (22/tcp) and the Docker TLS API (2376/tcp) from the admin CIDR, and the swarm ports (2377/tcp, 7946/tcp+udp, 4789/udp) between the cluster's hosts only. The local and generic drivers have no cloud firewall.`
  static override examples = ['<%= config.bin %> ports ls', '<%= config.bin %> ports ls --all --cluster web', '<%= config.bin %> ports ls --json']
  static override aliases = ['ports:list']
  static override enableJsonFlag = true
  static override flags = {
    cluster: Flags.string({description: 'the cluster whose firewall to list', default: 'default', env: 'BELT_CLUSTER'}),
    all: Flags.boolean({char: 'a', description: "also list Belt's own rules (SSH, Docker TLS, swarm ports)"}),
  }

  async run(): Promise<ClusterPorts[]> {
    const list = await listClusterPorts({store: this.openStore(), cluster: this.flags.cluster, reporter: new LineReporter()})
    if (!this.jsonEnabled()) process.stdout.write(portsTable(list, this.flags.all))
    return list
  }
}
