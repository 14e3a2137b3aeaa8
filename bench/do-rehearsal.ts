/**
 * Rehearsal: N droplets (300 by default) through the DigitalOcean driver against the emulator, with
 * simulated hosts (a loopback address each, a banner on port 22) and the REAL default rate limit
 * (5,000/h and 250/min per token, enforced by the emulator on the wall clock; nothing is scaled).
 * Creates with createMany (10 names per request), waits for every droplet, removes them one by one
 * as `belt rm` would, then the cluster's firewall and key. Prints the API requests by kind, the 429s,
 * and how long requests were held back by the rate limit. Exits 1 if any host failed.
 *
 * Run as root (the simulated hosts bind port 22 on 127.79.x.y) after `npx tsc -p tsconfig.json`:
 *
 *   node dist/bench/do-rehearsal.js [--count 300] [--boot-delay-ms 20000] [--rate-limit 5000/h,250/min]
 *     [--fault-429 0] [--fault-5xx 0] [--fault-never-active 0] [--seed 1] [--mode many|single] [--concurrency 30]
 *     [--active-timeout-ms 120000]
 * Hosts that fail only because --fault-never-active made their droplet stay 'new' do not count as failures.
 */
import {generateKeyPairSync} from 'node:crypto'
import {parseArgs} from 'node:util'
import pLimit from 'p-limit'
import {DoClient} from '../drivers/digitalocean/client.js'
import {memoryContext} from '../drivers/digitalocean/emulator/context.js'
import {parseRateLimit} from '../drivers/digitalocean/emulator/limiter.js'
import {startEmulator} from '../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking} from '../drivers/digitalocean/emulator/simulated-backing.js'
import {createDigitalOceanDriver} from '../drivers/digitalocean/index.js'
import type {HostSpec, Machine} from '../drivers/driver.js'

const {values: a} = parseArgs({
  options: {
    count: {type: 'string', default: '300'},
    'boot-delay-ms': {type: 'string', default: '20000'},
    'rate-limit': {type: 'string', default: '5000/h,250/min'},
    'fault-429': {type: 'string', default: '0'},
    'fault-5xx': {type: 'string', default: '0'},
    'fault-never-active': {type: 'string', default: '0'},
    seed: {type: 'string', default: '1'},
    mode: {type: 'string', default: 'many'},
    concurrency: {type: 'string', default: '30'},
    'remove-concurrency': {type: 'string', default: '16'},
    'active-timeout-ms': {type: 'string', default: '120000'},
  },
})

const count = Number(a.count)
const limit = parseRateLimit(a['rate-limit']!)
if (typeof limit === 'string') throw new Error(`--rate-limit: ${limit}`)
const mode = a.mode === 'single' ? 'single' : 'many'
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

function publicKey(): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} belt-rehearsal`
}

const backing = createSimulatedBacking({octet: 79})
const emu = await startEmulator({
  backing,
  backingContext: memoryContext(),
  backingConcurrency: 64,
  bootDelayMs: Number(a['boot-delay-ms']),
  rateLimit: limit,
  faults: {rate429: Number(a['fault-429']), rate5xx: Number(a['fault-5xx']), neverActive: Number(a['fault-never-active'])},
  seed: Number(a.seed),
})
// The client as the CLI builds it (default pacing: the API's 250/min); kept to read its counters.
const token = 'dop_v1_rehearsal'
const client = new DoClient({apiUrl: emu.url, token})
const driver = createDigitalOceanDriver({client: () => client, activeTimeoutMs: Number(a['active-timeout-ms'])})
const ctx = memoryContext()
const options = {'access-token': token, 'api-url': emu.url, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', 'admin-cidr': '203.0.113.7/32'}
const cluster = {name: 'rehearsal', sshPublicKey: publicKey()}
const specs: HostSpec[] = Array.from({length: count}, (_, i) => ({name: `node${String(i + 1).padStart(3, '0')}`, cluster, options}))
// Bounded: the rehearsal stops itself.
const deadline = setTimeout(() => {
  console.error('rehearsal: 30 min deadline reached, aborting')
  process.exit(2)
}, 30 * 60_000)
deadline.unref()

const t0 = performance.now()
let failed = 0
try {
  await driver.preflight(options, ctx)
  const tCreate = performance.now()
  let results: Array<Machine | Error>
  if (mode === 'many') results = await driver.createMany(specs, ctx)
  else {
    const lim = pLimit(Number(a.concurrency))
    results = await Promise.all(specs.map((s) => lim(() => driver.create(s, ctx).catch((e: Error) => e))))
  }
  const createMs = performance.now() - tCreate
  const machines = results.filter((r): r is Machine => !(r instanceof Error))
  const errors = results.filter((r): r is Error => r instanceof Error)
  // Droplets the emulator was told never to activate fail by design; any other failure counts.
  failed = errors.length - Math.min(emu.stats.neverActive, errors.filter((e) => /was not active/.test(e.message)).length)
  const waitAfterCreate = client.stats.rateLimitWaitMs
  const requestsAfterCreate = Object.values(client.stats.requests).reduce((x, y) => x + y, 0)

  const tRemove = performance.now()
  const rl = pLimit(Number(a['remove-concurrency']))
  const removeErrors = (await Promise.all(machines.map((m) => rl(() => driver.remove(m, options, ctx).then(() => undefined, (e: Error) => e))))).filter(Boolean)
  await driver.removeCluster(cluster.name, options, ctx)
  const removeMs = performance.now() - tRemove
  failed += removeErrors.length

  const total = Object.values(client.stats.requests).reduce((x, y) => x + y, 0)
  console.log(`DigitalOcean rehearsal: ${count} droplets, mode ${mode === 'many' ? 'createMany (10 names per request)' : `create x${a.concurrency}`}, boot delay ${secs(Number(a['boot-delay-ms']))} +-20%`)
  console.log(`emulator rate limit: ${limit.perHour}/h, ${limit.perMinute}/min (wall clock, not scaled); faults: 429 ${a['fault-429']}, 5xx ${a['fault-5xx']}, never-active ${a['fault-never-active']}`)
  console.log(`created: ${machines.length}/${count} in ${secs(createMs)}; removed: ${machines.length - removeErrors.length} in ${secs(removeMs)}; total ${secs(performance.now() - t0)}`)
  for (const e of errors.slice(0, 5)) console.log(`  create failed: ${e.message}`)
  for (const e of removeErrors.slice(0, 5)) console.log(`  remove failed: ${(e as Error).message}`)
  console.log(`API requests: ${total} (${requestsAfterCreate} for preflight + create + wait, ${total - requestsAfterCreate} for removal)`)
  for (const [kind, n] of Object.entries(client.stats.requests).sort((x, y) => y[1] - x[1])) console.log(`  ${String(n).padStart(5)}  ${kind}`)
  console.log(`responses by status: ${JSON.stringify(client.stats.statuses)}`)
  console.log(`429 received: ${client.stats.rateLimited} (emulator: ${emu.stats.limited} for the limit, ${emu.stats.faults429} injected)`)
  console.log(`time held back by the rate limit: ${secs(client.stats.rateLimitWaitMs)} (${secs(waitAfterCreate)} during create, ${secs(client.stats.rateLimitWaitMs - waitAfterCreate)} during removal)`)
  console.log(`transient retries: ${client.stats.transientRetries} (backoff ${secs(client.stats.backoffWaitMs)}); 5xx injected: ${emu.stats.faults5xx} (${emu.stats.lostAnswers} after the work was done)`)
  console.log(`droplets the emulator made: ${emu.stats.dropletsCreated} (never active: ${emu.stats.neverActive}); left: ${emu.droplets().length}, firewalls left: ${emu.firewalls().length}, keys left: ${emu.sshKeys().length}`)
  if (emu.droplets().length > 0) failed++
} finally {
  await emu.close()
  clearTimeout(deadline)
}
process.exitCode = failed > 0 ? 1 : 0
