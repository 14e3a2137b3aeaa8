/**
 * The cluster file of `belt plan` / `belt apply` (YAML or JSON): parsed with `yaml` (line numbers
 * through its LineCounter) and checked by ONE zod schema, from which `schema/cluster.schema.json`
 * is generated (`node scripts/cluster-schema.mjs`; a unit test checks the committed file is that
 * output). Every problem is one line naming the file, line, column and field; nothing is touched.
 */
import {readFile} from 'node:fs/promises'
import {isMap, LineCounter, parseDocument, type Node as YamlNode} from 'yaml'
import {z} from 'zod'
import {drivers, findDriver, type DriverLookup} from '../../drivers/registry.js'
import type {EngineConfig} from '../bootstrap/commands.js'
import {UserError, ExitCode} from '../errors.js'
import {labelProblem} from '../names.js'
import {MAX_MANAGERS} from '../swarm/plan.js'

/** Swarm node label keys and engine label keys: docker's own rule is loose; Belt keeps them printable, no '='. */
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/
const labelMap = z.record(z.string().regex(LABEL_KEY, 'a label key is letters, digits and . _ / - (no = or space)'), z.string()).describe('KEY: VALUE')
const scalar = z.union([z.string(), z.number(), z.boolean()])
const optionMap = z.record(z.string(), scalar).describe('driver option name (without the --<driver>- prefix): value')
const dnsLabel = (what: string) =>
  z.string().superRefine((s, ctx) => {
    const p = labelProblem(s, what)
    if (p) ctx.addIssue({code: 'custom', message: p})
  })

export const clusterFileSchema = z
  .object({
    $schema: z.string().optional().describe('the JSON Schema of this file, for editors'),
    cluster: dnsLabel('cluster name').describe('the cluster the hosts belong to (shared SSH key and cloud resources)'),
    // Checked against the registry after the schema (the schema stays the same as drivers are added).
    driver: z.string().describe('driver that creates the hosts: local, digitalocean, amazonec2, ... (belt create --help lists them)'),
    driverOptions: optionMap.optional(),
    engine: z
      .object({
        version: z.string().optional().describe('engine package version to install where none is present, e.g. 20.10.24'),
        labels: labelMap.optional().describe('engine labels (provider=<driver> is always set)'),
        options: z.record(z.string(), z.union([scalar, z.array(scalar)])).optional().describe('daemon.json keys, e.g. log-level: warn'),
        insecureRegistries: z.array(z.string()).optional(),
        registryMirrors: z.array(z.string()).optional(),
        storageDriver: z.string().optional(),
        installUrl: z.string().optional().describe('install the engine with this script instead of the distribution packages'),
        installProxy: z.string().optional(),
      })
      .strict()
      .optional(),
    swarm: z
      .object({
        managers: z.number().int().min(1).max(MAX_MANAGERS).optional().describe('managers in the swarm: the manager groups\' counts add up to it'),
        joinConcurrency: z.number().int().min(1).optional(),
        managerAvailability: z.enum(['auto', 'active', 'drain']).optional(),
        ingress: z.boolean().optional(),
        advertiseAddrType: z.enum(['auto', 'public', 'private']).optional(),
      })
      .strict()
      .optional(),
    groups: z
      .array(
        z
          .object({
            name: dnsLabel('group name'),
            role: z.enum(['manager', 'worker']),
            count: z.number().int().min(0).max(1000),
            names: z
              .string()
              .regex(/\{n(:\d)?\}/, 'a names pattern holds {n} (or {n:3} for three digits), e.g. web-{n}')
              .optional()
              .describe('host names: {n} is the number from 1, {n:3} pads it; default <name>{n}'),
            labels: labelMap.optional().describe('swarm node labels'),
            driverOptions: optionMap.optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict()

export type ClusterFile = z.infer<typeof clusterFileSchema>

/** One group, resolved: its host names in order. */
export interface GroupSpec {
  name: string
  role: 'manager' | 'worker'
  count: number
  /** Host names wanted, index 1..count. */
  hosts: string[]
  /** The names pattern (`web{n}`); hosts matching it belong to the group. */
  pattern: string
  labels: Record<string, string>
  /** File options merged with the group's (strings). */
  driverOptions: Record<string, string>
}

/** A valid cluster file, resolved. */
export interface ClusterSpec {
  file: string
  cluster: string
  driver: string
  engine: EngineConfig
  swarm: {managers: number; joinConcurrency?: number; managerAvailability?: 'auto' | 'active' | 'drain'; ingress?: boolean; advertiseAddrType?: 'auto' | 'public' | 'private'}
  groups: GroupSpec[]
}

/** The host name of index `i` in a names pattern (`web{n}`, `web-{n:3}`). */
export function nameAt(pattern: string, i: number): string {
  return pattern.replace(/\{n(?::(\d))?\}/g, (_, w: string | undefined) => String(i).padStart(w ? Number(w) : 0, '0'))
}

/** The index of `name` in a names pattern, or undefined when it is not one of its names. */
export function indexIn(pattern: string, name: string): number | undefined {
  const parts = pattern.split(/(\{n(?::\d)?\})/)
  const re = new RegExp('^' + parts.map((p) => (/^\{n/.test(p) ? '(\\d+)' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('') + '$')
  const m = re.exec(name)
  if (!m) return undefined
  const i = Number(m[1])
  return i >= 1 && nameAt(pattern, i) === name ? i : undefined
}

/** `k: v` maps to docker-machine's `k=v` lists, sorted (the shape records keep). */
const pairs = (m: Record<string, string | number | boolean | (string | number | boolean)[]> | undefined): string[] =>
  Object.entries(m ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}=${x}`) : [`${k}=${v}`]))
    .sort()

export class ClusterFileError extends UserError {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'), {code: 'E_CLUSTER_FILE', exit: ExitCode.usage})
  }
}

/** Reads and checks a cluster file. Throws a ClusterFileError (exit 2), one line per problem. */
export async function loadClusterFile(file: string, lookup: DriverLookup = findDriver): Promise<ClusterSpec> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ClusterFileError([`${file}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`])
  }
  return parseClusterFile(text, file, lookup)
}

/** Checks the text of a cluster file (see {@link loadClusterFile}). */
export function parseClusterFile(text: string, file: string, lookup: DriverLookup = findDriver): ClusterSpec {
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true})
  const at = (offset: number | undefined) => {
    if (offset === undefined) return `${file}`
    const p = lines.linePos(offset)
    return `${file}:${p.line}:${p.col}`
  }
  if (doc.errors.length > 0) throw new ClusterFileError(doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split('\n')[0]}`))
  const problems: string[] = []
  /** Where a path is: the node (or its key, for an unknown key), else its nearest ancestor. */
  const locate = (path: readonly PropertyKey[], key?: string): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : (doc.getIn(path.slice(0, n) as (string | number)[], true) as YamlNode | undefined)
      if (!node || typeof node !== 'object' || !('range' in node)) continue
      if (key !== undefined && n === path.length && isMap(node)) {
        const item = node.items.find((i) => (i.key as {value?: unknown})?.value === key)
        const k = item?.key as YamlNode | undefined
        if (k?.range) return k.range[0]
      }
      return node.range?.[0]
    }
    return undefined
  }
  const field = (path: readonly PropertyKey[]) => path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '') || '(top)'
  const add = (path: readonly PropertyKey[], message: string, key?: string) => problems.push(`${at(locate(path, key))}: ${field(key ? [...path, key] : path)}: ${message}`)

  const data: unknown = doc.toJS()
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ClusterFileError([`${at(0)}: (top): a cluster file is a mapping with cluster, driver and groups`])
  const parsed = clusterFileSchema.safeParse(data, {reportInput: true})
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') for (const k of issue.keys) add(issue.path, `unknown field`, k)
      else if (issue.code === 'invalid_type' && issue.input === undefined) add(issue.path, 'required')
      else add(issue.path, issue.message)
    }
    throw new ClusterFileError(problems)
  }
  const f = parsed.data
  const entry = lookup(f.driver)
  if (!entry) {
    add(['driver'], `no driver '${f.driver}': choose one of ${drivers.map((d) => d.name).join(', ')}`)
    throw new ClusterFileError(problems)
  }
  const checkOptions = (opts: Record<string, unknown> | undefined, path: (string | number)[]) => {
    for (const k of Object.keys(opts ?? {})) {
      const o = entry.options.find((x) => x.name === k)
      if (!o) add(path, `${f.driver} has no option '${k}' (it has: ${entry.options.map((x) => x.name).join(', ')})`, k)
      else if (o.secret) add(path, `'${k}' is a secret and never goes into a file: set ${o.env ?? `--${f.driver}-${k}`} in the environment instead`, k)
      else if (o.choices && !o.choices.includes(String(opts![k]))) add([...path, k], `must be one of ${o.choices.join(', ')}`)
    }
  }
  checkOptions(f.driverOptions, ['driverOptions'])
  const seenGroups = new Map<string, number>()
  const owner = new Map<string, string>()
  const groups: GroupSpec[] = f.groups.map((g, i) => {
    if (seenGroups.has(g.name)) add(['groups', i, 'name'], `group '${g.name}' is already defined at groups[${seenGroups.get(g.name)}]`)
    seenGroups.set(g.name, i)
    checkOptions(g.driverOptions, ['groups', i, 'driverOptions'])
    const pattern = g.names ?? `${g.name}{n}`
    const hosts = Array.from({length: g.count}, (_, k) => nameAt(pattern, k + 1))
    for (const h of hosts) {
      const p = labelProblem(h)
      if (p) {
        add(['groups', i, g.names ? 'names' : 'name'], p)
        break
      }
      if (owner.has(h)) {
        add(['groups', i, g.names ? 'names' : 'name'], `host ${h} is also a host of group ${owner.get(h)}: give one of them a names: pattern`)
        break
      }
      owner.set(h, g.name)
    }
    const driverOptions = Object.fromEntries(Object.entries({...f.driverOptions, ...g.driverOptions}).map(([k, v]) => [k, String(v)]))
    return {name: g.name, role: g.role, count: g.count, hosts, pattern, labels: g.labels ?? {}, driverOptions}
  })
  // A host name that the names pattern of another group also matches would belong to two groups.
  if (problems.length === 0)
    for (const [i, g] of groups.entries())
    for (const other of groups)
      if (other !== g && g.hosts.some((h) => indexIn(other.pattern, h) !== undefined)) add(['groups', i, f.groups[i]!.names ? 'names' : 'name'], `its host names also match group ${other.name}'s (${other.pattern}): give one of them a names: pattern`)
  const managers = groups.filter((g) => g.role === 'manager').reduce((s, g) => s + g.count, 0)
  if (managers === 0) add(['groups'], 'no manager: a swarm needs a group with role: manager and count 1 or more')
  else if (managers % 2 === 0 || managers > MAX_MANAGERS) add(['groups'], `the manager groups add up to ${managers}: a swarm's managers are odd and at most ${MAX_MANAGERS} (1, 3, 5 or 7)`)
  if (f.swarm?.managers !== undefined && f.swarm.managers !== managers) add(['swarm', 'managers'], `is ${f.swarm.managers} but the manager groups add up to ${managers}`)
  if (problems.length > 0) throw new ClusterFileError(problems)
  const e = f.engine ?? {}
  return {
    file,
    cluster: f.cluster,
    driver: f.driver,
    engine: {
      labels: pairs(e.labels),
      opts: pairs(e.options),
      insecureRegistries: [...(e.insecureRegistries ?? [])].sort(),
      registryMirrors: [...(e.registryMirrors ?? [])].sort(),
      ...(e.storageDriver ? {storageDriver: e.storageDriver} : {}),
      ...(e.version ? {version: e.version} : {}),
      ...(e.installUrl ? {installUrl: e.installUrl} : {}),
      ...(e.installProxy ? {installProxy: e.installProxy} : {}),
    },
    swarm: {...f.swarm, managers},
    groups,
  }
}

/** The JSON Schema of cluster files, generated from the zod schema (the one source of truth). */
export function clusterJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(clusterFileSchema, {target: 'draft-2020-12', io: 'input'}) as Record<string, unknown>
  return {
    ...s,
    $id: 'https://github.com/belt-cli/belt/blob/main/schema/cluster.schema.json',
    title: 'Belt cluster file (belt plan / belt apply -f)',
  }
}
