/**
 * Benchmark: Ctrl-C chaos at full size, through the `belt` binary (see chaos-lib.ts).
 *  - DigitalOcean emulator, simulated backing (no real hosts), real default rate limits, 5% 429s
 *    2% 5xx and 1% droplets that never become active: `belt create --count 300 --no-bootstrap`, 20 random interrupts, the same command
 *    until it finishes, then `belt rm -y '*'`.
 *  - local driver: `belt create --count 20 --swarm` with SSH sessions dropped every ~3 s, 20 random
 *    interrupts, the same, then rm.
 * Prints, for each: extra hosts created, steps where reality and the store disagreed, hosts not
 * finished after the final run, resources left after rm (all must be 0), and the wall times.
 * Run as root after `npm run build`:
 *
 *   node dist/bench/chaos.js [do|local|both=both] [interrupts=20] [doHosts=300] [localHosts=20]
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {chaos, dropletIds, dropSshSessions, localNamespaces, prng, type ChaosReport} from './chaos-lib.js'

const which = process.argv[2] ?? 'both'
const interrupts = Number(process.argv[3] ?? 20)
const doHosts = Number(process.argv[4] ?? 300)
const localHosts = Number(process.argv[5] ?? 20)
const root = path.resolve(import.meta.dirname, '../..')
const bin = path.join(root, 'bin/run.js')
const tmp = mkdtempSync(path.join(os.tmpdir(), 'belt-chaos-bench-'))
const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({...process.env, CI: 'true', NO_COLOR: '1', ...extra})
const log = (l: string) => console.log(`  ${l}`)

function summary(r: ChaosReport, ms: number): void {
  console.log(`${r.label}: ${r.steps.filter((s) => s.kind.includes('interrupt')).length} interrupted runs, then the same command (exit ${r.finalCode}), then rm, in ${(ms / 1000).toFixed(1)} s`)
  console.log(`  extra hosts created: ${r.extraHosts}`)
  console.log(`  steps where reality and the store disagreed: ${r.mismatches}`)
  console.log(`  hosts not finished after the final run: ${r.unfinished.length}${r.unfinished.length ? ` (${r.unfinished.slice(0, 5).join(', ')})` : ''}`)
  console.log(`  resources left after rm (orphans): ${r.orphans.length}`)
  console.log(`  interrupted runs that exited other than 130/0: ${r.badExits.length}`)
  console.log(`  runs of the same command after the interrupts: ${r.steps.filter((s) => s.kind === 'final').length} (exit 4 means hosts failed under the faults and were finished by the next run)`)
  if (r.disruptions) console.log(`  faults injected while belt ran (SSH sessions dropped): ${r.disruptions}`)
}

async function startEmulator(): Promise<{child: ChildProcess; url: string}> {
  const child = spawn(process.execPath, [bin, 'emulator', 'digitalocean', '--port', '0', '--backing', 'simulated', '--boot-delay', '20000', '--fault-429', '0.05', '--fault-5xx', '0.02', '--fault-never-active', '0.01', '--seed', '3'], {
    env: env({BELT_STORE: path.join(tmp, 'emulator-store')}),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /DIGITALOCEAN_API_URL=(http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.on('exit', (code) => reject(new Error(`the emulator exited ${code}`)))
  })
  return {child, url}
}

const reports: ChaosReport[] = []
try {
  if (which === 'do' || which === 'both') {
    const {child, url} = await startEmulator()
    try {
      const store = path.join(tmp, 'do-store')
      const t0 = performance.now()
      const r = await chaos(
        {
          label: `digitalocean emulator, ${doHosts} hosts, simulated backing, real limits, 5% 429 + 2% 5xx + 1% never active`,
          create: [bin, 'create', '--driver', 'digitalocean', '--digitalocean-api-url', url, '--digitalocean-active-timeout', '40', '--count', String(doHosts), '--no-bootstrap'],
          remove: [bin, 'rm', '-y', '*'],
          env: env({BELT_STORE: store, DIGITALOCEAN_ACCESS_TOKEN: 'dop_v1_chaos_bench'}),
          store,
          hosts: doHosts,
          reality: dropletIds(url, 'dop_v1_chaos_checker'),
          kinds: ['droplet'],
          goal: 'created',
        },
        {interrupts, minDelayMs: 200, maxDelayMs: 8000, seed: 20261202, log, finalRuns: 5},
      )
      summary(r, performance.now() - t0)
      reports.push(r)
    } finally {
      child.kill('SIGTERM')
    }
  }
  if (which === 'local' || which === 'both') {
    const store = path.join(tmp, 'local-store')
    const subnet = '10.247.0.0/16'
    const t0 = performance.now()
    const r = await chaos(
      {
        label: `local driver, ${localHosts} hosts --swarm`,
        create: [bin, 'create', '--driver', 'local', '--local-subnet', subnet, '--count', String(localHosts), '--swarm'],
        remove: [bin, 'rm', '-y', '*'],
        env: env({BELT_STORE: store}),
        store,
        hosts: localHosts,
        reality: localNamespaces(subnet),
        kinds: ['netns'],
        goal: 'joined',
      },
      {interrupts, minDelayMs: 300, maxDelayMs: 6000, seed: 20261203, log, disrupt: dropSshSessions(subnet, prng(7)), disruptEveryMs: 3000, finalRuns: 3},
    )
    summary(r, performance.now() - t0)
    reports.push(r)
  }
} finally {
  rmSync(tmp, {recursive: true, force: true})
}
process.exitCode = reports.every((r) => r.extraHosts === 0 && r.badExits.length === 0 && r.mismatches === 0 && r.orphans.length === 0 && r.unfinished.length === 0 && r.finalCode === 0) ? 0 : 1
