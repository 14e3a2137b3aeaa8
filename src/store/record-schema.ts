import {z} from 'zod'
import {labelProblem} from '../names.js'

/*
 * The shape of a host record (types.ts, current schemaVersion) as a zod schema, checked every time
 * a record is read, after migrate(): a record that would crash a command (`"machine": {}`) is
 * reported as corrupt, naming the field. Objects are loose: keys this version does not know are
 * kept, never stripped (the record returned is the one read, not zod's copy). Loaded lazily by
 * store.ts, so that commands that read no record do not pay for zod at start-up.
 */

const label = (what: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = labelProblem(v, what)
    if (problem) ctx.addIssue({code: 'custom', message: problem})
  })
const text = z.string().min(1)
const stringList = z.array(z.string())

const machine = z.looseObject({
  id: text,
  address: text,
  privateAddress: z.string().optional(),
  ssh: z.looseObject({user: text, port: z.number().int().min(1).max(65_535)}),
  hostKeys: stringList.optional(),
  data: z.record(z.string(), z.unknown()),
})

const engine = z.looseObject({
  url: text,
  id: z.string(),
  name: z.string(),
  serverVersion: z.string(),
  labels: stringList,
  config: z.looseObject({
    labels: stringList,
    opts: stringList,
    insecureRegistries: stringList,
    registryMirrors: stringList,
    storageDriver: z.string().optional(),
    version: z.string().optional(),
    installUrl: z.string().optional(),
    installProxy: z.string().optional(),
  }),
  certNotAfter: z.string().optional(),
  certFingerprint: z.string().optional(),
  installed: z.boolean().optional(),
})

const phase = z.enum(['reserved', 'creating', 'created', 'bootstrapping', 'bootstrapped', 'joined', 'removing', 'error'])

export const hostRecordSchema = z.looseObject({
  schemaVersion: z.number().int(),
  name: label('host name'),
  cluster: label('cluster name'),
  driver: text,
  driverOptions: z.record(z.string(), z.string()),
  phase,
  machine: machine.optional(),
  hostKeys: stringList.optional(),
  resources: z.array(z.looseObject({kind: z.string(), id: z.string(), at: z.string()})),
  owner: z.looseObject({pid: z.number().int(), since: z.string()}).optional(),
  error: z.looseObject({phase: z.string(), message: z.string(), at: z.string()}).optional(),
  times: z.looseObject({
    createRequested: z.string().optional(),
    addressKnown: z.string().optional(),
    sshUp: z.string().optional(),
    engineReady: z.string().optional(),
    joined: z.string().optional(),
  }),
  engine: engine.optional(),
  swarm: z.looseObject({clusterId: z.string().optional(), nodeId: z.string().optional(), role: z.enum(['manager', 'worker']).optional(), advertiseAddr: z.string().optional()}).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
})

/**
 * Why `data` is not a valid host record, as `field.path: problem` (the first problem, and how many
 * more there are), or undefined when it is one.
 */
export function recordProblem(data: unknown): string | undefined {
  const r = hostRecordSchema.safeParse(data)
  if (r.success) return undefined
  const issues = r.error.issues
  const first = issues[0]!
  const where = first.path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '')
  const what = first.message.replace(/^Invalid input: /, '')
  return `${where || 'the record'}: ${what}` + (issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length === 2 ? '' : 's'})` : '')
}
