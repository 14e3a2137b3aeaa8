/**
 * Ctrl-C chaos against the `belt` binary, shared by the test (small) and the bench (full size):
 * `belt create ...` is started in a process group of its own, as a terminal starts it, and gets
 * SIGINT (sometimes twice) at random moments; the same command is run again, and again, until it
 * finishes; then `belt rm` removes everything. After every step, what exists in reality (droplets
 * of the emulator, network namespaces of the subnet) must be exactly what the store records, the
 * store must hold no more hosts than asked for, and after `rm` nothing may be left.
 */
import {execFile, spawn} from 'node:child_process'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'
import {seededRandom} from '../drivers/emulator-kit.js'

const run = promisify(execFile)

export interface ChaosTarget {
  /** For the report. */
  readonly label: string
  /** `belt` and its arguments for the batch, e.g. [bin, 'create', '--driver', 'local', '--count', '4']. */
  readonly create: readonly string[]
  /** `belt rm` of everything. */
  readonly remove: readonly string[]
  readonly env: NodeJS.ProcessEnv
  readonly store: string
  /** Hosts the batch asks for. */
  readonly hosts: number
  /** Resource ids that exist in reality (droplet ids, namespace names). */
  reality(): Promise<Set<string>>
  /** Which resource kinds of a record count (droplet, netns, instance). */
  readonly kinds: readonly string[]
  /** The phase every host must reach ('joined' with --swarm). */
  readonly goal: string
}

export interface ChaosStep {
  kind: 'interrupt' | 'double-interrupt' | 'final' | 'rm'
  delayMs?: number
  code: number | null
  records: number
  /** Resources that exist but no record knows (orphans in the making), and recorded ones that do not exist. */
  unknownToStore: string[]
  missingFromReality: string[]
}

export interface ChaosReport {
  label: string
  steps: ChaosStep[]
  /** Most hosts the store ever held beyond what was asked. */
  extraHosts: number
  /** Steps after which reality and the store disagreed. */
  mismatches: number
  /** Hosts not at the goal after the final run. */
  unfinished: string[]
  /** Resources left after `belt rm`. */
  orphans: string[]
  /** Exit codes of interrupted runs that were not 130 or 0. */
  badExits: number[]
  finalCode: number | null
  finalStderrTail: string
  /** Faults injected while belt ran. */
  disruptions: number
}

/** The emulators' seeded PRNG: the same seed, the same interrupt moments. */
export const prng = seededRandom

/** Runs argv as its own process group; sends SIGINT to the group after `delays` (ms, cumulative). */
function runInterrupted(argv: readonly string[], env: NodeJS.ProcessEnv, delays: readonly number[]): Promise<{code: number | null; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {env, detached: true, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const timers = delays.map((ms) =>
      setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGINT')
        } catch {
          /* already gone */
        }
      }, ms),
    )
    child.on('error', reject)
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t)
      resolve({code: code ?? (signal ? 128 + 2 : null), stderr})
    })
  })
}

/** Every resource id the store's records know, and the number of records. */
export async function storeIds(store: string, kinds: readonly string[]): Promise<{records: {name: string; phase: string}[]; ids: Set<string>}> {
  const dir = path.join(store, 'hosts')
  const files = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json'))
  const ids = new Set<string>()
  const records: {name: string; phase: string}[] = []
  for (const f of files) {
    const r = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as {name: string; phase: string; machine?: {id: string}; resources?: {kind: string; id: string}[]}
    records.push({name: r.name, phase: r.phase})
    if (r.machine) ids.add(r.machine.id)
    for (const x of r.resources ?? []) if (kinds.includes(x.kind)) ids.add(x.id)
  }
  return {records, ids}
}

async function check(t: ChaosTarget, step: Omit<ChaosStep, 'records' | 'unknownToStore' | 'missingFromReality'>): Promise<ChaosStep> {
  const real = await t.reality()
  const {records, ids} = await storeIds(t.store, t.kinds)
  return {
    ...step,
    records: records.length,
    unknownToStore: [...real].filter((id) => !ids.has(id)).sort(),
    missingFromReality: [...ids].filter((id) => !real.has(id)).sort(),
  }
}

/**
 * `interrupts` interrupted runs of the same command (every third one interrupted twice: the
 * "exit now" path), at random moments in [minDelayMs, maxDelayMs], then the same command to the
 * end, then `rm`.
 */
export async function chaos(
  t: ChaosTarget,
  o: {
    interrupts: number
    minDelayMs: number
    maxDelayMs: number
    seed: number
    log?: (line: string) => void
    /** A fault injected at random moments while belt runs (e.g. dropping SSH sessions), every `disruptEveryMs` on average. */
    disrupt?: () => Promise<void>
    disruptEveryMs?: number
    /** Runs of the same command after the interrupts, while it exits 4 (hosts failed under faults): at most this many. */
    finalRuns?: number
  },
): Promise<ChaosReport> {
  const rnd = prng(o.seed)
  const steps: ChaosStep[] = []
  let disruptions = 0
  /** Runs `fn` with the fault injector firing at random moments until it settles. */
  const during = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (!o.disrupt) return fn()
    let done = false
    const injector = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, Math.round(rnd() * 2 * (o.disruptEveryMs ?? 3000))))
        if (!done) {
          await o.disrupt!().catch(() => undefined)
          disruptions++
        }
      }
    })()
    try {
      return await fn()
    } finally {
      done = true
      await injector
    }
  }
  const badExits: number[] = []
  let finished = false
  for (let i = 0; i < o.interrupts && !finished; i++) {
    const delayMs = Math.round(o.minDelayMs + rnd() * (o.maxDelayMs - o.minDelayMs))
    const double = i % 3 === 2
    const r = await during(() => runInterrupted(t.create, t.env, double ? [delayMs, delayMs + 300] : [delayMs]))
    if (r.code !== 130 && r.code !== 0) badExits.push(r.code ?? -1)
    const step = await check(t, {kind: double ? 'double-interrupt' : 'interrupt', delayMs, code: r.code})
    steps.push(step)
    o.log?.(`${t.label}: ${step.kind} at ${delayMs} ms -> exit ${r.code}; ${step.records} records; unknown to the store: ${step.unknownToStore.length}; recorded but gone: ${step.missingFromReality.length}`)
    if (r.code !== 130 && r.code !== 0) o.log?.(r.stderr.split('\n').slice(-8).join('\n'))
    // Exit 0: the batch finished before the signal took effect; the same command would now add hosts.
    finished = r.code === 0
  }
  let fin = finished ? {code: 0 as number | null, stderr: '(finished by an interrupted run)'} : await during(() => runInterrupted(t.create, t.env, []))
  let finalStep = await check(t, {kind: 'final', code: fin.code})
  steps.push(finalStep)
  // A batch whose hosts failed under the faults exits 4; the same command again finishes it.
  for (let i = 1; i < (o.finalRuns ?? 1) && fin.code === 4; i++) {
    o.log?.(`${t.label}: run ${i} exited 4 (${fin.stderr.split('\n').filter((l) => l.startsWith('Error:')).join(' ')}); the same command again`)
    fin = await during(() => runInterrupted(t.create, t.env, []))
    finalStep = await check(t, {kind: 'final', code: fin.code})
    steps.push(finalStep)
  }
  const {records} = await storeIds(t.store, t.kinds)
  const unfinished = records.filter((r) => r.phase !== t.goal).map((r) => `${r.name}:${r.phase}`)
  o.log?.(`${t.label}: final run -> exit ${fin.code}; ${finalStep.records} records; ${unfinished.length} not at ${t.goal}`)
  const rm = await runInterrupted(t.remove, t.env, [])
  const rmStep = await check(t, {kind: 'rm', code: rm.code})
  steps.push(rmStep)
  o.log?.(`${t.label}: rm -> exit ${rm.code}; ${rmStep.records} records, ${rmStep.unknownToStore.length} resources left`)
  return {
    label: t.label,
    steps,
    extraHosts: Math.max(0, ...steps.map((s) => s.records - t.hosts)),
    mismatches: steps.filter((s) => s.kind !== 'rm' && (s.unknownToStore.length > 0 || (s.kind === 'final' && s.missingFromReality.length > 0))).length,
    unfinished,
    orphans: rmStep.unknownToStore,
    badExits,
    finalCode: fin.code,
    finalStderrTail: fin.stderr.split('\n').slice(-6).join('\n'),
    disruptions,
  }
}

/** Droplet ids of a cluster in a DigitalOcean emulator. */
export function dropletIds(apiUrl: string, token: string, cluster = 'default'): () => Promise<Set<string>> {
  return async () => {
    const ids = new Set<string>()
    for (let page = 1; ; page++) {
      const res = await fetch(`${apiUrl}/v2/droplets?tag_name=belt-cluster-${cluster}&per_page=200&page=${page}`, {headers: {authorization: `Bearer ${token}`}})
      // The emulator's fault injection answers checks too (429, 5xx): ask again.
      if (res.status !== 200) {
        await res.body?.cancel()
        await new Promise((r) => setTimeout(r, 500))
        page--
        continue
      }
      const body = (await res.json()) as {droplets: {id: number}[]; links?: {pages?: {next?: string}}}
      for (const d of body.droplets) ids.add(String(d.id))
      if (!body.links?.pages?.next) break
    }
    return ids
  }
}

/** Network namespaces of the local driver's hosts on a subnet (`10.243.0.0/16` -> `belt-10-243-*`). */
export function localNamespaces(subnet: string): () => Promise<Set<string>> {
  const [a, b] = subnet.split('.')
  const re = new RegExp(`^belt-${a}-${b}-[0-9]+-`)
  return async () => {
    const {stdout} = await run('ip', ['netns', 'list'])
    return new Set(stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => re.test(n)))
  }
}

/**
 * Live instance ids of a cluster in an EC2 emulator (pending to stopped: anything still billed).
 * `shutting-down` is not live: termination is irrevocable from there and EC2 bills no more, which
 * is why `belt rm` counts it as gone.
 */
export function instanceIds(endpoint: string, env: NodeJS.ProcessEnv, cluster = 'default'): () => Promise<Set<string>> {
  return async () => {
    const {EC2Client, DescribeInstancesCommand} = await import('@aws-sdk/client-ec2')
    const client = new EC2Client({endpoint, region: env.AWS_REGION ?? 'us-east-1', credentials: {accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'x', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'x'}, maxAttempts: 10})
    const ids = new Set<string>()
    let NextToken: string | undefined
    do {
      const page = await client.send(
        new DescribeInstancesCommand({Filters: [{Name: 'tag:belt:cluster', Values: [cluster]}, {Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped']}], MaxResults: 1000, NextToken}),
      )
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) ids.add(i.InstanceId!)
      NextToken = page.NextToken
    } while (NextToken)
    client.destroy()
    return ids
  }
}

/**
 * Drops the SSH sessions of one random host of a local subnet: SIGKILL to its `sshd: user@...`
 * session processes, as a network blip or a restarted sshd would.
 */
export function dropSshSessions(subnet: string, rnd: () => number = Math.random): () => Promise<void> {
  const hosts = localNamespaces(subnet)
  return async () => {
    const all = [...(await hosts())]
    const ns = all[Math.floor(rnd() * all.length)]
    if (!ns) return
    const {stdout} = await run('ip', ['netns', 'pids', ns])
    for (const pid of stdout.split('\n').filter(Boolean).map(Number)) {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
      if (/^sshd: [^\0]*@/.test(cmd)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
    }
  }
}
