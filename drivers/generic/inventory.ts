import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parse as parseYaml} from 'yaml'
import type {DriverOptions} from '../driver.js'

/** One host of the generic driver, with every default applied. */
export interface GenericHost {
  readonly name?: string
  readonly address: string
  readonly user: string
  readonly port: number
  /** Absolute path of the private key, or undefined: the default keys of ~/.ssh are tried. */
  readonly key?: string
  readonly proxy?: ProxySpec
}

export interface ProxySpec {
  readonly user: string
  readonly host: string
  readonly port: number
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const USER = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i
const HOSTNAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i
const IPV6 = /^\[?[0-9a-f:.]+\]?$/i
const FIELDS = ['name', 'address', 'user', 'port', 'key', 'proxy'] as const

/** A problem with the options or the inventory: the caller turns it into a usage error. */
export class InventoryError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'InventoryError'
  }
}

export function parsePort(v: string | number | undefined, what: string): number {
  const s = String(v ?? '').trim()
  const n = Number(s)
  if (!/^[0-9]+$/.test(s) || n < 1 || n > 65_535) throw new InventoryError(`${what} must be a TCP port (1-65535), not '${s}'`)
  return n
}

function checkAddress(v: string, what: string): string {
  const a = v.trim()
  if (!a || !(HOSTNAME.test(a) || IPV6.test(a))) throw new InventoryError(`${what} must be an IP address or DNS name, not '${v}'`)
  return a.replace(/^\[(.*)\]$/, '$1')
}

function checkUser(v: string, what: string): string {
  if (!USER.test(v)) throw new InventoryError(`${what} must be a login name, not '${v}'`)
  return v
}

/** `user@host[:port]` (user defaults to `defaultUser`, port to 22). */
export function parseProxy(v: string, defaultUser: string, what = '--generic-ssh-proxy'): ProxySpec {
  const m = /^(?:([^@\s]+)@)?(\[[0-9a-f:.]+\]|[^:@\s[\]]+)(?::([^:]+))?$/i.exec(v.trim())
  if (!m) throw new InventoryError(`${what} must be user@host[:port], not '${v}'`)
  return {user: checkUser(m[1] ?? defaultUser, `the user of ${what}`), host: checkAddress(m[2]!, `the host of ${what}`), port: m[3] === undefined ? 22 : parsePort(m[3], `the port of ${what}`)}
}

/** `~/x` and relative paths made absolute (relative to `base`). */
export function keyPath(v: string, base: string): string {
  const p = v.trim()
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1))
  return path.resolve(base, p)
}

/** The host the flags describe (no inventory): `--generic-ip-address` and the others. */
export function hostFromOptions(o: DriverOptions): GenericHost {
  if (!o['ip-address']) throw new InventoryError('missing --generic-ip-address (or GENERIC_IP_ADDRESS)', 'name the host: --generic-ip-address ADDRESS, or many hosts with --generic-hosts FILE')
  const user = checkUser(o['ssh-user'] ?? 'root', '--generic-ssh-user')
  return {
    address: checkAddress(o['ip-address'], '--generic-ip-address'),
    user,
    port: parsePort(o['ssh-port'] ?? '22', '--generic-ssh-port'),
    key: o['ssh-key'] ? keyPath(o['ssh-key'], process.cwd()) : undefined,
    proxy: o['ssh-proxy'] ? parseProxy(o['ssh-proxy'], user) : undefined,
  }
}

type Row = Record<string, unknown>

/** The rows of a CSV text with a header line (`name,address,user,port,key,proxy`, any order). */
function csvRows(text: string, file: string): Array<{row: Row; where: string}> {
  const lines = text.split(/\r?\n/).map((l, i) => ({l: l.trim(), n: i + 1})).filter((x) => x.l && !x.l.startsWith('#'))
  if (lines.length === 0) return []
  const header = lines[0]!.l.split(',').map((h) => h.trim().toLowerCase())
  const unknown = header.filter((h) => !(FIELDS as readonly string[]).includes(h))
  if (unknown.length > 0 || !header.includes('name') || !header.includes('address'))
    throw new InventoryError(`${file}:${lines[0]!.n}: the CSV header must name the columns (name,address and optionally ${FIELDS.slice(2).join(',')})${unknown.length ? `, not '${unknown[0]}'` : ''}`)
  return lines.slice(1).map(({l, n}) => {
    const cells = l.split(',').map((c) => c.trim())
    if (cells.length > header.length) throw new InventoryError(`${file}:${n}: ${cells.length} values for ${header.length} columns (values cannot hold commas)`)
    const row: Row = {}
    header.forEach((h, i) => {
      if (cells[i]) row[h] = cells[i]
    })
    return {row, where: `${file}:${n}`}
  })
}

/** The rows of a YAML or JSON inventory: a list of hosts, or `{hosts: [...]}`. */
function documentRows(text: string, file: string, json: boolean): Array<{row: Row; where: string}> {
  let doc: unknown
  try {
    doc = json ? JSON.parse(text) : parseYaml(text)
  } catch (e) {
    throw new InventoryError(`${file}: not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`)
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as Row).hosts) ? ((doc as Row).hosts as unknown[]) : undefined
  if (!list) throw new InventoryError(`${file}: expected a list of hosts (or 'hosts:' with a list)`)
  return list.map((row, i) => {
    if (!row || typeof row !== 'object' || Array.isArray(row)) throw new InventoryError(`${file}: host ${i + 1} is not a mapping of name, address, ...`)
    return {row: row as Row, where: `${file}: host ${i + 1}`}
  })
}

/**
 * The hosts of an inventory file, in its order, with the flags as defaults. Every problem is an
 * {@link InventoryError} naming the file and the line (CSV) or host number: nothing is half-read.
 */
export function parseInventory(text: string, file: string, defaults: DriverOptions): GenericHost[] {
  const ext = path.extname(file).toLowerCase()
  const trimmed = text.trimStart()
  const rows =
    ext === '.csv' ? csvRows(text, file) : documentRows(text, file, ext === '.json' || (ext !== '.yaml' && ext !== '.yml' && (trimmed.startsWith('[') || trimmed.startsWith('{'))))
  if (rows.length === 0) throw new InventoryError(`${file} lists no host`)
  const base = path.dirname(path.resolve(file))
  const seen = new Map<string, string>()
  return rows.map(({row, where}) => {
    for (const k of Object.keys(row)) if (!(FIELDS as readonly string[]).includes(k)) throw new InventoryError(`${where}: unknown field '${k}' (fields: ${FIELDS.join(', ')})`)
    const str = (k: string): string | undefined => (row[k] === undefined || row[k] === null || row[k] === '' ? undefined : String(row[k]))
    const name = str('name')
    if (!name || !LABEL.test(name)) throw new InventoryError(`${where}: name must be a DNS label (a-z, 0-9, -), not '${name ?? ''}'`)
    if (seen.has(name)) throw new InventoryError(`${where}: name ${name} is also ${seen.get(name)}`)
    seen.set(name, where)
    const address = str('address')
    if (!address) throw new InventoryError(`${where}: ${name} has no address`)
    const user = checkUser(str('user') ?? defaults['ssh-user'] ?? 'root', `${where}: user`)
    const key = str('key') ?? defaults['ssh-key']
    const proxy = str('proxy') ?? defaults['ssh-proxy']
    return {
      name,
      address: checkAddress(address, `${where}: address`),
      user,
      port: parsePort(str('port') ?? defaults['ssh-port'] ?? '22', `${where}: port`),
      key: key ? keyPath(key, str('key') ? base : process.cwd()) : undefined,
      proxy: proxy ? parseProxy(proxy, user, `${where}: proxy`) : undefined,
    }
  })
}

export async function readInventory(file: string, defaults: DriverOptions): Promise<GenericHost[]> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (e) {
    throw new InventoryError(`cannot read the inventory ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'pass --generic-hosts with the path of a YAML, JSON or CSV file')
  }
  return parseInventory(text, file, defaults)
}

/** The default private keys, in the order tried (the first that exists is used). */
export const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) => path.join(os.homedir(), '.ssh', k))
