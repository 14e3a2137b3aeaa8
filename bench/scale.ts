/**
 * Scale bench through the CLI binary, as a user would run it: for each emulator (DigitalOcean, EC2)
 * at its REAL default rate limits (DO: 5,000/h and 250/min per token; EC2 emulator: 20 requests/s),
 * with `--backing simulated` (a loopback address with a banner on port 22 per host: no real hosts),
 * it starts the emulator as a child process, then runs as child processes
 *
 *   belt create --driver D --count N --no-bootstrap     (default flags otherwise)
 *   belt ls
 *   belt rm -y '*'
 *
 * and prints per step: wall time, requests per host and 429s (the emulator's own counters, read
 * from its loopback-only `GET /_emulator/stats`), Belt's CPU ms per host and peak RSS (the child's
 * rusage through `/usr/bin/time -f`). For `create` also the ratio to one host's critical path: the
 * boot delay plus a 1-host `belt create` against an emulator with no boot delay (start-up, preflight,
 * cluster setup, the create request and the first readiness list: everything but the boot).
 * `ls` counts rows that are not Running (false errors). Nothing is asserted; run as root (the
 * simulated hosts bind port 22 on 127.x.y.z) after `npm run build`:
 *
 *   node dist/bench/scale.js [--drivers digitalocean,amazonec2] [--runs 300:20000,1000:2000] [--ls-only]
 *
 * `--runs N:BOOT_MS,...` sizes and boot delays. DigitalOcean's emulator boots droplets in 0.8-1.2x
 * the boot delay (as the real API varies), EC2's in exactly the boot delay. For N above 1,000
 * DigitalOcean's emulator gets `--droplet-limit N` (the account limit; the rate limits stay real).
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

const {values: opt} = parseArgs({
  options: {
    drivers: {type: 'string', default: 'digitalocean,amazonec2'},
    runs: {type: 'string', default: '300:20000,1000:2000'},
    'keep-going': {type: 'boolean', default: false},
  },
})
const bin = path.resolve(import.meta.dirname, '../../bin/run.js')
const drivers = opt.drivers!.split(',').map((d) => d.trim()) as Array<'digitalocean' | 'amazonec2'>
const runs = opt.runs!.split(',').map((r) => {
  const [n, boot] = r.split(':').map(Number)
  return {n: n!, boot: boot ?? 2000}
})

interface Emulator {
  child: ChildProcess
  url: string
  stats(): Promise<Record<string, unknown>>
  stop(): Promise<void>
}

async function startEmulator(driver: 'digitalocean' | 'amazonec2', bootMs: number, n: number, store: string): Promise<Emulator> {
  const args =
    driver === 'digitalocean'
      ? ['emulator', 'digitalocean', '--port', '0', '--backing', 'simulated', '--boot-delay', String(bootMs), ...(n > 1000 ? ['--droplet-limit', String(n)] : [])]
      : ['emulator', 'ec2', '--port', '0', '--backing', 'simulated', '--boot-delay', String(bootMs)]
  const child = spawn(process.execPath, [bin, ...args, '--store', store], {stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /(?:DIGITALOCEAN_API_URL|AMAZONEC2_ENDPOINT)=(\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', (code) => reject(new Error(`emulator exited ${code}: ${err}`)))
  })
  return {
    child,
    url,
    stats: async () => (await (await fetch(`${url}/_emulator/stats`)).json()) as Record<string, unknown>,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

interface Step {
  wall: number
  cpuMs: number
  rssMb: number
  code: number
  stdout: string
  stderr: string
  /** When the last host's line (created, removed) came, from the start of the process. */
  lastHostAt: number
}

/** Runs belt under /usr/bin/time: wall from here, CPU and peak RSS from the child's rusage. */
async function belt(args: string[], env: NodeJS.ProcessEnv): Promise<Step> {
  const timeFile = path.join(os.tmpdir(), `belt-scale-time-${process.pid}`)
  const t0 = performance.now()
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, process.execPath, bin, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  let lastHostAt = 0
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString()
    stderr += text
    if (/: (removed|created at)\b/.test(text)) lastHostAt = performance.now() - t0
  })
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1)))
  const wall = performance.now() - t0
  const [u, s, m] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
  rmSync(timeFile, {force: true})
  return {wall, cpuMs: (u! + s!) * 1000, rssMb: m! / 1024, code, stdout, stderr, lastHostAt}
}

const requestsOf = (driver: string, s: Record<string, unknown>): number =>
  driver === 'digitalocean' ? Number(s.requests) : Object.values(s.requests as Record<string, number>).reduce((a, b) => a + b, 0)
const limitedOf = (driver: string, s: Record<string, unknown>): number => (driver === 'digitalocean' ? Number(s.limited) : Number(s.rateLimited))
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`

function envFor(driver: string, url: string, store: string): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {...process.env, BELT_STORE: store, CI: '1', NO_COLOR: '1'}
  for (const k of ['DIGITALOCEAN_API_URL', 'AMAZONEC2_ENDPOINT', 'AWS_PROFILE', 'AWS_DEFAULT_REGION', 'AWS_REGION']) delete base[k]
  return driver === 'digitalocean'
    ? {...base, DIGITALOCEAN_ACCESS_TOKEN: 'bench-token', DIGITALOCEAN_API_URL: url}
    : {...base, AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'bench-secret', AMAZONEC2_ENDPOINT: url}
}

/** A 1-host create against an emulator with no boot delay: the critical path less the boot. */
async function requestPath(driver: 'digitalocean' | 'amazonec2'): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-scale-'))
  const emu = await startEmulator(driver, 0, 1, path.join(dir, 'emu'))
  try {
    const env = envFor(driver, emu.url, path.join(dir, 'store'))
    const walls: number[] = []
    for (let i = 0; i < 3; i++) {
      const c = await belt(['create', '--driver', driver, '--count', '1', '--no-bootstrap', '--prefix', `p${i}x`], env)
      if (c.code !== 0) throw new Error(`1-host create failed: ${c.stderr.slice(-500)}`)
      walls.push(c.wall)
    }
    await belt(['rm', '-y', '*'], env)
    return walls.sort((a, b) => a - b)[1]!
  } finally {
    await emu.stop()
    rmSync(dir, {recursive: true, force: true})
  }
}

console.log(`belt scale bench; ${os.cpus().length} CPUs; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${new Date().toISOString()}`)
let failures = 0
const startups: number[] = []
for (let i = 0; i < 5; i++) startups.push((await belt(['--version'], process.env)).wall)
const startup = startups.sort((a, b) => a - b)[2]!
console.log(`start-up (belt --version, median of 5): ${sec(startup)}`)
for (const driver of drivers) {
  const reqPath = await requestPath(driver)
  console.log(`\n${driver}: one host's create less its boot (1-host create, 0 ms boot; median of 3): ${sec(reqPath)}`)
  for (const {n, boot} of runs) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-scale-'))
    const emu = await startEmulator(driver, boot, n, path.join(dir, 'emu'))
    const env = envFor(driver, emu.url, path.join(dir, 'store'))
    try {
      const s0 = await emu.stats()
      const create = await belt(['create', '--driver', driver, '--count', String(n), '--no-bootstrap'], env)
      const s1 = await emu.stats()
      const ls = await belt(['ls'], env)
      const s2 = await emu.stats()
      const rows = ls.stdout.split('\n').slice(1).filter((l) => l.trim())
      const notRunning = rows.filter((l) => !/\bRunning\b/.test(l))
      const rm = await belt(['rm', '-y', '*'], env)
      const s3 = await emu.stats()
      const critical = boot + reqPath
      const line = (what: string, st: Step, a: Record<string, unknown>, b: Record<string, unknown>, extra = '') =>
        console.log(
          `  ${what.padEnd(7)} ${sec(st.wall).padStart(9)}  exit ${st.code}  requests ${requestsOf(driver, b) - requestsOf(driver, a)} (${((requestsOf(driver, b) - requestsOf(driver, a)) / n).toFixed(3)}/host)  429s ${limitedOf(driver, b) - limitedOf(driver, a)}  CPU ${(st.cpuMs / n).toFixed(1)} ms/host (${(st.cpuMs / 1000).toFixed(2)} s)  peak RSS ${st.rssMb.toFixed(0)} MB${extra}`,
        )
      console.log(`${driver}, ${n} hosts, ${boot} ms boot (critical path ${sec(critical)}):`)
      line('create', create, s0, s1, `  ratio ${(create.wall / critical).toFixed(2)}x (last host created at ${sec(create.lastHostAt)})`)
      line('ls', ls, s1, s2, `  ${sec(ls.wall - startup)} after start-up; rows ${rows.length}, not Running ${notRunning.length}`)
      line('rm', rm, s2, s3, `  last record gone at ${sec(rm.lastHostAt)}`)
      if (driver === 'amazonec2') console.log(`  emulator requests by action: ${JSON.stringify((s3 as {requests: unknown}).requests)}`)
      else console.log(`  emulator requests by route: ${JSON.stringify((s3 as {byRoute: unknown}).byRoute)}`)
      for (const [what, st] of [['create', create], ['ls', ls], ['rm', rm]] as const)
        if (st.code !== 0) {
          failures++
          console.log(`  ${what} stderr tail: ${st.stderr.slice(-800)}`)
        }
      if (notRunning.length > 0) console.log(`  e.g. ${notRunning.slice(0, 3).join(' | ')}`)
    } finally {
      await emu.stop()
      rmSync(dir, {recursive: true, force: true})
    }
  }
}
spawnSync('true')
console.log(`\nload after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
process.exit(failures > 0 ? 1 : 0)
