/**
 * The amazonec2 driver's pure parts (settings, key fingerprints, security-group rule arithmetic,
 * subnet and image choice, the emulator's query decoding) and its behaviour against a fake EC2 API
 * that fails on any call the test did not expect.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {EC2ServiceException, type Instance, type IpPermission} from '@aws-sdk/client-ec2'
import {describe, expect, it} from 'vitest'
import type {DriverContext, JournalEntry, Machine} from '../../drivers/driver.js'
import {Ec2Calls, backoff, defaultTiming} from '../../drivers/amazonec2/calls.js'
import {Ec2ApiStats, awsErrorCode, isThrottling, type Ec2Api} from '../../drivers/amazonec2/client.js'
import {covers, desiredRules, ensureSecurityGroup, flattenPermissions, missingRules, toPermissions, type Rule} from '../../drivers/amazonec2/cluster.js'
import {decodeParams, list, paginate, passes, strList, wildcard} from '../../drivers/amazonec2/emulator/query.js'
import {createAmazonEc2Driver, machineState} from '../../drivers/amazonec2/index.js'
import {ec2ImportedFingerprint, parseOpenSshKey, sameFingerprint, sameKey} from '../../drivers/amazonec2/keys.js'
import {newestImage, orderSubnets, ubuntuNoblePattern} from '../../drivers/amazonec2/network.js'
import {amazonec2Options} from '../../drivers/amazonec2/options.js'
import {architectureOf, parseBooleanish, parseCidr, parseSettings} from '../../drivers/amazonec2/settings.js'
import {isUserError} from '../../src/errors.js'

// Made with ssh-keygen; fingerprints as `ssh-keygen -lf` (ed25519, SHA256) and `-E md5` (RSA) print them.
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILvwYKkxBoy79rNpcdz4Cy/YV0e83sQEgEzmS45rxnw+ test@belt'
const ED25519_FP = 'SHA256:++soOTPWEk+h1h5UH8d9bGvCNhEji5iCinoklmiEtzY'
const RSA =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCn6QzH/hs6YBw7MQ6QaooDMSKD5vQoydKKQdtOf1EKZJiVI6kdHODJaAHURaEw9lfPVwEN4q6+eQu8MhA1N6xQ1zIAR5TdGGkZKX6pSrPE0agVxgoEIJGhf20IZrDpdvldHAsGLTe/Mqed3FOiNpsnFPgZV1zq/1G8rdmg0IREgs7U+jeQBICn1m+BDeXJnb+ErRcdf00X3Vd9Rpf4NXOdfzdnICTJn4oaqhryGd0AJre8tokUmEu6W8a5NKdf4cTwLrQJRWr7Id/FMMgbFGU9zzjCBGfF32VsdIrA7XtbkKizaK8KIJmSiDgj4/LSlear+lmSfQOgu33kO+32vWUJ rsa@belt'
const RSA_MD5 = '38:e7:28:fd:ed:47:32:48:5b:18:65:0f:a2:64:60:1b'

describe('settings', () => {
  const defaults = Object.fromEntries(amazonec2Options.filter((o) => o.default !== undefined).map((o) => [o.name, o.default]))

  it('applies the documented defaults', () => {
    const s = parseSettings(defaults, {})
    expect(s).toMatchObject({region: 'us-east-1', instanceType: 't3.small', rootSize: 16, spot: false, sshUser: 'ubuntu', adminCidrs: ['0.0.0.0/0'], architecture: 'x86_64'})
    expect(s.endpoint).toBeUndefined()
    expect(s.ami).toBeUndefined()
  })

  it('takes the region from the option, else AWS_REGION, else us-east-1', () => {
    expect(parseSettings({region: 'eu-west-3'}, {AWS_REGION: 'us-west-2'}).region).toBe('eu-west-3')
    expect(parseSettings({}, {AWS_REGION: 'us-west-2'}).region).toBe('us-west-2')
    expect(parseSettings({}, {}).region).toBe('us-east-1')
  })

  it.each([
    [{region: 'mars-1'}, 'E_AWS_REGION'],
    [{endpoint: 'not a url'}, 'E_OPTION_INVALID'],
    [{endpoint: 'ftp://127.0.0.1'}, 'E_OPTION_INVALID'],
    [{'root-size': '4'}, 'E_OPTION_INVALID'],
    [{'root-size': '16.5'}, 'E_OPTION_INVALID'],
    [{spot: 'maybe'}, 'E_OPTION_INVALID'],
    [{'admin-cidr': '203.0.113.7'}, 'E_OPTION_INVALID'],
    [{'admin-cidr': '203.0.113.7/24'}, 'E_OPTION_INVALID'],
    [{ami: 'ubuntu'}, 'E_OPTION_INVALID'],
    [{'subnet-id': 'sub-1'}, 'E_OPTION_INVALID'],
    [{'ssh-user': 'Root User'}, 'E_OPTION_INVALID'],
  ])('refuses %j with %s, naming the flag', (options, code) => {
    let err: unknown
    try {
      parseSettings(options, {})
    } catch (e) {
      err = e
    }
    expect(isUserError(err)).toBe(true)
    expect((err as {code: string}).code).toBe(code)
    expect((err as Error).message).toContain('--amazonec2-')
  })

  it('reads several admin CIDRs and drops duplicates', () => {
    expect(parseSettings({'admin-cidr': '203.0.113.7/32, 198.51.100.0/24,203.0.113.7/32'}, {}).adminCidrs).toEqual(['203.0.113.7/32', '198.51.100.0/24'])
  })

  it.each([
    ['true', true],
    ['YES', true],
    ['1', true],
    ['on', true],
    ['false', false],
    ['no', false],
    ['0', false],
    ['', false],
  ])('reads %s as %s', (v, want) => {
    expect(parseBooleanish(v, 'x')).toBe(want)
  })

  it.each([
    ['t3.small', 'x86_64'],
    ['t4g.small', 'arm64'],
    ['m7gd.large', 'arm64'],
    ['c7gn.xlarge', 'arm64'],
    ['a1.medium', 'arm64'],
    ['m5.large', 'x86_64'],
    ['g5.xlarge', 'x86_64'],
    ['c6gn.large', 'arm64'],
  ])('%s is %s', (type, arch) => {
    expect(architectureOf(type)).toBe(arch)
  })

  it('parses CIDRs with zero host bits only', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({base: 0x0a000000, bits: 8})
    expect(parseCidr('0.0.0.0/0')).toEqual({base: 0, bits: 0})
    expect(parseCidr('10.0.0.1/8')).toBeUndefined()
    expect(parseCidr('256.0.0.0/8')).toBeUndefined()
  })
})

describe('key fingerprints', () => {
  it('computes what EC2 shows for imported keys', () => {
    expect(sameFingerprint(ec2ImportedFingerprint(parseOpenSshKey(ED25519)!), ED25519_FP)).toBe(true)
    expect(ec2ImportedFingerprint(parseOpenSshKey(ED25519)!)).toBe('++soOTPWEk+h1h5UH8d9bGvCNhEji5iCinoklmiEtzY=')
    expect(ec2ImportedFingerprint(parseOpenSshKey(RSA)!)).toBe(RSA_MD5)
    expect(sameFingerprint(RSA_MD5.toUpperCase(), `MD5:${RSA_MD5}`)).toBe(true)
  })

  it('compares keys, not comments, and refuses corrupted lines', () => {
    expect(sameKey(ED25519, ED25519.replace('test@belt', 'other'))).toBe(true)
    expect(sameKey(ED25519, RSA)).toBe(false)
    expect(parseOpenSshKey('ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB x')).toBeUndefined() // blob says ssh-rsa
    expect(parseOpenSshKey('not a key')).toBeUndefined()
  })
})

describe('security group rules', () => {
  const g = 'sg-0123456789abcdef0'
  const all = desiredRules(g, ['203.0.113.7/32'])

  it('opens swarm ports to the group itself and admin ports to the admin CIDR only', () => {
    const text = all.map((r) => `${r.protocol}/${r.fromPort} ${'cidr' in r.source ? r.source.cidr : r.source.groupId}`)
    expect(text).toEqual([`tcp/2377 ${g}`, `tcp/7946 ${g}`, `udp/7946 ${g}`, `udp/4789 ${g}`, 'tcp/22 203.0.113.7/32', 'tcp/2376 203.0.113.7/32'])
  })

  it('adds only what is missing', () => {
    expect(missingRules(all, [])).toEqual(all)
    expect(missingRules(all, toPermissions(all))).toEqual([])
    const partial: IpPermission[] = [
      {IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{CidrIp: '203.0.113.7/32'}]},
      {IpProtocol: '6', FromPort: 2377, ToPort: 2377, UserIdGroupPairs: [{GroupId: g}]},
    ]
    expect(missingRules(all, partial).map((r) => `${r.protocol}/${r.fromPort}`)).toEqual(['tcp/7946', 'udp/7946', 'udp/4789', 'tcp/2376'])
  })

  it.each<[string, Rule, boolean]>([
    ['all traffic from the group', {protocol: '-1', fromPort: 0, toPort: 65535, source: {groupId: g}, description: ''}, true],
    ['a wider port range', {protocol: 'udp', fromPort: 4000, toPort: 5000, source: {groupId: g}, description: ''}, true],
    ['the same port for another group', {protocol: 'udp', fromPort: 4789, toPort: 4789, source: {groupId: 'sg-other'}, description: ''}, false],
    ['the same port over tcp', {protocol: 'tcp', fromPort: 4789, toPort: 4789, source: {groupId: g}, description: ''}, false],
    ['from a CIDR instead of the group', {protocol: 'udp', fromPort: 4789, toPort: 4789, source: {cidr: '0.0.0.0/0'}, description: ''}, false],
  ])('udp/4789 from the group is covered by %s: %s', (_label, existing, want) => {
    expect(covers(existing, all[3]!)).toBe(want)
  })

  it('flattens EC2 permissions into single-source rules', () => {
    const rules = flattenPermissions([{IpProtocol: 'tcp', FromPort: 80, ToPort: 81, IpRanges: [{CidrIp: '1.2.3.0/24'}, {CidrIp: '5.6.7.8/32'}], UserIdGroupPairs: [{GroupId: g}]}, {IpProtocol: '50'}])
    expect(rules).toHaveLength(3) // ESP (50) is skipped: Belt neither needs nor counts it
  })
})

describe('network and image choice', () => {
  it('prefers default subnets, then public ones, then zone order', () => {
    const ordered = orderSubnets([
      {SubnetId: 'subnet-c', AvailabilityZone: 'us-east-1c', DefaultForAz: true, MapPublicIpOnLaunch: true},
      {SubnetId: 'subnet-p', AvailabilityZone: 'us-east-1a', DefaultForAz: false, MapPublicIpOnLaunch: false},
      {SubnetId: 'subnet-a', AvailabilityZone: 'us-east-1a', DefaultForAz: true, MapPublicIpOnLaunch: true},
      {SubnetId: 'subnet-x', AvailabilityZone: 'us-east-1a', DefaultForAz: true, State: 'pending'},
      {SubnetId: 'subnet-m', AvailabilityZone: 'us-east-1b', DefaultForAz: false, MapPublicIpOnLaunch: true},
    ])
    expect(ordered.map((s) => s.SubnetId)).toEqual(['subnet-a', 'subnet-c', 'subnet-m', 'subnet-p'])
  })

  it('picks the newest image by creation date', () => {
    expect(newestImage([{ImageId: 'ami-old', CreationDate: '2024-04-23T00:00:00.000Z'}, {ImageId: 'ami-new', CreationDate: '2025-10-15T00:00:00.000Z'}])?.ImageId).toBe('ami-new')
    expect(newestImage([])).toBeUndefined()
  })

  it.each([
    ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251015', 'x86_64', true],
    ['ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240423', 'x86_64', true],
    ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251015', 'x86_64', false],
    ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251015', 'arm64', true],
    ['ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20251101', 'x86_64', false],
    ['ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-pro-server-20251101', 'x86_64', false],
  ] as const)('the Ubuntu pattern for %s (%s) matches: %s', (name, arch, want) => {
    expect(wildcard(ubuntuNoblePattern(arch), name)).toBe(want)
  })
})

describe('emulator query decoding', () => {
  const p = decodeParams(new URLSearchParams('Action=DescribeInstances&Filter.2.Name=b&Filter.1.Name=a&Filter.1.Value.2=y&Filter.1.Value.1=x&Filter.10.Name=c&InstanceId.1=i-1'))

  it('nests dotted fields and orders lists by index', () => {
    expect(p.Action).toBe('DescribeInstances')
    expect(list(p, 'Filter').map((f) => (f as Record<string, unknown>).Name)).toEqual(['a', 'b', 'c'])
    expect(strList(list(p, 'Filter')[0] as never, 'Value')).toEqual(['x', 'y'])
    expect(strList(p, 'InstanceId')).toEqual(['i-1'])
  })

  it('matches filters with wildcards and tags', () => {
    const tags = new Map([['belt:cluster', 'c1']])
    expect(passes([{name: 'tag:belt:cluster', values: ['c*']}], () => [], tags)).toBe(true)
    expect(passes([{name: 'tag:belt:cluster', values: ['c2']}], () => [], tags)).toBe(false)
    expect(passes([{name: 'instance-state-name', values: ['pending', 'running']}], () => ['running'], tags)).toBe(true)
    expect(() => passes([{name: 'nonsense', values: ['x']}], () => undefined, tags)).toThrow(/filter 'nonsense' is invalid/)
  })

  it('pages with an opaque token, never more than the cap', () => {
    const items = Array.from({length: 12}, (_, i) => i)
    const first = paginate(items, decodeParams([['MaxResults', '5']]))
    expect(first.page).toEqual([0, 1, 2, 3, 4])
    const second = paginate(items, decodeParams([['MaxResults', '5'], ['NextToken', first.nextToken!]]))
    expect(second.page).toEqual([5, 6, 7, 8, 9])
    const capped = paginate(items, decodeParams([['MaxResults', '1000']]), undefined, 4)
    expect(capped.page).toHaveLength(4)
    expect(capped.nextToken).toBeDefined()
    expect(paginate(items, decodeParams([])).page).toHaveLength(12)
    expect(() => paginate(items, decodeParams([['MaxResults', '2']]))).toThrow(/between 5 and 1000/)
  })
})

// ---- the driver against a fake EC2 API --------------------------------------------------------

/** An error as the SDK raises it for an EC2 error response. */
const awsError = (code: string, status = 400) =>
  new EC2ServiceException({name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: {httpStatusCode: status}, message: `${code} (fake)`})

type Handler = (input: Record<string, unknown>) => unknown
/** A fake EC2 API: only the actions given may be called, each as often as the test allows. */
function fakeEc2(handlers: Record<string, Handler>) {
  const calls: Array<{action: string; input: Record<string, unknown>}> = []
  const api: Ec2Api = {
    send: (async (command: {constructor: {name: string}; input: Record<string, unknown>}) => {
      const action = command.constructor.name.replace(/Command$/, '')
      calls.push({action, input: command.input})
      const h = handlers[action]
      if (!h) throw new Error(`unexpected EC2 call ${action}`)
      return h(command.input)
    }) as unknown as Ec2Api['send'],
  }
  return {api, calls}
}

function memoryContext(): DriverContext & {entries: JournalEntry[]; lines: string[]} {
  const entries: JournalEntry[] = []
  const lines: string[] = []
  return {stateDir: '/nonexistent', entries, lines, withLock: (_n, fn) => fn(), journal: async (e) => void entries.push(e), log: (m) => void lines.push(m)}
}

const fast = {pollMinMs: 1, pollMaxMs: 2, throttleBaseMs: 1, throttleMaxMs: 2}
const machine: Machine = {id: 'i-0123456789abcdef0', address: '192.0.2.10', ssh: {user: 'ubuntu', port: 22}, data: {region: 'eu-west-3'}}
const withState = (name: string): unknown => ({Reservations: [{Instances: [{InstanceId: machine.id, State: {Name: name} as Instance['State']}]}]})

describe('driver against a fake EC2 API', () => {
  const driverWith = (handlers: Record<string, Handler>) => {
    const fake = fakeEc2(handlers)
    const driver = createAmazonEc2Driver({makeClient: () => fake.api, timing: fast, env: {}})
    return {driver, calls: fake.calls}
  }

  it.each([
    ['pending', 'starting'],
    ['running', 'running'],
    ['stopping', 'stopping'],
    ['stopped', 'stopped'],
    ['shutting-down', 'missing'], // irrevocable: gone for Belt (STATE in drivers/amazonec2/index.ts)
    ['terminated', 'missing'],
  ])('state maps %s to %s', async (ec2, belt) => {
    const {driver} = driverWith({DescribeInstances: () => withState(ec2)})
    expect(await driver.state(machine, {}, memoryContext())).toBe(belt)
    expect(machineState(ec2)).toBe(belt)
  })

  it.each(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'])("state is 'missing' on %s, without throwing", async (code) => {
    const {driver} = driverWith({
      DescribeInstances: () => {
        throw awsError(code)
      },
    })
    expect(await driver.state(machine, {}, memoryContext())).toBe('missing')
  })

  it('asks the region the host was created in, not the current default', async () => {
    const regions: string[] = []
    const fake = fakeEc2({DescribeInstances: () => withState('running')})
    const driver = createAmazonEc2Driver({makeClient: (cfg) => (regions.push(String(cfg.region)), fake.api), timing: fast, env: {AWS_REGION: 'us-west-2'}})
    await driver.state(machine, {region: 'us-east-1'}, memoryContext())
    expect(regions).toEqual(['eu-west-3'])
  })

  it('remove of a missing instance succeeds at once (no wait, no journal entry)', async () => {
    const {driver, calls} = driverWith({
      TerminateInstances: () => {
        throw awsError('InvalidInstanceID.NotFound')
      },
    })
    const ctx = memoryContext()
    await driver.remove(machine, {}, ctx)
    expect(calls.map((c) => c.action)).toEqual(['TerminateInstances'])
    expect(ctx.entries).toEqual([])
  })

  it('remove waits until EC2 lists the instance shutting-down (irrevocable), not terminated, then journals the deletion', async () => {
    let polls = 0
    const {driver} = driverWith({
      TerminateInstances: () => ({}),
      DescribeInstances: () => withState(++polls < 3 ? 'running' : 'shutting-down'),
    })
    const ctx = memoryContext()
    await driver.remove(machine, {}, ctx)
    expect(polls).toBe(3)
    expect(ctx.entries).toEqual([{kind: 'instance', id: machine.id, action: 'deleted'}])
  })

  it('preflight only reads, plus a RunInstances dry run', async () => {
    const {driver, calls} = driverWith({
      DescribeRegions: () => ({Regions: [{RegionName: 'us-east-1'}]}),
      DescribeVpcs: () => ({Vpcs: [{VpcId: 'vpc-0123456789abcdef0', IsDefault: true}]}),
      DescribeSubnets: () => ({Subnets: [{SubnetId: 'subnet-0123456789abcdef0', VpcId: 'vpc-0123456789abcdef0', DefaultForAz: true, AvailabilityZone: 'us-east-1a'}]}),
      DescribeImages: () => ({Images: [{ImageId: 'ami-0123456789abcdef0', CreationDate: '2025-01-01T00:00:00.000Z', Architecture: 'x86_64'}]}),
      RunInstances: (input) => {
        expect(input.DryRun).toBe(true)
        throw awsError('DryRunOperation', 412)
      },
    })
    await driver.preflight({}, memoryContext())
    expect(calls.map((c) => c.action)).toEqual(['DescribeRegions', 'DescribeVpcs', 'DescribeSubnets', 'DescribeImages', 'RunInstances'])
    expect(calls[3]!.input).toMatchObject({Owners: ['099720109477'], Filters: expect.arrayContaining([{Name: 'name', Values: ['ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*']}])})
  })

  it('preflight names the problem: a region the account does not have', async () => {
    const {driver} = driverWith({DescribeRegions: () => ({Regions: [{RegionName: 'us-east-1'}]})})
    await expect(driver.preflight({region: 'eu-west-3'}, memoryContext())).rejects.toMatchObject({code: 'E_AWS_REGION'})
  })

  it('preflight names the problem: rejected credentials', async () => {
    const {driver} = driverWith({
      DescribeRegions: () => {
        throw awsError('AuthFailure', 401)
      },
    })
    await expect(driver.preflight({}, memoryContext())).rejects.toMatchObject({code: 'E_AWS_AUTH'})
  })

  it('removeMany: one TerminateInstances for up to 1,000 ids; shutting-down confirmed by one DescribeInstances is gone', async () => {
    const ids = Array.from({length: 300}, (_, i) => `i-${i.toString(16).padStart(17, '0')}`)
    let terminated = false
    const {driver, calls} = driverWith({
      DescribeInstances: (input) => {
        const wanted = (input.Filters as {Values: string[]}[])[0]!.Values
        return {Reservations: [{Instances: wanted.map((InstanceId) => ({InstanceId, State: {Name: terminated ? 'shutting-down' : 'running'}}))}]}
      },
      TerminateInstances: (input) => {
        expect(input.InstanceIds).toHaveLength(300)
        terminated = true
        return {}
      },
    })
    const ctx = memoryContext()
    const results = await driver.removeMany(ids.map((id) => ({...machine, id})), {}, ctx)
    expect(results).toEqual(ids.map(() => undefined))
    // One TerminateInstances, then two DescribeInstances (200 and 100 ids) to confirm; none before.
    expect(calls.map((c) => c.action)).toEqual(['TerminateInstances', 'DescribeInstances', 'DescribeInstances'])
    expect(ctx.entries).toHaveLength(300)
  })

  it('removeMany: ids EC2 no longer knows, named by its NotFound answer, are gone; the others are terminated in a second call', async () => {
    const ids = ['i-00000000000000001', 'i-00000000000000002', 'i-00000000000000003']
    const terminated: string[][] = []
    const {driver} = driverWith({
      TerminateInstances: (input) => {
        const got = input.InstanceIds as string[]
        terminated.push(got)
        if (got.includes(ids[1]!)) throw Object.assign(awsError('InvalidInstanceID.NotFound', 400), {message: `The instance ID '${ids[1]}' does not exist`})
        return {}
      },
      DescribeInstances: (input) => {
        const wanted = (input.Filters as {Values: string[]}[])[0]!.Values
        return {Reservations: [{Instances: wanted.map((InstanceId) => ({InstanceId, State: {Name: 'shutting-down'}}))}]}
      },
    })
    const ctx = memoryContext()
    expect(await driver.removeMany(ids.map((id) => ({...machine, id})), {}, ctx)).toEqual([undefined, undefined, undefined])
    expect(terminated).toEqual([ids, [ids[0], ids[2]]])
    expect(ctx.entries.map((e) => e.id)).toEqual([ids[0], ids[2]])
  })

  it('removeCluster leaves a group held only by instances shutting down to the next rm, which deletes it', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'belt-ec2-pending-'))
    try {
      let held = true
      const {driver, calls} = driverWith({
        DescribeInstances: (input) => {
          const filters = input.Filters as {Name: string; Values: string[]}[]
          // The live check of the cluster finds none; the group's holders are shutting down.
          if (filters.some((f) => f.Name === 'instance.group-id')) return withState('shutting-down')
          return {Reservations: []}
        },
        DescribeSecurityGroups: () => ({SecurityGroups: [{GroupId: 'sg-1'}]}),
        DeleteSecurityGroup: () => {
          if (held) throw awsError('DependencyViolation', 400)
          return {}
        },
        DescribeKeyPairs: () => ({KeyPairs: []}),
      })
      const ctx = {...memoryContext(), stateDir}
      await driver.removeCluster('c1', {}, ctx)
      expect(ctx.lines.join('\n')).toMatch(/security group sg-1 of cluster c1 stays until its instances have shut down/)
      expect(JSON.parse(await readFile(path.join(stateDir, 'pending-security-groups.json'), 'utf8'))).toMatchObject([{groupId: 'sg-1', cluster: 'c1'}])
      expect(ctx.entries).toEqual([])
      // Still held at the next rm: kept on the list.
      calls.length = 0
      await driver.removeMany([], {}, ctx)
      await driver.removeCluster('c2', {}, ctx)
      expect(JSON.parse(await readFile(path.join(stateDir, 'pending-security-groups.json'), 'utf8'))).toHaveLength(1)
      // Once free, the next rm deletes it and journals it.
      held = false
      await driver.removeCluster('c2', {}, ctx)
      expect(JSON.parse(await readFile(path.join(stateDir, 'pending-security-groups.json'), 'utf8'))).toEqual([])
      expect(ctx.entries).toContainEqual({kind: 'security-group', id: 'sg-1', action: 'deleted'})
    } finally {
      await rm(stateDir, {recursive: true, force: true})
    }
  })

  it('removeCluster keeps everything while tagged instances remain', async () => {
    const {driver, calls} = driverWith({DescribeInstances: () => withState('stopped')})
    const ctx = memoryContext()
    await driver.removeCluster('c1', {}, ctx)
    expect(calls.map((c) => c.action)).toEqual(['DescribeInstances'])
    expect(ctx.lines.join('\n')).toMatch(/keeping the key pair and security group of cluster c1/)
  })

  it('createMany refuses specs of different clusters before any call', async () => {
    const {driver, calls} = driverWith({})
    const spec = (name: string, cluster: string) => ({name, cluster: {name: cluster, sshPublicKey: ED25519}, options: {}})
    await expect(driver.createMany([spec('a', 'c1'), spec('b', 'c2')], memoryContext())).rejects.toThrow(/share the cluster/)
    expect(calls).toEqual([])
  })
})

describe('security group setup against a fake EC2 API', () => {
  const stats = new Ec2ApiStats()
  const timing = {...defaultTiming, ...fast}

  it('authorizes only the missing rules of an existing group, in one call', async () => {
    const g = 'sg-0123456789abcdef0'
    const existing = toPermissions(desiredRules(g, ['0.0.0.0/0']).slice(0, 4)) // swarm ports present, admin ports not
    const {api, calls} = fakeEc2({
      DescribeSecurityGroups: () => ({SecurityGroups: [{GroupId: g, IpPermissions: existing}]}),
      AuthorizeSecurityGroupIngress: () => ({Return: true}),
    })
    expect(await ensureSecurityGroup(new Ec2Calls(api, stats, timing), 'c1', 'vpc-1', ['0.0.0.0/0'], memoryContext())).toBe(g)
    const auth = calls.filter((c) => c.action === 'AuthorizeSecurityGroupIngress')
    expect(auth).toHaveLength(1)
    expect((auth[0]!.input.IpPermissions as IpPermission[]).map((p) => p.FromPort)).toEqual([22, 2376])
  })

  it('touches nothing when every rule is there', async () => {
    const g = 'sg-0123456789abcdef0'
    const {api, calls} = fakeEc2({DescribeSecurityGroups: () => ({SecurityGroups: [{GroupId: g, IpPermissions: toPermissions(desiredRules(g, ['0.0.0.0/0']))}]})})
    await ensureSecurityGroup(new Ec2Calls(api, stats, timing), 'c1', 'vpc-1', ['0.0.0.0/0'], memoryContext())
    expect(calls.map((c) => c.action)).toEqual(['DescribeSecurityGroups'])
  })

  it('refuses a same-named group that Belt did not make', async () => {
    const {api} = fakeEc2({
      DescribeSecurityGroups: (input) => ({SecurityGroups: JSON.stringify(input).includes('group-name') ? [{GroupId: 'sg-0123456789abcdef0', Tags: []}] : []}),
      CreateSecurityGroup: () => {
        throw awsError('InvalidGroup.Duplicate')
      },
    })
    await expect(ensureSecurityGroup(new Ec2Calls(api, stats, timing), 'c1', 'vpc-1', ['0.0.0.0/0'], memoryContext())).rejects.toMatchObject({code: 'E_AWS_GROUP_CONFLICT'})
  })
})

describe('throttling', () => {
  it('recognises EC2 throttling errors', () => {
    expect(isThrottling(awsError('RequestLimitExceeded', 503))).toBe(true)
    expect(isThrottling(awsError('InvalidInstanceID.NotFound'))).toBe(false)
    expect(isThrottling(new Error('RequestLimitExceeded'))).toBe(false)
    expect(awsErrorCode(awsError('DependencyViolation'))).toBe('DependencyViolation')
    expect(awsErrorCode(new Error('x'))).toBeUndefined()
  })

  it('retries throttled calls a bounded number of times after the SDK gave up', async () => {
    const stats = new Ec2ApiStats()
    const calls = new Ec2Calls({send: (() => undefined) as never}, stats, {...defaultTiming, ...fast, throttleRetries: 3})
    let n = 0
    await expect(
      calls.call(async () => {
        if (++n < 3) throw awsError('RequestLimitExceeded', 503)
        return 'ok'
      }),
    ).resolves.toBe('ok')
    expect(stats.ownRetries).toBe(2)
    n = 0
    await expect(
      calls.call(async () => {
        n++
        throw awsError('RequestLimitExceeded', 503)
      }),
    ).rejects.toMatchObject({name: 'RequestLimitExceeded'})
    expect(n).toBe(4) // the first try and three retries, then the error is the caller's
    await expect(calls.call(async () => Promise.reject(awsError('InvalidParameterValue')))).rejects.toMatchObject({name: 'InvalidParameterValue'})
    expect(stats.ownRetries).toBe(5)
  })

  it('backs off exponentially with jitter, within bounds', () => {
    expect(backoff(0, 100, 1000, () => 0)).toBe(100)
    expect(backoff(3, 100, 1000, () => 1)).toBe(800)
    expect(backoff(10, 100, 1000, () => 1)).toBe(1000)
  })
})
