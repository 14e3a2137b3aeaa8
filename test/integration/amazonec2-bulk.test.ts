/**
 * The amazonec2 driver's bulk paths against the EC2 emulator (in-process on 127.0.0.1, simulated
 * backing), through the official SDK client: states of many instances with DescribeInstances of up
 * to 200 ids per call, TerminateInstances of many ids per call confirmed by DescribeInstances, and
 * readiness polled by DescribeInstances of many ids (never one call per host). Counts come from the
 * emulator's own request counters.
 */
import {generateKeyPairSync} from 'node:crypto'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {ClusterSpec, DriverContext, HostSpec, JournalEntry, Machine} from '../../drivers/driver.js'
import {Ec2Emulator, createSimulatedBacking, type SimulatedBacking} from '../../drivers/amazonec2/emulator/index.js'
import {createAmazonEc2Driver} from '../../drivers/amazonec2/index.js'
import {memoryContext} from '../../drivers/emulator-kit.js'

process.env.AWS_EC2_METADATA_DISABLED = 'true'
process.env.AWS_CONFIG_FILE = '/nonexistent/belt-test-aws-config'
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/belt-test-aws-credentials'
for (const k of ['AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_EC2', 'AMAZONEC2_ENDPOINT', 'AWS_REGION', 'AWS_DEFAULT_REGION']) delete process.env[k]

const CREDENTIALS = {accessKeyId: 'AKIAEMULATORBULKKEY0', secretAccessKey: 'emulator-secret-never-a-real-one-bulk-0123'}
// A shutdown takes milliseconds here: removeCluster waits for the group rather than leave it to the next rm.
const FAST = {pollMinMs: 50, pollMaxMs: 200, sshTimeoutMs: 20_000, throttleBaseMs: 50, throttleMaxMs: 400, requestsPerSecond: 0, groupHeldByShutdownWaitMs: 30_000}

function sshPublicKey(comment: string): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`
}

let emu: Ec2Emulator
let backing: SimulatedBacking
const options: Record<string, string> = {region: 'us-east-1', 'instance-type': 't3.small', spot: 'false', 'admin-cidr': '0.0.0.0/0'}
const driver = () => createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS}, timing: FAST, env: {}})
const specs = (c: ClusterSpec, prefix: string, n: number): HostSpec[] => Array.from({length: n}, (_, i) => ({name: `${prefix}${i + 1}`, cluster: c, options}))
const snapshot = () => ({...emu.stats.requests})
const delta = (before: Record<string, number>, action: string) => (emu.stats.requests[action] ?? 0) - (before[action] ?? 0)

beforeAll(async () => {
  backing = createSimulatedBacking()
  emu = await Ec2Emulator.start({backing, bootDelayMs: 100, terminatedRetentionMs: 60_000})
  options.endpoint = emu.endpoint
})

afterAll(async () => {
  await emu?.close()
  await backing?.close()
})

describe('amazonec2 bulk paths against the emulator', () => {
  it('250 hosts: readiness by DescribeInstances of many ids; states() in 200-id calls; removeMany in one TerminateInstances, confirmed shutting-down', async () => {
    const c: ClusterSpec = {name: 'bulk', sshPublicKey: sshPublicKey('belt@bulk')}
    const before = snapshot()
    const d = driver()
    const made = await d.createMany(specs(c, 'b', 250), memoryContext())
    expect(made.filter((x) => x instanceof Error)).toEqual([])
    const machines = made as Machine[]
    // Far fewer DescribeInstances than hosts: one call serves up to 100 waiting instances.
    expect(delta(before, 'DescribeInstances')).toBeLessThan(60)

    const missing: Machine = {id: 'i-0123456789abcdef0', address: '127.0.0.1', ssh: {user: 'ubuntu', port: 22}, data: {region: 'us-east-1'}}
    const s0 = snapshot()
    const states = await driver().states([...machines, missing], options, memoryContext())
    expect(states.slice(0, -1).every((s) => s === 'running')).toBe(true)
    expect(states.at(-1)).toBe('missing')
    expect(delta(s0, 'DescribeInstances')).toBe(2)

    const ctx: DriverContext & {entries: JournalEntry[]} = memoryContext()
    const r0 = snapshot()
    const res = await driver().removeMany([...machines, missing], options, ctx)
    expect(res.every((x) => x === undefined)).toBe(true)
    // Two calls: EC2 refuses the first for the unknown id, which it names; the second goes without it.
    expect(delta(r0, 'TerminateInstances')).toBe(2)
    expect(delta(r0, 'DescribeInstances')).toBeLessThan(20)
    expect(ctx.entries.filter((e) => e.action === 'deleted')).toHaveLength(250)
    // Records may go: EC2 says shutting-down (irrevocable) or terminated for each.
    expect(await driver().states(machines, options, memoryContext())).toEqual(machines.map(() => 'missing'))
    // Idempotent: terminating again changes nothing (one call, every instance already going).
    const r1 = snapshot()
    expect(await driver().removeMany(machines, options, memoryContext())).toEqual(machines.map(() => undefined))
    expect(delta(r1, 'TerminateInstances')).toBe(1)
    await driver().removeCluster('bulk', options, memoryContext())
  }, 180_000)

  it('states() of an endpoint that does not answer rejects with one line naming it', async () => {
    const m: Machine = {id: 'i-0123456789abcdef0', address: '127.0.0.1', ssh: {user: 'ubuntu', port: 22}, data: {region: 'us-east-1'}}
    const d = createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS, maxAttempts: 1}, timing: {...FAST, throttleRetries: 0}, env: {}})
    await expect(d.states([m], {...options, endpoint: 'http://127.0.0.1:9'}, memoryContext())).rejects.toThrow(/cannot reach the EC2 API http:\/\/127\.0\.0\.1:9/)
  }, 60_000)
})
