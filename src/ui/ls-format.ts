import {usageError} from '../errors.js'
import type {HostView} from '../services/list-hosts.js'
import {renderTable} from './table.js'

/** The `belt ls --format` placeholders: docker-machine's, plus Belt's Cluster and Address. */
export const LS_FIELDS = {
  Name: {header: 'NAME', value: (h: HostView) => h.name},
  Active: {header: 'ACTIVE', value: (h: HostView) => (h.active ? '*' : '-')},
  ActiveHost: {header: 'ACTIVE HOST', value: (h: HostView) => String(h.active)},
  DriverName: {header: 'DRIVER', value: (h: HostView) => h.driver},
  State: {header: 'STATE', value: (h: HostView) => h.state},
  URL: {header: 'URL', value: (h: HostView) => h.url ?? ''},
  Swarm: {header: 'SWARM', value: (h: HostView) => h.swarm ?? ''},
  DockerVersion: {header: 'DOCKER', value: (h: HostView) => dockerColumn(h)},
  Error: {header: 'ERRORS', value: (h: HostView) => h.errors.join('; ')},
  ResponseTime: {header: 'RESPONSE', value: (h: HostView) => (h.responseMs === undefined ? '' : `${h.responseMs}ms`)},
  Cluster: {header: 'CLUSTER', value: (h: HostView) => h.cluster},
  Address: {header: 'ADDRESS', value: (h: HostView) => h.address ?? ''},
} as const satisfies Record<string, {header: string; value: (h: HostView) => string}>

export type LsField = keyof typeof LS_FIELDS

/** The DOCKER column as docker-machine prints it: `v29.1.3`, `Unknown`, or empty. */
export function dockerColumn(h: HostView): string {
  const v = h.dockerVersion ?? ''
  return v === '' || v === 'Unknown' ? v : `v${v}`
}

type Piece = string | {field: LsField}

/** A parsed `--format`: `table` or not, and the pieces of one line. */
export interface LsFormat {
  table: boolean
  pieces: Piece[]
  fields: Set<LsField>
}

/**
 * Parses a Go-template-like `--format` as docker-machine's `ls` takes it: `{{.Field}}` placeholders
 * (spaces inside the braces allowed), `\t` and `\n` escapes, and a leading `table` for aligned
 * columns under headers. Anything else between braces is a usage error naming the fields.
 */
export function parseLsFormat(format: string): LsFormat {
  let text = format
  const table = /^table(\s|$)/.test(text)
  if (table) text = text.replace(/^table\s*/, '')
  if (table && text === '') text = '{{.Name}}\\t{{.Active}}\\t{{.DriverName}}\\t{{.State}}\\t{{.URL}}\\t{{.Swarm}}\\t{{.DockerVersion}}\\t{{.Error}}'
  text = text.replace(/\\t/g, '\t').replace(/\\n/g, '\n')
  const pieces: Piece[] = []
  const fields = new Set<LsField>()
  const re = /\{\{(.*?)\}\}/g
  let last = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) pieces.push(text.slice(last, m.index))
    const inner = /^\s*\.([A-Za-z]+)\s*$/.exec(m[1]!)
    const name = inner?.[1]
    if (!name || !Object.hasOwn(LS_FIELDS, name))
      throw usageError(`--format: unknown placeholder {{${m[1]}}}`, 'E_FORMAT', `use ${Object.keys(LS_FIELDS).map((f) => `{{.${f}}}`).join(' ')}`)
    pieces.push({field: name as LsField})
    fields.add(name as LsField)
    last = re.lastIndex
  }
  if (last < text.length) pieces.push(text.slice(last))
  if (/\{\{|\}\}/.test(pieces.filter((p) => typeof p === 'string').join(''))) throw usageError('--format: unbalanced {{ }}', 'E_FORMAT')
  return {table, pieces, fields}
}

/** Renders hosts through a parsed format: one line per host, or an aligned table with headers. */
export function renderLsFormat(f: LsFormat, hosts: readonly HostView[]): string {
  const line = (cell: (field: LsField) => string) => f.pieces.map((p) => (typeof p === 'string' ? p : cell(p.field))).join('')
  if (!f.table) return hosts.map((h) => line((k) => LS_FIELDS[k].value(h)) + '\n').join('')
  const header = line((k) => LS_FIELDS[k].header).split('\t')
  const rows = hosts.map((h) => line((k) => LS_FIELDS[k].value(h)).split('\t'))
  return renderTable(header, rows)
}
