/**
 * Benchmark: `belt create --driver local --count N` on a fresh store, then `belt rm -y`.
 * Prints wall time, per-host create time (p50/p90/max, from the records' phase timestamps) and
 * removal time. Run as root after `npm run build`:
 *
 *   node dist/bench/create-local.js [N=20] [concurrency=8]
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const n = Number(process.argv[2] ?? 20)
const concurrency = Number(process.argv[3] ?? 8)
const root = path.resolve(import.meta.dirname, '../..')
const store = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-'))
const env = {...process.env, BELT_STORE: store, CI: 'true'}
const subnet = ['--local-subnet', '10.216.0.0/16']

function belt(args: string[]): number {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, [path.join(root, 'bin/run.js'), ...args], {env, stdio: ['ignore', 'ignore', 'inherit']})
  if (r.status !== 0) throw new Error(`belt ${args.join(' ')} exited ${r.status}`)
  return performance.now() - t0
}

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!
try {
  const createMs = belt(['create', '--driver', 'local', ...subnet, '--count', String(n), '--concurrency', String(concurrency)])
  const per = readdirSync(path.join(store, 'hosts'))
    .map((f) => JSON.parse(readFileSync(path.join(store, 'hosts', f), 'utf8')))
    .map((r) => Date.parse(r.times.addressKnown) - Date.parse(r.times.createRequested))
    .sort((a, b) => a - b)
  const rmMs = belt(['rm', '-y', 'node*'])
  console.log(`hosts: ${n}, concurrency: ${concurrency}, cores: ${os.cpus().length}`)
  console.log(`belt create wall time: ${(createMs / 1000).toFixed(2)} s (${(createMs / n).toFixed(0)} ms per host amortised)`)
  console.log(`per-host create (requested -> sshd accepting): p50 ${q(per, 0.5)} ms, p90 ${q(per, 0.9)} ms, max ${per.at(-1)} ms`)
  console.log(`belt rm wall time: ${(rmMs / 1000).toFixed(2)} s`)
} finally {
  spawnSync(process.execPath, [path.join(root, 'bin/run.js'), 'rm', '-y', '--force', 'node*'], {env, stdio: 'ignore'})
  rmSync(store, {recursive: true, force: true})
}
