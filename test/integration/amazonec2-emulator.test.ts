/**
 * The amazonec2 driver against the EC2 emulator, in-process on 127.0.0.1 with the simulated backing
 * (a real TCP listener on port 22 of a loopback address per instance). Every check of the cloud's
 * side goes through the official SDK client; nothing leaves the loopback interface: the clients
 * get static fake credentials and the emulator's endpoint, and the instance metadata service and
 * shared config files are switched off for this process.
 */
import {generateKeyPairSync} from 'node:crypto'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import {
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  ImportKeyPairCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2'
import pLimit from 'p-limit'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {ClusterSpec, DriverContext, DriverOptions, HostSpec, JournalEntry, Machine} from '../../drivers/driver.js'
import {Ec2Emulator, createSimulatedBacking, type SimulatedBacking} from '../../drivers/amazonec2/emulator/index.js'
import {createAmazonEc2Driver, type AmazonEc2Driver} from '../../drivers/amazonec2/index.js'
import {describeDriverConformance, tcpReachable} from '../../drivers/testing/conformance.js'
import {isUserError} from '../../src/errors.js'

// Hermetic SDK: no instance metadata service, no shared files, no endpoint from the environment.
process.env.AWS_EC2_METADATA_DISABLED = 'true'
process.env.AWS_CONFIG_FILE = '/nonexistent/belt-test-aws-config'
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/belt-test-aws-credentials'
for (const k of ['AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_EC2', 'AMAZONEC2_ENDPOINT', 'AWS_REGION', 'AWS_DEFAULT_REGION']) delete process.env[k]

const CREDENTIALS = {accessKeyId: 'AKIAEMULATORTESTKEY0', secretAccessKey: 'emulator-secret-never-a-real-one-0123456789'}
// A shutdown takes milliseconds here: removeCluster waits for the group rather than leave it to the next rm.
const FAST = {pollMinMs: 50, pollMaxMs: 200, sshTimeoutMs: 20_000, throttleBaseMs: 50, throttleMaxMs: 400, rebootDownGraceMs: 500, groupHeldByShutdownWaitMs: 30_000}

/** An OpenSSH one-line ed25519 public key. */
function sshPublicKey(comment: string): string {
  const {publicKey} = generateKeyPairSync('ed25519')
  const raw = publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(b.length)
    return Buffer.concat([len, b])
  }
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`
}

function memoryContext(): DriverContext & {entries: JournalEntry[]; lines: string[]} {
  const queues = new Map<string, Promise<unknown>>()
  const entries: JournalEntry[] = []
  const lines: string[] = []
  return {
    stateDir: '/nonexistent/belt-ec2-test',
    entries,
    lines,
    log: (m) => void lines.push(m),
    withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const run = (queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn)
      queues.set(
        name,
        run.catch(() => undefined),
      )
      return run
    },
    journal: async (e) => void entries.push(e),
  }
}

let emu: Ec2Emulator
let backing: SimulatedBacking
let sdk: EC2Client
/** Driver options for every test; the endpoint is filled in once the emulator listens. */
const options: Record<string, string> = {region: 'us-east-1', 'instance-type': 't3.small', 'root-size': '16', spot: 'false', 'admin-cidr': '0.0.0.0/0'}

const newDriver = (): AmazonEc2Driver => createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS}, timing: FAST, env: {}})
const cluster = (name: string): ClusterSpec => ({name, sshPublicKey: sshPublicKey(`belt@${name}`)})
const specs = (c: ClusterSpec, prefix: string, n: number, opts: DriverOptions = options): HostSpec[] =>
  Array.from({length: n}, (_, i) => ({name: `${prefix}${i + 1}`, cluster: c, options: opts}))

async function instancesOf(clusterName: string, states = ['pending', 'running', 'stopping', 'stopped', 'shutting-down']): Promise<Instance[]> {
  const out: Instance[] = []
  let token: string | undefined
  do {
    const page = await sdk.send(
      new DescribeInstancesCommand({Filters: [{Name: 'tag:belt:cluster', Values: [clusterName]}, {Name: 'instance-state-name', Values: states}], MaxResults: 1000, NextToken: token}),
    )
    for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []))
    token = page.NextToken
  } while (token)
  return out
}

/** Removes hosts (8 at a time) and the cluster's shared resources. */
async function cleanUp(driver: AmazonEc2Driver, machines: ReadonlyArray<Machine | Error>, clusterName: string): Promise<void> {
  const ctx = memoryContext()
  const limit = pLimit(8)
  await Promise.all(machines.filter((m): m is Machine => !(m instanceof Error)).map((m) => limit(() => driver.remove(m, options, ctx))))
  await driver.removeCluster(clusterName, options, ctx)
}

const requests = (action: string) => emu.stats.requests[action] ?? 0

beforeAll(async () => {
  backing = createSimulatedBacking()
  // Pages capped at 5: every paginated call of the driver must follow NextToken to see everything.
  emu = await Ec2Emulator.start({backing, bootDelayMs: 50, terminatedRetentionMs: 60_000, maxPageSize: 5})
  options.endpoint = emu.endpoint
  sdk = new EC2Client({region: 'us-east-1', endpoint: emu.endpoint, credentials: CREDENTIALS, maxAttempts: 1})
})

afterAll(async () => {
  sdk?.destroy()
  await emu?.close()
  expect(backing.listening).toBe(0)
  await backing?.close()
})

describeDriverConformance({
  name: 'amazonec2 (emulator, simulated backing)',
  makeDriver: newDriver,
  options,
  context: memoryContext(),
  cluster: cluster('conformance'),
  hostNames: ['ec2-conf-a', 'ec2-conf-b'],
  secrets: [CREDENTIALS.secretAccessKey, CREDENTIALS.accessKeyId],
  missingMachine: () => ({id: 'i-0123456789abcdef0', address: '127.0.0.1', ssh: {user: 'root', port: 22}, data: {region: 'us-east-1'}}),
  async listResources() {
    // shutting-down is gone (irrevocable; STATE in drivers/amazonec2/index.ts).
    const instances = (await sdk.send(new DescribeInstancesCommand({Filters: [{Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped']}]}))).Reservations?.flatMap(
      (r) => r.Instances ?? [],
    )
    const keys = (await sdk.send(new DescribeKeyPairsCommand({}))).KeyPairs ?? []
    const groups = ((await sdk.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups ?? []).filter((g) => g.GroupName !== 'default')
    return [...(instances ?? []).map((i) => `instance ${i.InstanceId}`), ...keys.map((k) => `key-pair ${k.KeyName}`), ...groups.map((g) => `security-group ${g.GroupId}`)].sort()
  },
})

describe('amazonec2 against the emulator', () => {
  it('creates 25 hosts with one RunInstances call, names them, journals every id', async () => {
    const driver = newDriver()
    const c = cluster('batch')
    const ctx = memoryContext()
    const before = requests('RunInstances')
    const results = await driver.createMany(specs(c, 'b', 25), ctx)
    const machines = results.filter((r): r is Machine => !(r instanceof Error))
    expect(machines).toHaveLength(25)
    expect(driver.stats.commands.RunInstances).toBe(1)
    expect(requests('RunInstances') - before).toBe(1)
    expect(new Set(machines.map((m) => m.address)).size).toBe(25)
    for (const m of machines) await tcpReachable(m.address, 22, 5_000)
    expect(ctx.entries.filter((e) => e.kind === 'instance' && e.action === 'created').map((e) => e.host).sort()).toEqual(specs(c, 'b', 25).map((s) => s.name).sort())
    // RunInstances tags a batch alike: each host's Name comes from CreateTags.
    const live = await instancesOf('batch')
    expect(live.map((i) => i.Tags?.find((t) => t.Key === 'Name')?.Value).sort()).toEqual(specs(c, 'b', 25).map((s) => s.name).sort())
    expect(machines[0]!.data).toMatchObject({region: 'us-east-1', instanceType: 't3.small', az: 'us-east-1a'})
    expect(machines[0]!.privateAddress).toBeDefined()
    await cleanUp(driver, results, 'batch')
    expect(await instancesOf('batch')).toEqual([])
  })

  it('RunInstances with the same ClientToken twice returns the same instances', async () => {
    const driver = newDriver()
    const c = cluster('token')
    const ctx = memoryContext()
    // Shared resources through the driver, then two identical launches through the SDK.
    const [first] = await driver.createMany(specs(c, 't', 1), ctx)
    expect(first).not.toBeInstanceOf(Error)
    const one = (first as Machine).data
    const input = {
      ImageId: String(one.ami),
      InstanceType: 't3.small' as const,
      MinCount: 2,
      MaxCount: 2,
      ClientToken: 'belt-test-token-1',
      SubnetId: String(one.subnetId),
      SecurityGroupIds: [String(one.securityGroupId)],
      TagSpecifications: [{ResourceType: 'instance' as const, Tags: [{Key: 'belt:cluster', Value: 'token'}]}],
    }
    const a = await sdk.send(new RunInstancesCommand(input))
    const b = await sdk.send(new RunInstancesCommand(input))
    expect(b.ReservationId).toBe(a.ReservationId)
    expect(b.Instances?.map((i) => i.InstanceId)).toEqual(a.Instances?.map((i) => i.InstanceId))
    expect(await instancesOf('token')).toHaveLength(3)
    await expect(sdk.send(new RunInstancesCommand({...input, MaxCount: 3}))).rejects.toMatchObject({name: 'IdempotentParameterMismatch'})
    // The driver's own launches carry a token each.
    const own = (await sdk.send(new DescribeInstancesCommand({InstanceIds: [(first as Machine).id]}))).Reservations![0]!.Instances![0]!
    expect(own.ClientToken).toMatch(/^[0-9a-f-]{36}$/)
    await sdk.send(new TerminateInstancesCommand({InstanceIds: a.Instances!.map((i) => i.InstanceId!)}))
    await cleanUp(driver, [first!], 'token')
  })

  it('a lost RunInstances response launches nothing twice: the SDK resends the token, or Belt finds the launch by it', async () => {
    const c = cluster('lost')
    const ctx = memoryContext()
    // The SDK retries the 503 with the same ClientToken: EC2 answers with the first launch.
    const driver = newDriver()
    emu.loseResponses('RunInstances', 1)
    const a = await driver.createMany(specs(c, 'la', 3), ctx)
    expect(a.filter((r) => r instanceof Error)).toEqual([])
    expect(driver.stats.requests.RunInstances).toBe(2)
    expect(await instancesOf('lost')).toHaveLength(3)
    // Without SDK retries Belt itself looks the launch up by its token.
    const noRetry = createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS, maxAttempts: 1}, timing: FAST, env: {}})
    emu.loseResponses('RunInstances', 1)
    const b = await noRetry.createMany(specs(c, 'lb', 2), ctx)
    expect(b.filter((r) => r instanceof Error)).toEqual([])
    expect(noRetry.stats.requests.RunInstances).toBe(1)
    expect(noRetry.stats.commands.DescribeInstances).toBeGreaterThanOrEqual(1)
    expect(await instancesOf('lost')).toHaveLength(5)
    expect(ctx.entries.filter((e) => e.kind === 'instance' && e.action === 'created')).toHaveLength(5)
    await cleanUp(driver, [...a, ...b], 'lost')
  })

  it('sets up the key pair and security group once across concurrent creates by two driver objects', async () => {
    const c = cluster('shared')
    const ctx = memoryContext() // one lock space, as two belt processes sharing a store
    const [d1, d2] = [newDriver(), newDriver()]
    const [m1, m2] = await Promise.all([d1.create({name: 's1', cluster: c, options}, ctx), d2.create({name: 's2', cluster: c, options}, ctx)])
    const total = (k: string) => (d1.stats.commands[k] ?? 0) + (d2.stats.commands[k] ?? 0)
    expect(total('ImportKeyPair')).toBe(1)
    expect(total('CreateSecurityGroup')).toBe(1)
    expect(total('AuthorizeSecurityGroupIngress')).toBe(1)
    // A third create by a fresh object finds everything in place: no rule added again.
    const d3 = newDriver()
    const m3 = await d3.create({name: 's3', cluster: c, options}, ctx)
    expect(d3.stats.commands.AuthorizeSecurityGroupIngress ?? 0).toBe(0)
    expect(d3.stats.commands.ImportKeyPair ?? 0).toBe(0)
    const group = (await sdk.send(new DescribeSecurityGroupsCommand({GroupIds: [String(m1.data.securityGroupId)]}))).SecurityGroups![0]!
    const rules = (group.IpPermissions ?? []).flatMap((p) => [...(p.IpRanges ?? []), ...(p.UserIdGroupPairs ?? [])].map((src) => `${p.IpProtocol}/${p.FromPort} ${(src as {CidrIp?: string}).CidrIp ?? (src as {GroupId?: string}).GroupId}`))
    expect(rules.sort()).toEqual([`tcp/22 0.0.0.0/0`, `tcp/2376 0.0.0.0/0`, `tcp/2377 ${group.GroupId}`, `tcp/7946 ${group.GroupId}`, `udp/4789 ${group.GroupId}`, `udp/7946 ${group.GroupId}`].sort())
    // A narrower admin CIDR later adds its two rules and leaves the others alone.
    const d4 = newDriver()
    const narrow = {...options, 'admin-cidr': '203.0.113.7/32'}
    const m4 = await d4.create({name: 's4', cluster: c, options: narrow}, ctx)
    expect(d4.stats.commands.AuthorizeSecurityGroupIngress).toBe(1)
    const after = (await sdk.send(new DescribeSecurityGroupsCommand({GroupIds: [group.GroupId!]}))).SecurityGroups![0]!
    expect((after.IpPermissions ?? []).flatMap((p) => p.IpRanges ?? []).map((r) => r.CidrIp).sort()).toEqual(['0.0.0.0/0', '0.0.0.0/0', '203.0.113.7/32', '203.0.113.7/32'])
    await cleanUp(d1, [m1, m2, m3, m4], 'shared')
  })

  it('removeCluster waits out DependencyViolation while instances terminate, then deletes group and key', async () => {
    const driver = newDriver()
    const c = cluster('dependency')
    const ctx = memoryContext()
    const m = await driver.create({name: 'd1', cluster: c, options}, ctx)
    emu.setDelays({terminateMs: 1_500})
    try {
      // Terminated behind Belt's back: the instance is shutting-down and still holds the group.
      await sdk.send(new TerminateInstancesCommand({InstanceIds: [m.id]}))
      const violations = emu.stats.errors.DependencyViolation ?? 0
      await driver.removeCluster('dependency', options, ctx)
      expect((emu.stats.errors.DependencyViolation ?? 0) - violations).toBeGreaterThanOrEqual(1)
      expect(driver.stats.commands.DeleteSecurityGroup).toBeGreaterThanOrEqual(2)
    } finally {
      emu.setDelays({terminateMs: 50})
    }
    expect((await sdk.send(new DescribeSecurityGroupsCommand({Filters: [{Name: 'tag:belt:cluster', Values: ['dependency']}]}))).SecurityGroups).toEqual([])
    expect((await sdk.send(new DescribeKeyPairsCommand({Filters: [{Name: 'tag:belt:cluster', Values: ['dependency']}]}))).KeyPairs).toEqual([])
    expect(ctx.entries.filter((e) => e.action === 'deleted').map((e) => e.kind).sort()).toEqual(['key-pair', 'security-group'])
    // Idempotent.
    await driver.removeCluster('dependency', options, ctx)
    await driver.remove(m, options, ctx)
  })

  it('without the wait (the default), removeCluster leaves a group held by instances shutting down to the next rm; a create takes it back', async () => {
    const driver = createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS}, timing: {...FAST, groupHeldByShutdownWaitMs: 0}, env: {}})
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'belt-ec2-pending-'))
    const ctx = {...memoryContext(), stateDir}
    const groupsOf = async (name: string) => (await sdk.send(new DescribeSecurityGroupsCommand({Filters: [{Name: 'tag:belt:cluster', Values: [name]}]}))).SecurityGroups ?? []
    const pending = async () => JSON.parse(await readFile(path.join(stateDir, 'pending-security-groups.json'), 'utf8').catch(() => '[]')) as {groupId: string}[]
    emu.setDelays({terminateMs: 3_000})
    try {
      const c = cluster('deferred')
      const [m1] = (await driver.createMany(specs(c, 'df', 1), ctx)) as Machine[]
      const group = (await groupsOf('deferred'))[0]!.GroupId!
      expect(await driver.removeMany([m1!], options, ctx)).toEqual([undefined])
      expect(await driver.state(m1!, options, ctx)).toBe('missing') // shutting-down for 3 s: gone for Belt
      await driver.removeCluster('deferred', options, ctx)
      expect(ctx.lines.join('\n')).toMatch(new RegExp(`security group ${group} of cluster deferred stays until its instances have shut down`))
      expect(await pending()).toMatchObject([{groupId: group, cluster: 'deferred'}])
      expect((await sdk.send(new DescribeKeyPairsCommand({Filters: [{Name: 'tag:belt:cluster', Values: ['deferred']}]}))).KeyPairs).toEqual([])

      // A create of the same cluster reuses the group, and takes it off the list.
      const [m2] = (await createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS}, timing: FAST, env: {}}).createMany(specs(c, 'df', 1), ctx)) as Machine[]
      expect((await groupsOf('deferred')).map((g) => g.GroupId)).toEqual([group])
      expect(await pending()).toEqual([])
      await driver.removeMany([m2!], options, ctx)
      await driver.removeCluster('deferred', options, ctx)
      expect(await pending()).toMatchObject([{groupId: group}])

      // Once the instances have terminated, the next rm with the driver (any cluster) deletes it.
      await expect.poll(async () => (await instancesOf('deferred')).length, {timeout: 30_000, interval: 200}).toBe(0)
      await driver.removeCluster('another', options, ctx)
      expect(await groupsOf('deferred')).toEqual([])
      expect(await pending()).toEqual([])
      expect(ctx.entries).toContainEqual({kind: 'security-group', id: group, action: 'deleted'})
    } finally {
      emu.setDelays({terminateMs: 50})
      await rm(stateDir, {recursive: true, force: true})
    }
  }, 120_000)

  it('all creates succeed under throttling faults and a rate limit; the retries are counted', async () => {
    const driver = newDriver()
    const c = cluster('throttled')
    const ctx = memoryContext()
    const faultsBefore = emu.stats.throttleFaults + emu.stats.rateLimited
    emu.setFaults({throttle: 0.2, rateLimit: 40})
    let results: Array<Machine | Error>
    try {
      const [batch, ...singles] = await Promise.all([driver.createMany(specs(c, 'tb', 8), ctx), ...specs(c, 'ts', 3).map((s) => driver.create(s, ctx))])
      results = [...batch!, ...(singles as Machine[])]
    } finally {
      emu.setFaults({throttle: 0, rateLimit: 0})
    }
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    const throttled = Object.values(driver.stats.throttled).reduce((a, b) => a + b, 0)
    expect(throttled).toBeGreaterThan(0)
    // Every throttled response the emulator sent reached the driver's counter, and each was retried.
    expect(throttled).toBe(emu.stats.throttleFaults + emu.stats.rateLimited - faultsBefore)
    expect(driver.stats.sdkRetries + driver.stats.ownRetries).toBeGreaterThanOrEqual(throttled)
    await cleanUp(driver, results, 'throttled')
  })

  it('moves to the next zone when one has no capacity, and rides out random capacity faults', async () => {
    const driver = createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS, maxAttempts: 1}, timing: FAST, env: {}})
    const c = cluster('capacity')
    const ctx = memoryContext()
    const before = emu.stats.errors.InsufficientInstanceCapacity ?? 0
    emu.setFaults({noCapacityZones: ['us-east-1a']})
    let results: Array<Machine | Error>
    try {
      results = await driver.createMany(specs(c, 'cap', 6), ctx)
    } finally {
      emu.setFaults({noCapacityZones: []})
    }
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    expect(new Set((results as Machine[]).map((m) => m.data.az))).toEqual(new Set(['us-east-1b']))
    expect((emu.stats.errors.InsufficientInstanceCapacity ?? 0) - before).toBe(1)
    expect(ctx.lines.join('\n')).toMatch(/InsufficientInstanceCapacity in us-east-1a; trying us-east-1b/)
    // Random faults: the SDK retries them (HTTP 500) under the same ClientToken, then Belt tries other zones.
    const tolerant = newDriver()
    emu.setFaults({capacity: 0.3})
    let more: Array<Machine | Error>
    try {
      more = await Promise.all(specs(c, 'rnd', 4).map((s) => tolerant.create(s, ctx)))
    } finally {
      emu.setFaults({capacity: 0})
    }
    await cleanUp(driver, [...results, ...more], 'capacity')
  })

  it('DescribeInstances pages with MaxResults/NextToken; the driver follows them', async () => {
    const driver = newDriver()
    const c = cluster('pages')
    const ctx = memoryContext()
    const results = await driver.createMany(specs(c, 'p', 12), ctx)
    expect(results.filter((r) => r instanceof Error)).toEqual([])
    const seen: string[] = []
    let token: string | undefined
    let pages = 0
    do {
      const page = await sdk.send(new DescribeInstancesCommand({Filters: [{Name: 'tag:belt:cluster', Values: ['pages']}], MaxResults: 5, NextToken: token}))
      const ids = (page.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!)
      expect(ids.length).toBeLessThanOrEqual(5)
      seen.push(...ids)
      token = page.NextToken
      pages++
    } while (token)
    expect(pages).toBe(3)
    expect(new Set(seen).size).toBe(12)
    await expect(sdk.send(new DescribeInstancesCommand({InstanceIds: [seen[0]!], MaxResults: 5}))).rejects.toMatchObject({name: 'InvalidParameterCombination'})
    // removeCluster must see all 12 (pages of 5) to know the cluster is still in use.
    await driver.removeCluster('pages', options, ctx)
    expect(ctx.lines.join('\n')).toMatch(/12 instance\(s\) still carry its tag/)
    await cleanUp(driver, results, 'pages')
  })

  it('a host whose instance fails to launch is reported and terminated; the others are created', async () => {
    const failing = createSimulatedBacking({failNames: new Set(['f2'])})
    const emu2 = await Ec2Emulator.start({backing: failing, bootDelayMs: 20})
    try {
      const driver = newDriver()
      const opts = {...options, endpoint: emu2.endpoint}
      const ctx = memoryContext()
      const results = await driver.createMany(specs(cluster('fail'), 'f', 3, opts), ctx)
      expect(results.map((r) => (r instanceof Error ? 'error' : 'ok'))).toEqual(['ok', 'error', 'ok'])
      expect((results[1] as Error).message).toMatch(/went terminated while starting: Server.InternalError/)
      const f2 = ctx.entries.filter((e) => e.host === 'f2').map((e) => e.action)
      expect(f2).toEqual(['created', 'deleted'])
    } finally {
      await emu2.close()
      expect(failing.listening).toBe(0)
    }
  })

  it('refuses a key pair of the same name holding another key, before launching anything', async () => {
    await sdk.send(new ImportKeyPairCommand({KeyName: 'belt-clash', PublicKeyMaterial: Buffer.from(sshPublicKey('someone-else'))}))
    const driver = newDriver()
    const err = await driver.create({name: 'k1', cluster: cluster('clash'), options}, memoryContext()).catch((e: unknown) => e)
    expect(isUserError(err)).toBe(true)
    expect(err).toMatchObject({code: 'E_AWS_KEYPAIR_MISMATCH'})
    expect(driver.stats.commands.RunInstances ?? 0).toBe(0)
    await sdk.send(new (await import('@aws-sdk/client-ec2')).DeleteKeyPairCommand({KeyName: 'belt-clash'}))
  })

  it('preflight warns when the image names another login user, and names bad images and regions', async () => {
    const driver = newDriver()
    const ctx = memoryContext()
    await driver.preflight(options, ctx) // the default user, ubuntu, is the Ubuntu image's
    expect(ctx.lines.join('\n')).not.toMatch(/login user/)
    await driver.preflight({...options, 'ssh-user': 'root'}, ctx)
    expect(ctx.lines.join('\n')).toMatch(/says its login user is ubuntu, not root: pass --amazonec2-ssh-user ubuntu/)
    await expect(driver.preflight({...options, ami: 'ami-0123456789abcdef0'}, ctx)).rejects.toMatchObject({code: 'E_AWS_AMI'})
    await expect(driver.preflight({...options, 'instance-type': 't4g.small'}, ctx)).resolves.toBeUndefined() // the arm64 image
    await expect(driver.preflight({...options, region: 'ap-east-9'}, ctx)).rejects.toMatchObject({code: 'E_AWS_AUTH'})
    await expect(driver.preflight({...options, 'subnet-id': 'subnet-0123456789abcdef0'}, ctx)).rejects.toMatchObject({code: 'E_AWS_SUBNET'})
  })

  it('preflight names an endpoint that does not answer', async () => {
    const driver = createAmazonEc2Driver({clientConfig: {credentials: CREDENTIALS, maxAttempts: 1}, timing: {...FAST, throttleRetries: 0}, env: {}})
    // A port that was free a moment ago: nothing listens there.
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer()
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port
        s.close(() => resolve(port))
      })
    })
    await expect(driver.preflight({...options, endpoint: `http://127.0.0.1:${closed}`}, memoryContext())).rejects.toMatchObject({code: 'E_AWS_UNREACHABLE'})
  })

  it('the emulator refuses unsigned requests with AuthFailure', async () => {
    const unsigned = new EC2Client({region: 'us-east-1', endpoint: emu.endpoint, credentials: CREDENTIALS, maxAttempts: 1})
    unsigned.middlewareStack.addRelativeTo(
      ((next: (a: {request: {headers: Record<string, string>}}) => Promise<unknown>) => async (args: {request: {headers: Record<string, string>}}) => {
        delete args.request.headers.authorization
        return next(args)
      }) as never,
      {relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'dropSignature'},
    )
    await expect(unsigned.send(new DescribeKeyPairsCommand({}))).rejects.toMatchObject({name: 'AuthFailure', $metadata: {httpStatusCode: 401}})
    unsigned.destroy()
  })

  it('restart resolves once SSH answers again; spot hosts refuse to stop', async () => {
    const driver = newDriver()
    const c = cluster('power')
    const ctx = memoryContext()
    const m = await driver.create({name: 'r1', cluster: c, options}, ctx)
    const again = await driver.restart(m, options, ctx)
    await tcpReachable(again.address, 22, 5_000)
    expect(await driver.state(again, options, ctx)).toBe('running')
    const spot = await driver.create({name: 'r2', cluster: c, options: {...options, spot: 'true'}}, ctx)
    expect(spot.data.spot).toBe(true)
    await expect(driver.stop(spot, {...options, spot: 'true'}, ctx)).rejects.toMatchObject({code: 'E_AWS_STATE'})
    await cleanUp(driver, [again, spot], 'power')
  })
})
