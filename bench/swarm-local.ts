/**
 * The formation bench (issue 13): real swarms of local hosts, through the belt binary.
 *   1. `belt create --driver local --count N --swarm` for each N (default 50 and 100): total wall
 *      time, time per phase (p50/p90/max per host, and the span from first start to last end),
 *      join timeouts seen, ghost entries left in the node list (must be 0), the ingress network
 *      (on how many nodes its sandbox was built), peak RSS and CPU of the belt process.
 *   2. `belt swarm init` alone on M hosts (default 100) whose engines already run: wall time, and
 *      the same checks.
 * Each run's record (belt report's JSON and SVG timeline) is copied to bench/results/. Tears
 * everything down after each step. Run as root after `npm run build`, on a quiet machine:
 *
 *   node dist/bench/swarm-local.js [N,N,...=50,100] [M=100] [join-concurrency=16]
 */
import {spawn, spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {loadRun} from '../src/store/runs.js'
import {Store} from '../src/store/store.js'

const sizes = (process.argv[2] ?? '50,100').split(',').map(Number).filter((n) => n > 0)
const initAlone = Number(process.argv[3] ?? 100)
const joinConcurrency = process.argv[4] ?? '16'
const root = path.resolve(import.meta.dirname, '../..')
const subnet = ['--local-subnet', '10.223.0.0/16']
const results = path.join(root, 'bench/results')
/** Extra flags for the swarm steps, e.g. BELT_BENCH_FLAGS=--no-ingress. */
const extra = (process.env.BELT_BENCH_FLAGS ?? '').split(' ').filter(Boolean)

interface Timed {
  ms: number
  code: number | null
  peakRssKiB: number
  /** CPU seconds the belt process used (user + system). */
  cpuS: number
  stderr: string
}

/** Runs belt, sampling VmHWM (the kernel's peak RSS of the process) until it exits. */
function belt(store: string, args: string[]): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [path.join(root, 'bin/run.js'), ...args], {env: {...process.env, BELT_STORE: store, CI: 'true'}, stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    let peak = 0
    let cpu = 0
    // Both streams: belt's summary and info lines go to one or the other.
    child.stderr.on('data', (d) => (stderr += d))
    child.stdout.on('data', (d) => (stderr += d))
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        if (m) peak = Math.max(peak, Number(m[1]))
        const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
        cpu = (Number(f[11]) + Number(f[12])) / 100 // utime + stime, in clock ticks (100/s)
      } catch {
        /* exited */
      }
    }
    const timer = setInterval(sample, 100)
    child.on('close', (code) => {
      clearInterval(timer)
      resolve({ms: performance.now() - t0, code, peakRssKiB: peak, cpuS: cpu, stderr})
    })
  })
}

/**
 * Where the machine's CPU went during a step: every process's user+system time sampled every 2 s
 * (the last value seen per PID), summed by command name, next to the machine's total busy time
 * from /proc/stat. Processes that live less than a sample apart show up only in the total.
 */
function cpuSampler(): () => string {
  const hz = 100
  const busy = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / hz // user nice system irq softirq steal
  }
  const before = new Map<number, number>()
  const last = new Map<number, {comm: string; cpu: number}>()
  const read = (into: Map<number, {comm: string; cpu: number}>) => {
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
        const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
        into.set(Number(pid), {comm, cpu: (Number(f[11]) + Number(f[12])) / hz})
      } catch {
        /* gone */
      }
    }
  }
  const first = new Map<number, {comm: string; cpu: number}>()
  read(first)
  for (const [pid, v] of first) before.set(pid, v.cpu)
  const busy0 = busy()
  const timer = setInterval(() => read(last), 2000)
  return () => {
    clearInterval(timer)
    read(last)
    const by = new Map<string, number>()
    for (const [pid, v] of last) by.set(v.comm, (by.get(v.comm) ?? 0) + v.cpu - (before.get(pid) ?? 0))
    const total = busy() - busy0
    const top = [...by].filter(([, c]) => c >= 0.5).sort((a, b) => b[1] - a[1]).slice(0, 7)
    return `machine CPU busy ${total.toFixed(0)} s; by command: ${top.map(([c, t]) => `${c} ${t.toFixed(0)} s`).join(', ')}`
  }
}

/** Belt's own line on the ingress network (made after the joins), or its warning. */
function ingressLine(stderr: string): string {
  return /^.*ingress network.*$/im.exec(stderr)?.[0] ?? 'ingress: no line from belt (made at init, --no-ingress, or an existing swarm)'
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))]!

function phases(store: string, run: Awaited<ReturnType<typeof loadRun>>): void {
  const t = (x?: string) => (x ? Date.parse(x) : NaN)
  const defs: [string, 'createRequested' | 'addressKnown' | 'sshUp' | 'engineReady', 'addressKnown' | 'sshUp' | 'engineReady' | 'joined'][] = [
    ['create (requested -> sshd up)', 'createRequested', 'addressKnown'],
    ['ssh (sshd up -> bootstrap connected)', 'addressKnown', 'sshUp'],
    ['engine (connected -> TLS engine ready)', 'sshUp', 'engineReady'],
    ['join (engine ready -> joined)', 'engineReady', 'joined'],
  ]
  for (const [label, a, b] of defs) {
    const pairs = run.hosts.map((h) => [t(h.times[a]), t(h.times[b])] as const).filter(([x, y]) => !isNaN(x) && !isNaN(y))
    if (pairs.length === 0) continue
    const d = pairs.map(([x, y]) => y - x).sort((p, q) => p - q)
    const span = Math.max(...pairs.map(([, y]) => y)) - Math.min(...pairs.map(([x]) => x))
    console.log(`  ${label.padEnd(40)} p50 ${s(pct(d, 0.5))}  p90 ${s(pct(d, 0.9))}  max ${s(d.at(-1)!)}  span ${s(span)}`)
  }
  void store
}

/** Ghost entries and the ingress, as `belt swarm status --json` and the docker CLI see them. */
function swarmChecks(store: string): void {
  const st = spawnSync(process.execPath, [path.join(root, 'bin/run.js'), 'swarm', 'status', '--json'], {env: {...process.env, BELT_STORE: store}, encoding: 'utf8'})
  try {
    const j = JSON.parse(st.stdout) as {ready: number; down: number; ghosts: unknown[]; kept: unknown[]; nodes: unknown[]}
    console.log(`  belt swarm status: ${j.nodes.length} nodes, ${j.ready} Ready, ${j.down} Down; ghost entries left: ${j.ghosts.length} (+${j.kept.length} kept as possibly joining)`)
  } catch {
    console.log(`  belt swarm status failed (exit ${st.status}): ${st.stderr.trim().split('\n').at(-1)}`)
  }
}

/** Copies the latest run record (JSON and SVG) of a store to bench/results/ under `label`. */
function keepRun(store: string, label: string): void {
  mkdirSync(results, {recursive: true})
  const runs = readdirSync(path.join(store, 'runs')).sort()
  const latest = runs.filter((f) => f.endsWith('.json')).at(-1)
  if (!latest) return
  for (const f of runs.filter((x) => x.startsWith(latest.replace(/\.json$/, '')))) copyFileSync(path.join(store, 'runs', f), path.join(results, `${label}-${f}`))
  console.log(`  run record: bench/results/${label}-${latest}`)
}

async function teardown(store: string): Promise<void> {
  const r = await belt(store, ['rm', '-y', '--force', 'node*'])
  if (r.code !== 0) console.log(`teardown: belt rm exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  rmSync(store, {recursive: true, force: true})
}

console.log(`cores: ${os.cpus().length}, memory: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, join concurrency: ${joinConcurrency}${extra.length ? `, flags: ${extra.join(' ')}` : ''}`)
for (const n of sizes) {
  const store = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-swarm-'))
  try {
    const cpu = cpuSampler()
    const r = await belt(store, ['create', '--driver', 'local', ...subnet, '--count', String(n), '--swarm', '--join-concurrency', joinConcurrency, ...extra])
    const cpuLine = cpu()
    const run = await loadRun(new Store(store))
    const failed = run.hosts.filter((h) => !h.ok)
    console.log(`\nbelt create --driver local --count ${n} --swarm: exit ${r.code}, wall ${s(r.ms)}, ${n - failed.length}/${n} joined, join timeouts ${run.hosts.filter((h) => h.joinTimedOut).length}, peak RSS of belt ${(r.peakRssKiB / 1024).toFixed(0)} MiB, belt CPU ${r.cpuS.toFixed(1)} s`)
    phases(store, run)
    console.log(`  ${cpuLine}`)
    for (const f of failed.slice(0, 5)) console.log(`  failed: ${f.name} (${f.failedPhase}): ${f.error}`)
    console.log(`  ${ingressLine(r.stderr)}`)
    const nudged = r.stderr.match(/: nudged \(node label /g)?.length ?? 0
    if (nudged > 0) console.log(`  ingress nudges (a node's sandbox looked stuck): ${nudged}`)
    swarmChecks(store)
    keepRun(store, `create-${n}`)
  } finally {
    await teardown(store)
  }
}

if (initAlone > 0) {
  const store = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-swarm-'))
  try {
    const c = await belt(store, ['create', '--driver', 'local', ...subnet, '--count', String(initAlone)])
    console.log(`\n${initAlone} hosts created and bootstrapped (engines running) in ${s(c.ms)} (exit ${c.code})`)
    const cpu = cpuSampler()
    const r = await belt(store, ['swarm', 'init', '--join-concurrency', joinConcurrency, ...extra])
    console.log(`  ${cpu()}`)
    const run = await loadRun(new Store(store))
    console.log(`belt swarm init on ${initAlone} running engines: exit ${r.code}, wall ${s(r.ms)}, ${run.hosts.filter((h) => h.ok).length}/${initAlone} in the swarm, join timeouts ${run.hosts.filter((h) => h.joinTimedOut).length}, peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB, belt CPU ${r.cpuS.toFixed(1)} s`)
    for (const f of run.hosts.filter((h) => !h.ok).slice(0, 5)) console.log(`  failed: ${f.name} (${f.failedPhase}): ${f.error}`)
    const joined = run.hosts.map((h) => Date.parse(h.times.joined ?? '')).filter((x) => !isNaN(x)).sort((a, b) => a - b)
    if (joined.length > 1) console.log(`  joins: first at ${s(joined[0]! - Date.parse(run.startedAt))}, last at ${s(joined.at(-1)! - Date.parse(run.startedAt))} after the start; ${(joined.length / ((joined.at(-1)! - joined[0]!) / 1000)).toFixed(2)} nodes/s between them`)
    console.log(`  ${ingressLine(r.stderr)}`)
    swarmChecks(store)
    keepRun(store, `init-${initAlone}`)
    console.log('(reference: a hand-tuned shell script joined 100 such hosts in 95 s: 3 managers, then 16 concurrent joins)')
  } finally {
    await teardown(store)
  }
}
