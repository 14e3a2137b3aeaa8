import {Args, Flags} from '@oclif/core'
import type {ClusterPorts} from '../services/ports.js'
import {renderTable} from './table.js'

/** The flags and arguments `belt ports open` and `close` share. */
export const portsFlags = {
  cluster: Flags.string({description: 'the cluster whose firewall to change', default: 'default', env: 'BELT_CLUSTER'}),
}
export const portArgs = {ports: Args.string({description: 'PORT[/tcp|udp] or FROM-TO[/tcp|udp], tcp by default (several may be given)', required: true})}

/** The rules as a table: PORTS, PROTOCOL, SOURCES, ROLE (published ones only unless `all`). */
export function portsTable(list: readonly ClusterPorts[], all: boolean): string {
  const several = list.length > 1
  const rows = list.flatMap((c) =>
    c.rules
      .filter((r) => all || r.role === 'published')
      .map((r) => [...(several ? [c.driver] : []), r.ports, r.protocol, r.sources.join(','), r.role]),
  )
  if (rows.length === 0) return all ? 'The cluster has no firewall yet.\n' : 'No published ports (belt ports ls --all shows the ports Belt itself opens).\n'
  return renderTable([...(several ? ['DRIVER'] : []), 'PORTS', 'PROTOCOL', 'SOURCES', 'ROLE'], rows)
}
