import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {swarmStatus, type SwarmStatus} from '../../services/swarm.js'
import {renderTable} from '../../ui/table.js'

export default class SwarmStatusCommand extends BaseCommand<typeof SwarmStatusCommand> {
  static override summary = "Show the swarm's nodes as its managers see them"
  static override description =
    'Ready and Down counts, managers, leader and reachability, engine versions. Asks the managers of the inventory until one answers. Ghost entries (joins that never completed: no hostname, or an old entry of a host that is Ready under another ID) are listed apart and not counted; belt swarm prune removes them.'
  static override aliases = ['swarm:ls']
  static override examples = ['<%= config.bin %> swarm status', '<%= config.bin %> swarm ls --json', '<%= config.bin %> swarm status -q']
  static override enableJsonFlag = true
  static override flags = {
    cluster: Flags.string({description: 'the swarm of this cluster', env: 'BELT_CLUSTER'}),
    quiet: Flags.boolean({char: 'q', description: 'only the summary line'}),
  }

  async run(): Promise<SwarmStatus> {
    const s = await swarmStatus(this.openStore(), this.flags.cluster)
    if (this.jsonEnabled()) return s
    if (!this.flags.quiet) {
      const rows = s.nodes.map((n) => [
        n.host ?? n.hostname,
        n.role,
        n.state === 'ready' ? 'Ready' : n.state.charAt(0).toUpperCase() + n.state.slice(1),
        n.availability.charAt(0).toUpperCase() + n.availability.slice(1),
        n.role === 'manager' ? (n.leader ? 'Leader' : n.reachability === 'reachable' ? 'Reachable' : (n.reachability ?? 'Unknown')) : '',
        n.engineVersion ?? '',
      ])
      process.stdout.write(renderTable(['NAME', 'ROLE', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE'], rows))
      const entries = (list: SwarmStatus['ghosts']) =>
        renderTable(
          ['ID', 'HOSTNAME', 'STATUS', 'CREATED', 'WHY'],
          list.map((g) => [g.id.slice(0, 12), g.hostname ?? '', g.state.charAt(0).toUpperCase() + g.state.slice(1), g.createdAt?.replace(/\.\d+Z$/, 'Z') ?? '', g.why]),
        )
      if (s.ghosts.length > 0)
        process.stdout.write(`\nGhost entries: joins that never completed, not hosts (not counted below). Remove them with: belt swarm prune\n${entries(s.ghosts)}`)
      if (s.kept.length > 0) process.stdout.write(`\nEntries with no hostname that may be joins in progress (not counted below):\n${entries(s.kept)}`)
    }
    const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`
    process.stdout.write(
      `${s.nodes.length} nodes: ${s.ready} Ready, ${s.down} Down; ${s.managers} managers (${s.reachableManagers} reachable), leader ${s.leader ?? 'none'}` +
        (s.missing.length ? `; not listed: ${s.missing.join(', ')}` : '') +
        (s.ghosts.length ? `; ${plural(s.ghosts.length, 'ghost entry', 'ghost entries')} (belt swarm prune removes them)` : '') +
        (s.kept.length ? `; ${plural(s.kept.length, 'entry', 'entries')} with no hostname still joining` : '') +
        (s.ingress === 'deferred' ? '; ingress network not made yet (a run was cut off: belt swarm init makes it)' : s.ingress === 'none' ? '; no ingress network (no routing mesh)' : '') +
        '\n',
    )
    return s
  }
}
