/**
 * Rehearsal: N hosts through the amazonec2 driver against the EC2 emulator (in-process on
 * 127.0.0.1, simulated backing: a loopback address with a listener on port 22 per instance), with
 * an account rate limit and throttling/capacity faults. The driver runs with its production timing
 * (polls 1 s -> 5 s) and the SDK's adaptive retries. Prints, per mode, wall times, the API calls by
 * kind as the driver counted them, throttled responses and retries, and the emulator's own count.
 * Run as root (port 22 on loopback addresses) after `npx tsc -p tsconfig.json`:
 *
 *   node dist/bench/ec2-rehearsal.js [--hosts 300] [--mode both|batch|single] [--rate 20]
 *        [--throttle 0.05] [--capacity 0.02] [--boot-delay 1000] [--batch 50] [--batch-concurrency 3]
 *        [--concurrency 32]
 *
 * `batch`: createMany calls of --batch hosts, --batch-concurrency calls at once (what a service
 * using createMany would do); `single`: one create per host through the pool, --concurrency at once
 * (what `belt create` does today). Removal is always per host, --concurrency at once. Nothing leaves the loopback interface: fake static credentials,
 * the emulator's endpoint, and the instance metadata service switched off.
 */
import {generateKeyPairSync} from 'node:crypto'
import os from 'node:os'
import {parseArgs} from 'node:util'
import type {DriverContext, HostSpec, Machine} from '../drivers/driver.js'
import {Ec2Emulator, createSimulatedBacking, throwawayContext} from '../drivers/amazonec2/emulator/index.js'
import {createAmazonEc2Driver} from '../drivers/amazonec2/index.js'
import {mapSettled} from '../src/scheduler/pool.js'

process.env.AWS_EC2_METADATA_DISABLED = 'true'
process.env.AWS_CONFIG_FILE = '/nonexistent/belt-bench-aws-config'
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/belt-bench-aws-credentials'

const {values: args} = parseArgs({
  options: {
    hosts: {type: 'string', default: '300'},
    mode: {type: 'string', default: 'both'},
    rate: {type: 'string', default: '20'},
    throttle: {type: 'string', default: '0.05'},
    capacity: {type: 'string', default: '0.02'},
    'boot-delay': {type: 'string', default: '1000'},
    batch: {type: 'string', default: '50'},
    'batch-concurrency': {type: 'string', default: '3'},
    concurrency: {type: 'string', default: '32'},
    seed: {type: 'string', default: '1'},
  },
})
const n = Number(args.hosts)
const batch = Number(args.batch)
const concurrency = Number(args.concurrency)
const batchConcurrency = Number(args['batch-concurrency'])
const modes = args.mode === 'both' ? ['batch', 'single'] : [args.mode!]
const credentials = {accessKeyId: 'AKIABENCHEMULATOR000', secretAccessKey: 'bench-secret-not-a-real-one'}

function sshPublicKey(): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} bench`
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const total = (m: Readonly<Record<string, number>>) => Object.values(m).reduce((a, b) => a + b, 0)
const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0
const table = (m: Readonly<Record<string, number>>) =>
  Object.entries(m)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `    ${k.padEnd(32)} ${String(v).padStart(6)}`)
    .join('\n')

async function rehearse(mode: string): Promise<void> {
  const backing = createSimulatedBacking()
  const emu = await Ec2Emulator.start({
    backing,
    bootDelayMs: Number(args['boot-delay']),
    rateLimit: Number(args.rate),
    faultThrottle: Number(args.throttle),
    faultCapacity: Number(args.capacity),
    seed: Number(args.seed),
  })
  const driver = createAmazonEc2Driver({clientConfig: {credentials}})
  let journal = 0
  const ctx: DriverContext = {...throwawayContext(), journal: async () => void journal++}
  const options = {endpoint: emu.endpoint, region: 'us-east-1', 'instance-type': 't3.small', 'root-size': '16', spot: 'false', 'admin-cidr': '0.0.0.0/0'}
  const cluster = {name: `rehearsal-${mode}`, sshPublicKey: sshPublicKey()}
  const specs: HostSpec[] = Array.from({length: n}, (_, i) => ({name: `node${i + 1}`, cluster, options}))
  const perHost: number[] = []
  try {
    const t0 = performance.now()
    await driver.preflight(options, ctx)
    let results: Array<Machine | Error>
    if (mode === 'batch') {
      const chunks = Array.from({length: Math.ceil(n / batch)}, (_, i) => specs.slice(i * batch, i * batch + batch))
      const settled = await mapSettled(chunks, (c) => driver.createMany(c, ctx), {concurrency: batchConcurrency})
      results = settled.flatMap((s, i) => (s.ok ? s.value : chunks[i]!.map(() => s.error as Error)))
    } else {
      const settled = await mapSettled(
        specs,
        async (s) => {
          const t = performance.now()
          const m = await driver.create(s, ctx)
          perHost.push(performance.now() - t)
          return m
        },
        {concurrency},
      )
      results = settled.map((s) => (s.ok ? s.value : (s.error as Error)))
    }
    const createMs = performance.now() - t0
    const created = results.filter((r): r is Machine => !(r instanceof Error))
    const failed = results.filter((r): r is Error => r instanceof Error)
    const createSnapshot = driver.stats.snapshot()
    const emuCreate = {requests: total(emu.stats.requests), rateLimited: emu.stats.rateLimited, throttleFaults: emu.stats.throttleFaults, capacity: emu.stats.errors.InsufficientInstanceCapacity ?? 0}

    const t1 = performance.now()
    const removed = await mapSettled(created, (m) => driver.remove(m, options, ctx), {concurrency})
    await driver.removeCluster(cluster.name, options, ctx)
    const removeMs = performance.now() - t1
    const after = driver.stats.snapshot()
    perHost.sort((a, b) => a - b)

    console.log(`\n== mode ${mode}: ${n} hosts, ${mode === 'batch' ? `createMany calls of ${batch} hosts, ${batchConcurrency} at once` : `create, ${concurrency} at once`}`)
    console.log(`emulator: rate limit ${args.rate}/s, throttle fault ${args.throttle}, capacity fault ${args.capacity}, boot delay ${args['boot-delay']} ms; ${os.cpus().length} cores`)
    console.log(`created ${created.length}, failed ${failed.length}${failed.length ? ` (first: ${failed[0]!.message})` : ''} in ${sec(createMs)} (preflight and shared setup included)`)
    if (perHost.length) console.log(`per-host create: p50 ${sec(q(perHost, 0.5))}, p90 ${sec(q(perHost, 0.9))}, max ${sec(perHost.at(-1) ?? 0)}`)
    console.log(`journal entries: ${journal}`)
    console.log(`create phase, HTTP requests by action (driver's count, SDK retries included): ${total(createSnapshot.requests)}`)
    console.log(table(createSnapshot.requests))
    console.log(`  throttled responses: ${total(createSnapshot.throttled)} (${Object.entries(createSnapshot.throttled).map(([k, v]) => `${k} ${v}`).join(', ')})`)
    console.log(`  retries: SDK ${createSnapshot.sdkRetries}, Belt's own after the SDK gave up ${createSnapshot.ownRetries}`)
    console.log(`  emulator saw ${emuCreate.requests} requests: ${emuCreate.rateLimited} rate-limited, ${emuCreate.throttleFaults} throttle faults, ${emuCreate.capacity} capacity faults`)
    console.log(`removed ${removed.filter((r) => r.ok).length} in ${sec(removeMs)} (terminate + wait terminated, ${concurrency} at once; then removeCluster)`)
    console.log(`whole run, HTTP requests: ${total(after.requests)}; throttled ${total(after.throttled)}; retries SDK ${after.sdkRetries}, own ${after.ownRetries}`)
    if (backing.listening !== 0) throw new Error(`${backing.listening} backing listeners left open`)
  } finally {
    await emu.close()
    await backing.close()
  }
}

for (const mode of modes) await rehearse(mode)
