/**
 * Benchmark: start-up, the time every `belt` command pays before doing anything. Runs `belt
 * --version`, `belt ip NAME` and `belt env NAME` as whole processes (and `node -e 0`, the floor of
 * any Node program), interleaved, after one warm-up run each, and prints per command the median,
 * min and max wall time and the median CPU time (user + system of the child process, from
 * /proc/self/stat). After `npm run build`, as root:
 *
 *   node dist/bench/startup.js [--runs 11] [--subnet 10.239.0.0/16]
 *   node dist/bench/startup.js --store DIR --host NAME   # an existing bootstrapped host; no root needed
 *
 * Without --store it creates one real local host in a temporary store (`belt create --driver local
 * --no-bootstrap`, then `belt provision` so that `env` has an engine to point at) and removes it at
 * the end. Quote medians: the machine is shared and a single run can be twice as slow.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

const {values: opt} = parseArgs({
  options: {
    runs: {type: 'string', default: '11'},
    subnet: {type: 'string', default: '10.239.0.0/16'},
    store: {type: 'string'},
    host: {type: 'string', default: 'startup1'},
  },
})
const runs = Number(opt.runs)
const bin = path.resolve(import.meta.dirname, '../../bin/run.js')

/** CPU seconds of the reaped children of this process (cutime + cstime). */
function childCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[13]) + Number(fields[14])) / ticks
}
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100

interface Sample {
  wall: number
  cpu: number
}

function once(argv: string[]): Sample {
  const cpu0 = childCpu()
  const t0 = performance.now()
  const r = spawnSync(argv[0]!, argv.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8'})
  const wall = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr}`)
  return {wall, cpu: childCpu() - cpu0}
}

function belt(...args: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...args], {stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`belt ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr}`)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!
const s = (x: number) => `${x.toFixed(3)} s`

const own = opt.store === undefined
const tmp = own ? mkdtempSync(path.join(os.tmpdir(), 'belt-bench-startup-')) : undefined
const store = opt.store ?? path.join(tmp!, 'store')
const host = opt.host
try {
  if (own) {
    if (process.getuid?.() !== 0) throw new Error('the local driver needs root: run as root, or pass --store DIR --host NAME of an existing bootstrapped host')
    belt('create', '--driver', 'local', '--no-bootstrap', '--local-subnet', opt.subnet, '--store', store, host)
    belt('provision', '--store', store, host)
  }
  const commands: [string, string[]][] = [
    ['node -e 0', [process.execPath, '-e', '0']],
    ['belt --version', [process.execPath, bin, '--version']],
    [`belt ip ${host}`, [process.execPath, bin, 'ip', '--store', store, host]],
    [`belt env ${host}`, [process.execPath, bin, 'env', '--store', store, host]],
  ]
  for (const [, argv] of commands) once(argv) // warm-up: file cache, V8's compile cache
  const samples = commands.map((): Sample[] => [])
  for (let i = 0; i < runs; i++) commands.forEach(([, argv], j) => samples[j]!.push(once(argv)))
  console.log(`start-up: ${runs} runs of each command after one warm-up, interleaved; ${os.cpus().length} cores, node ${process.version}`)
  console.log(`${'command'.padEnd(22)}${'wall median'.padStart(12)}${'min'.padStart(10)}${'max'.padStart(10)}${'cpu median'.padStart(12)}`)
  commands.forEach(([name], j) => {
    const walls = samples[j]!.map((x) => x.wall)
    const cpus = samples[j]!.map((x) => x.cpu)
    console.log(`${name.padEnd(22)}${s(median(walls)).padStart(12)}${s(Math.min(...walls)).padStart(10)}${s(Math.max(...walls)).padStart(10)}${s(median(cpus)).padStart(12)}`)
  })
} finally {
  if (own) {
    try {
      belt('rm', '-y', '--store', store, host)
      rmSync(tmp!, {recursive: true, force: true})
    } catch (e) {
      // The store is kept: it is what `belt rm` needs to remove the host by hand.
      console.error(`could not remove the bench host (${(e as Error).message.trim()}); remove it with: belt rm -y --store ${store} ${host}`)
    }
  }
}
