/**
 * Belt's own CPU per host over a whole pipeline, through the CLI binary: `belt create --driver
 * digitalocean --count N --swarm` against `belt emulator digitalocean` in its own process, with REAL
 * local hosts behind the droplets (namespaces with sshd and dockerd, so every host is created,
 * bootstrapped over SSH with mutual TLS and joined for real). Prints the belt process's user and
 * system CPU (its rusage, through /usr/bin/time), the same less one start-up (the CPU of `belt ls`
 * on the empty store: oclif and a command), per host, and its peak RSS; then removes every host and stops the emulator. Needs root, after
 * `npm run build`:
 *
 *   node dist/bench/cpu.js [--count 10] [--subnet 10.224.0.0/16] [--profile DIR] [--steps]
 *
 * `--steps` also counts, per host, the protocol steps the belt process takes (SSH handshakes and
 * commands, TLS connections and requests to the engines, API requests, record writes), through
 * bench/step-counter.ts preloaded into it; bench/floor.ts prices each step.
 * `--profile DIR` runs the create under `node --cpu-prof --cpu-prof-dir DIR` (open the .cpuprofile
 * in Chrome's DevTools); profiling adds its own CPU, so quote figures from a run without it.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {parseArgs} from 'node:util'

const {values: opt} = parseArgs({
  options: {
    count: {type: 'string', default: '10'},
    subnet: {type: 'string', default: '10.224.0.0/16'},
    profile: {type: 'string'},
    steps: {type: 'boolean', default: false},
  },
})
const count = Number(opt.count)
const bin = path.resolve(import.meta.dirname, '../../bin/run.js')
if (process.getuid?.() !== 0) throw new Error('the local backing needs root')

interface Run {
  code: number
  user: number
  sys: number
  rssMb: number
  wall: number
  stderr: string
}

/** Runs belt under /usr/bin/time: CPU and peak RSS from the child's rusage. */
function timed(args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<Run> {
  const timeFile = path.join(os.tmpdir(), `belt-cpu-time-${process.pid}`)
  const t0 = performance.now()
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, process.execPath, ...nodeArgs, bin, ...args], {env, stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)))
  return new Promise((resolve) =>
    child.once('exit', (c) => {
      const [u, s, m] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
      rmSync(timeFile, {force: true})
      resolve({code: c ?? -1, user: u!, sys: s!, rssMb: m! / 1024, wall: (performance.now() - t0) / 1000, stderr})
    }),
  )
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-cpu-'))
const store = path.join(dir, 'store')
const emulator = spawn(process.execPath, [bin, 'emulator', 'digitalocean', '--port', '0', '--backing', 'local', '--local-subnet', opt.subnet!, '--boot-delay', '1000', '--store', path.join(dir, 'emu')], {
  stdio: ['ignore', 'pipe', 'pipe'],
})
let emuErr = ''
emulator.stderr!.on('data', (d: Buffer) => (emuErr = (emuErr + d.toString()).slice(-4000)))
const stopEmulator = () =>
  new Promise<void>((resolve) => {
    if (emulator.exitCode !== null) return resolve()
    emulator.once('exit', () => resolve())
    emulator.kill('SIGTERM')
  })
try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    emulator.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /DIGITALOCEAN_API_URL=(\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    emulator.once('exit', (code) => reject(new Error(`emulator exited ${code}: ${emuErr}`)))
  })
  const env: NodeJS.ProcessEnv = {...process.env, BELT_STORE: store, CI: '1', NO_COLOR: '1', DIGITALOCEAN_ACCESS_TOKEN: 'bench-token', DIGITALOCEAN_API_URL: url}
  // Start-up: an oclif command with nothing to do (`ls` of the still empty store), the median of 3.
  const startups: number[] = []
  for (let i = 0; i < 3; i++) {
    const v = await timed(['ls', '--json'], env)
    startups.push(v.user + v.sys)
  }
  const startup = startups.sort((a, b) => a - b)[1]!
  const stepsFile = path.join(dir, 'steps.json')
  const nodeArgs = [...(opt.profile ? ['--cpu-prof', '--cpu-prof-dir', opt.profile] : []), ...(opt.steps ? ['--import', pathToFileURL(path.join(import.meta.dirname, 'step-counter.js')).href] : [])]
  const r = await timed(['create', '--driver', 'digitalocean', '--count', String(count), '--swarm'], opt.steps ? {...env, BELT_STEP_COUNTS: stepsFile} : env, nodeArgs)
  const cpu = r.user + r.sys
  console.log(`belt create --driver digitalocean --count ${count} --swarm (DO emulator, local backing); ${os.cpus().length} CPUs; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log(`  exit ${r.code}, wall ${r.wall.toFixed(1)} s${opt.profile ? ` (profiled into ${opt.profile})` : ''}`)
  console.log(`  CPU ${r.user.toFixed(2)} s user + ${r.sys.toFixed(2)} s sys = ${cpu.toFixed(2)} s; start-up (belt ls, empty store) ${(startup * 1000).toFixed(0)} ms`)
  console.log(`  per host beyond start-up: ${(((cpu - startup) / count) * 1000).toFixed(0)} ms; peak RSS ${r.rssMb.toFixed(0)} MB`)
  if (opt.steps) {
    const steps = JSON.parse(readFileSync(stepsFile, 'utf8')) as Record<string, number>
    console.log(`  steps per host (counted in this run): ${Object.entries(steps).map(([k, v]) => `${k} ${(v / count).toFixed(2)}`).join(', ')}`)
  }
  if (r.code !== 0) console.log(r.stderr)
} finally {
  const rm = spawnSync(process.execPath, [bin, 'rm', '-y', '--store', store, '*'], {env: {...process.env, DIGITALOCEAN_ACCESS_TOKEN: 'bench-token'}, encoding: 'utf8'})
  if (rm.status !== 0) console.error(`belt rm failed (${rm.status}): ${rm.stderr}`)
  await stopEmulator()
  if (rm.status === 0) rmSync(dir, {recursive: true, force: true})
  else console.error(`kept ${dir} (its store names what is left)`)
}
