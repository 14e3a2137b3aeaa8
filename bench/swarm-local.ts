/**
 * Benchmark: real swarms of local hosts.
 *   1. `belt create --driver local --count N --swarm` for each N (default 50 and 100): total wall
 *      time, time per phase (p50/p90/max per host, and the span from first start to last end),
 *      join timeouts seen, and peak RSS of the belt process.
 *   2. `belt swarm init` alone on M hosts (default 100) whose engines already run: wall time.
 * Tears everything down after each step. Run as root after `npm run build`:
 *
 *   node dist/bench/swarm-local.js [N,N,...=50,100] [M=100] [join-concurrency=16]
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {loadRun} from '../src/store/runs.js'
import {Store} from '../src/store/store.js'

const sizes = (process.argv[2] ?? '50,100').split(',').map(Number).filter((n) => n > 0)
const initAlone = Number(process.argv[3] ?? 100)
const joinConcurrency = process.argv[4] ?? '16'
const root = path.resolve(import.meta.dirname, '../..')
const subnet = ['--local-subnet', '10.225.0.0/16']
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
    const child = spawn(process.execPath, [path.join(root, 'bin/run.js'), ...args], {env: {...process.env, BELT_STORE: store, CI: 'true'}, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    let peak = 0
    let cpu = 0
    child.stderr.on('data', (d) => (stderr += d))
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

async function teardown(store: string): Promise<void> {
  const r = await belt(store, ['rm', '-y', '--force', 'node*'])
  if (r.code !== 0) console.log(`teardown: belt rm exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`)
  rmSync(store, {recursive: true, force: true})
}

console.log(`cores: ${os.cpus().length}, memory: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, join concurrency: ${joinConcurrency}${extra.length ? `, flags: ${extra.join(' ')}` : ''}`)
for (const n of sizes) {
  const store = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-swarm-'))
  try {
    const r = await belt(store, ['create', '--driver', 'local', ...subnet, '--count', String(n), '--swarm', '--join-concurrency', joinConcurrency, ...extra])
    const run = await loadRun(new Store(store))
    const failed = run.hosts.filter((h) => !h.ok)
    console.log(`\nbelt create --driver local --count ${n} --swarm: exit ${r.code}, wall ${s(r.ms)}, ${n - failed.length}/${n} joined, join timeouts ${run.hosts.filter((h) => h.joinTimedOut).length}, peak RSS of belt ${(r.peakRssKiB / 1024).toFixed(0)} MiB, belt CPU ${r.cpuS.toFixed(1)} s`)
    phases(store, run)
    for (const f of failed.slice(0, 5)) console.log(`  failed: ${f.name} (${f.failedPhase}): ${f.error}`)
    const st = spawnSync(process.execPath, [path.join(root, 'bin/run.js'), 'swarm', 'status', '-q'], {env: {...process.env, BELT_STORE: store}, encoding: 'utf8'})
    console.log(`  belt swarm status: ${st.stdout.trim()}`)
  } finally {
    await teardown(store)
  }
}

if (initAlone > 0) {
  const store = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-swarm-'))
  try {
    const c = await belt(store, ['create', '--driver', 'local', ...subnet, '--count', String(initAlone)])
    console.log(`\n${initAlone} hosts created and bootstrapped (engines running) in ${s(c.ms)} (exit ${c.code})`)
    const r = await belt(store, ['swarm', 'init', '--join-concurrency', joinConcurrency, ...extra])
    const run = await loadRun(new Store(store))
    console.log(`belt swarm init on ${initAlone} running engines: exit ${r.code}, wall ${s(r.ms)}, ${run.hosts.filter((h) => h.ok).length}/${initAlone} in the swarm, join timeouts ${run.hosts.filter((h) => h.joinTimedOut).length}, peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB, belt CPU ${r.cpuS.toFixed(1)} s`)
    for (const f of run.hosts.filter((h) => !h.ok).slice(0, 5)) console.log(`  failed: ${f.name} (${f.failedPhase}): ${f.error}`)
    const joined = run.hosts.map((h) => Date.parse(h.times.joined ?? '')).filter((x) => !isNaN(x)).sort((a, b) => a - b)
    if (joined.length > 1) console.log(`  joins: first at ${s(joined[0]! - Date.parse(run.startedAt))}, last at ${s(joined.at(-1)! - Date.parse(run.startedAt))} after the start; ${(joined.length / ((joined.at(-1)! - joined[0]!) / 1000)).toFixed(2)} nodes/s between them`)
    console.log('(reference: a hand-tuned shell script joined 100 such hosts in 95 s: 3 managers, then 16 concurrent joins)')
  } finally {
    await teardown(store)
  }
}
