import {labelProblem} from '../names.js'

/*
 * The shape of a host record (types.ts, current schemaVersion), checked every time a record is read,
 * after migrate(): a record that would crash a command (`"machine": {}`) is reported as corrupt,
 * naming the field. Objects are loose: keys this version does not know are kept, never stripped.
 *
 * Hand-written rather than a zod schema: importing zod was about a third of the start-up of `belt ip`
 * (README "Benchmarks"). The messages are zod's, and test/unit/record-schema.test.ts holds this
 * checker to the zod schema it replaced (test/fixtures/record-zod-schema.ts) on the same records:
 * same first problem, same count. A field added to HostRecord is added here and there.
 */

type Key = string | number
interface Issue {
  path: Key[]
  message: string
}
type Check = (v: unknown, path: Key[], issues: Issue[]) => void

/** zod's name for what it received. */
function received(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
  return typeof v
}
const expected = (what: string, v: unknown) => `Invalid input: expected ${what}, received ${received(v)}`
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

const string: Check = (v, path, issues) => {
  if (typeof v !== 'string') issues.push({path, message: expected('string', v)})
}
const text: Check = (v, path, issues) => {
  if (typeof v === 'string') {
    if (v.length < 1) issues.push({path, message: 'Too small: expected string to have >=1 characters'})
    return
  }
  issues.push({path, message: expected('string', v)})
  // zod checks the length of anything that has one, a string or not (so that the count agrees).
  const length = v === null || v === undefined ? undefined : (v as {length?: unknown}).length
  if (length !== undefined && !((length as number) >= 1))
    issues.push({path, message: Array.isArray(v) ? 'Too small: expected array to have >=1 items' : 'Too small: expected unknown to be >=1'})
}
const label =
  (what: string): Check =>
  (v, path, issues) => {
    if (typeof v !== 'string') return void issues.push({path, message: expected('string', v)})
    const problem = labelProblem(v, what)
    if (problem) issues.push({path, message: problem})
  }
const boolean: Check = (v, path, issues) => {
  if (typeof v !== 'boolean') issues.push({path, message: expected('boolean', v)})
}
const int =
  (min?: number, max?: number): Check =>
  (v, path, issues) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return void issues.push({path, message: expected('number', v)})
    if (!Number.isInteger(v)) return void issues.push({path, message: expected('int', v)})
    if (v > Number.MAX_SAFE_INTEGER) issues.push({path, message: `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`})
    if (v < Number.MIN_SAFE_INTEGER) issues.push({path, message: `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`})
    if (min !== undefined && v < min) issues.push({path, message: `Too small: expected number to be >=${min}`})
    if (max !== undefined && v > max) issues.push({path, message: `Too big: expected number to be <=${max}`})
  }
const oneOf =
  (values: readonly string[]): Check =>
  (v, path, issues) => {
    if (typeof v !== 'string' || !values.includes(v)) issues.push({path, message: `Invalid option: expected one of ${values.map((x) => JSON.stringify(x)).join('|')}`})
  }
const array =
  (item: Check): Check =>
  (v, path, issues) => {
    if (!Array.isArray(v)) return void issues.push({path, message: expected('array', v)})
    v.forEach((x, i) => item(x, [...path, i], issues))
  }
const record =
  (value?: Check): Check =>
  (v, path, issues) => {
    if (!isPlainObject(v)) return void issues.push({path, message: expected('record', v)})
    if (value) for (const k of Object.keys(v)) value(v[k], [...path, k], issues)
  }
/** Marks a field that may be absent. */
const optional = (check: Check): Check & {optional: true} => Object.assign<Check, {optional: true}>((v, p, i) => check(v, p, i), {optional: true})
/** A loose object: the listed fields are checked in order, other keys are kept as they are. */
const object =
  (shape: Record<string, Check & {optional?: boolean}>): Check =>
  (v, path, issues) => {
    if (!isPlainObject(v)) return void issues.push({path, message: expected('object', v)})
    for (const [k, check] of Object.entries(shape)) {
      const x = v[k]
      if (x === undefined && check.optional) continue
      check(x, [...path, k], issues)
    }
  }

const stringList = array(string)

const machine = object({
  id: text,
  address: text,
  privateAddress: optional(string),
  ssh: object({user: text, port: int(1, 65_535)}),
  hostKeys: optional(stringList),
  data: record(),
})

const engine = object({
  url: text,
  id: string,
  name: string,
  serverVersion: string,
  labels: stringList,
  config: object({
    labels: stringList,
    opts: stringList,
    insecureRegistries: stringList,
    registryMirrors: stringList,
    storageDriver: optional(string),
    version: optional(string),
    installUrl: optional(string),
    installProxy: optional(string),
    env: optional(stringList),
  }),
  certNotAfter: optional(string),
  certFingerprint: optional(string),
  installed: optional(boolean),
})

const hostRecord = object({
  schemaVersion: int(),
  name: label('host name'),
  cluster: label('cluster name'),
  driver: text,
  driverOptions: record(string),
  phase: oneOf(['reserved', 'creating', 'created', 'bootstrapping', 'bootstrapped', 'joined', 'removing', 'error']),
  machine: optional(machine),
  hostKeys: optional(stringList),
  resources: array(object({kind: string, id: string, at: string})),
  owner: optional(object({pid: int(), since: string})),
  error: optional(object({phase: string, message: string, at: string})),
  times: object({
    createRequested: optional(string),
    addressKnown: optional(string),
    sshUp: optional(string),
    engineReady: optional(string),
    joined: optional(string),
  }),
  engine: optional(engine),
  swarm: optional(object({clusterId: optional(string), nodeId: optional(string), role: optional(oneOf(['manager', 'worker'])), advertiseAddr: optional(string)})),
  createdAt: string,
  updatedAt: string,
})

/**
 * Why `data` is not a valid host record, as `field.path: problem` (the first problem, and how many
 * more there are), or undefined when it is one.
 */
export function recordProblem(data: unknown): string | undefined {
  const issues: Issue[] = []
  hostRecord(data, [], issues)
  const first = issues[0]
  if (!first) return undefined
  const where = first.path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '')
  const what = first.message.replace(/^Invalid input: /, '')
  return `${where || 'the record'}: ${what}` + (issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length === 2 ? '' : 's'})` : '')
}
