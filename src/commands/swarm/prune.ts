import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {PartialFailure} from '../../errors.js'
import type {GhostEntry, SwarmPruneResult} from '../../services/swarm.js'
import {renderTable} from '../../ui/table.js'

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

function table(list: readonly (GhostEntry & {error?: string})[], withError = false): string {
  return renderTable(
    ['ID', 'HOSTNAME', 'STATUS', 'CREATED', withError ? 'ERROR' : 'WHY'],
    list.map((g) => [g.id.slice(0, 12), g.hostname ?? '', cap(g.state), g.createdAt?.replace(/\.\d+Z$/, 'Z') ?? '', withError ? (g.error ?? '') : g.why]),
  )
}

export default class SwarmPrune extends BaseCommand<typeof SwarmPrune> {
  static override summary = "Remove ghost entries from the swarm's node list (joins that never completed)"
  static override description =
    "Like docker's prune commands, it removes what nothing uses: node entries with no hostname and status Unknown or Down, a minute old or more, while no host of the store is joining (a join that asked for its certificate and never reached a manager's dispatcher: Docker keeps such entries for ever), and Down entries whose hostname is Ready under another node ID. Real Down nodes (a stopped host) are listed and never removed. belt create --swarm, swarm init and swarm join do this for their own joins."
  static override examples = ['<%= config.bin %> swarm prune', '<%= config.bin %> swarm prune --dry-run', '<%= config.bin %> swarm prune --json']
  static override enableJsonFlag = true
  static override flags = {
    cluster: Flags.string({description: 'the swarm of this cluster', env: 'BELT_CLUSTER'}),
    'dry-run': Flags.boolean({description: 'only list what would be removed'}),
  }

  async run(): Promise<SwarmPruneResult> {
    const {swarmPrune} = await import('../../services/swarm.js')
    const r = await swarmPrune({store: this.openStore(), cluster: this.flags.cluster, dryRun: this.flags['dry-run']})
    if (!this.jsonEnabled()) {
      const out = process.stdout
      if (r.removed.length > 0) out.write(`${r.dryRun ? 'Would remove' : 'Removed'} ${plural(r.removed.length, 'ghost entry', 'ghost entries')}:\n${table(r.removed)}`)
      else out.write("No ghost entries in the swarm's node list.\n")
      if (r.failed.length > 0) out.write(`Could not remove ${plural(r.failed.length, 'entry', 'entries')}:\n${table(r.failed, true)}`)
      if (r.kept.length > 0) out.write(`Kept ${plural(r.kept.length, 'entry', 'entries')} with no hostname (run belt swarm prune again once no join is in progress):\n${table(r.kept)}`)
      if (r.down.length > 0) {
        out.write(`Down, not removed (real nodes): ${plural(r.down.length, 'node', 'nodes')}\n`)
        for (const d of r.down)
          out.write(
            d.host
              ? `  ${d.host} is ${cap(d.state)}: a host of the store; start it with belt start ${d.host}\n`
              : `  ${d.hostname} (${d.id.slice(0, 12)}) is ${cap(d.state)} and is not a host of the store; if that machine is gone: docker node rm ${d.id.slice(0, 12)}\n`,
          )
      }
    }
    if (r.failed.length > 0) throw new PartialFailure(`could not remove ${plural(r.failed.length, 'ghost entry', 'ghost entries')} from the node list`, r, 'belt swarm prune')
    return r
  }
}
