import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {KERNEL_PROFILES, applyKernelProfileCommand, kernelProfileFile, kernelProfilePath, parseKernelProfileApply} from '../../src/bootstrap/commands.js'
import {engineConfigFrom} from '../../src/engine-flags.js'
import {UserError} from '../../src/errors.js'
import {labelNode, runSettings} from '../../src/services/swarm.js'
import {initSpecFrom, parseDuration, refuseSwarmOptionsWithoutSwarm, parseSwarmLabels, swarmSettingsFrom, type SwarmFlagValues} from '../../src/swarm-flags.js'
import {swarmInitRequest, withInitSpec, type EngineEndpoint, type SwarmApi, type SwarmInitSpec, type SwarmNode} from '../../src/swarm/api.js'

const base: SwarmFlagValues = {managers: 3, 'join-concurrency': 16, 'manager-availability': 'auto', 'advertise-addr-type': 'auto'}

describe('parseDuration', () => {
  it.each([
    ['5s', 5],
    ['1h30m', 5400],
    ['2160h', 2160 * 3600],
    ['30d', 30 * 86_400],
    ['1.5h', 5400],
    ['500ms', 0.5],
  ])('%s is %d s', (text, sec) => expect(parseDuration(text)).toBe(sec))
  it.each(['', '5', 'soon', '5 s', '-5s', '1y'])('%j is not a duration', (text) => expect(parseDuration(text)).toBeUndefined())
})

describe('initSpecFrom: the options of a new swarm, checked', () => {
  it('no option: no spec (dockerd keeps its defaults)', () => {
    expect(initSpecFrom(base)).toBeUndefined()
  })

  it('maps every flag', () => {
    expect(
      initSpecFrom({
        ...base,
        'default-addr-pool': ['10.96.0.0/12', '172.30.0.0/16'],
        'default-addr-pool-mask-length': 26,
        'data-path-port': 4800,
        'cert-expiry': '30d',
        'dispatcher-heartbeat': '20s',
        'snapshot-interval': 5000,
        'max-snapshots': 0,
        autolock: true,
      }),
    ).toEqual({
      defaultAddrPool: ['10.96.0.0/12', '172.30.0.0/16'],
      subnetSize: 26,
      dataPathPort: 4800,
      certExpirySeconds: 30 * 86_400,
      heartbeatSeconds: 20,
      snapshotInterval: 5000,
      keepOldSnapshots: 0,
      autolock: true,
    })
  })

  const refused: [Partial<SwarmFlagValues>, string][] = [
    [{'default-addr-pool': ['10.96.0.0']}, "--default-addr-pool '10.96.0.0' is not an IPv4 CIDR"],
    [{'default-addr-pool': ['300.1.0.0/16']}, "--default-addr-pool '300.1.0.0/16' is not an IPv4 CIDR"],
    [{'default-addr-pool': ['10.96.0.1/12']}, "--default-addr-pool '10.96.0.1/12' has host bits set"],
    [{'default-addr-pool': ['10.0.0.0/8', '10.20.0.0/16']}, "--default-addr-pool '10.20.0.0/16' overlaps '10.0.0.0/8'"],
    [{'default-addr-pool': ['10.20.0.0/16'], 'default-addr-pool-mask-length': 12}, '--default-addr-pool-mask-length 12 is out of range'],
    [{'default-addr-pool-mask-length': 30}, '--default-addr-pool-mask-length 30 is out of range'],
    [{'default-addr-pool': ['10.20.0.0/28']}, "--default-addr-pool '10.20.0.0/28' is smaller than a /24 network"],
    [{'data-path-port': 80}, '--data-path-port 80 is out of range'],
    [{'data-path-port': 50000}, '--data-path-port 50000 is out of range'],
    [{'data-path-port': 2377}, '--data-path-port 2377 is taken'],
    [{'data-path-port': 7946}, '--data-path-port 7946 is taken'],
    [{'cert-expiry': '59m'}, "--cert-expiry '59m' is shorter than an hour"],
    [{'cert-expiry': '3 months'}, "--cert-expiry '3 months' is not a duration"],
    [{'dispatcher-heartbeat': '500ms'}, "--dispatcher-heartbeat '500ms' is shorter than a second"],
    [{'snapshot-interval': 0}, '--snapshot-interval 0 is out of range'],
    [{'max-snapshots': -1}, '--max-snapshots -1 is out of range'],
  ]
  for (const [flags, message] of refused) {
    it(`refuses ${JSON.stringify(flags)} with one usage line`, () => {
      let err: unknown
      try {
        initSpecFrom({...base, ...flags})
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(UserError)
      expect((err as UserError).exit).toBe(2)
      expect((err as UserError).code).toBe('E_SWARM_OPTION')
      expect((err as UserError).message).toBe(message)
      expect((err as UserError).hint).toBeTruthy()
    })
  }
})

describe('parseSwarmLabels', () => {
  it('reads key=value and bare keys', () => {
    expect(parseSwarmLabels(['zone=eu-1', 'ssd', 'com.example/tier=a=b'])).toEqual({zone: 'eu-1', ssd: '', 'com.example/tier': 'a=b'})
    expect(parseSwarmLabels([])).toBeUndefined()
  })
  it.each([['=x'], ['a b=c'], ['-x=1']])('refuses %s', (l) => expect(() => parseSwarmLabels([l])).toThrow(/has no valid key/))
  it('refuses one key with two values', () => expect(() => parseSwarmLabels(['a=1', 'a=2'])).toThrow('--swarm-label gives a twice (1, 2)'))
})

describe('swarmInitRequest: the Engine API body', () => {
  it('sends only what is set, durations in nanoseconds', () => {
    expect(swarmInitRequest('10.0.0.2')).toEqual({ListenAddr: '0.0.0.0:2377', AdvertiseAddr: '10.0.0.2'})
    expect(
      swarmInitRequest('10.0.0.2', {
        defaultAddrPool: ['10.96.0.0/12'],
        subnetSize: 26,
        dataPathPort: 4800,
        certExpirySeconds: 3600,
        heartbeatSeconds: 7,
        snapshotInterval: 5000,
        keepOldSnapshots: 0,
        autolock: true,
      }),
    ).toEqual({
      ListenAddr: '0.0.0.0:2377',
      AdvertiseAddr: '10.0.0.2',
      DefaultAddrPool: ['10.96.0.0/12'],
      SubnetSize: 26,
      DataPathPort: 4800,
      Spec: {
        Raft: {SnapshotInterval: 5000, KeepOldSnapshots: 0},
        Dispatcher: {HeartbeatPeriod: 7_000_000_000},
        CAConfig: {NodeCertExpiry: 3_600_000_000_000},
        EncryptionConfig: {AutoLockManagers: true},
      },
    })
  })
})

/** A swarm API where only the calls a test expects are allowed; anything else fails the test. */
function strictApi(impl: Partial<SwarmApi>): SwarmApi {
  return new Proxy(impl as SwarmApi, {
    get(t, p) {
      const v = Reflect.get(t, p)
      if (v === undefined && typeof p === 'string' && p !== 'then') throw new Error(`unexpected call: ${p}`)
      return v
    },
  })
}

const e: EngineEndpoint = {name: 'node1', address: '10.0.0.1', port: 2376}

describe('withInitSpec', () => {
  it('passes the spec to init and hands over the unlock key once, for autolock', async () => {
    const seen: (SwarmInitSpec | undefined)[] = []
    const keys: string[] = []
    const api = withInitSpec(
      strictApi({
        init: async (_e, _a, spec) => (seen.push(spec), 'n1'),
        unlockKey: async () => 'SWMKEY-1-secret',
      }),
      {autolock: true, dataPathPort: 4800},
      (k) => keys.push(k),
    )
    expect(await api.init(e, '10.0.0.1')).toBe('n1')
    expect(seen).toEqual([{autolock: true, dataPathPort: 4800}])
    expect(keys).toEqual(['SWMKEY-1-secret'])
  })

  it('asks no key without autolock, and leaves the other calls alone', async () => {
    const api = withInitSpec(strictApi({init: async () => 'n1', tokens: async () => ({clusterId: 'c', worker: 'w', manager: 'm'})}), {snapshotInterval: 10}, () => {
      throw new Error('no key expected')
    })
    expect(await api.init(e, '10.0.0.1')).toBe('n1')
    expect((await api.tokens(e)).clusterId).toBe('c')
  })
})

describe('labelNode', () => {
  const node = (labels: Record<string, string>, version = 1): SwarmNode => ({id: 'n2', version, hostname: 'node2', role: 'worker', availability: 'active', state: 'ready', leader: false, labels})

  it('adds labels to those the node has, reading the entry again after an out-of-sequence answer', async () => {
    const updates: [number, Record<string, string> | undefined][] = []
    let reads = 0
    const api = strictApi({
      node: async () => node({keep: 'me'}, ++reads),
      updateNode: async (_m, n, change) => {
        updates.push([n.version, change.labels])
        if (updates.length === 1) throw new Error('engine API /nodes/n2/update answered 500: update out of sequence')
      },
    })
    await labelNode(api, e, 'n2', {zone: 'eu-1'})
    expect(updates).toEqual([
      [1, {zone: 'eu-1'}],
      [2, {zone: 'eu-1'}],
    ])
  })

  it('writes nothing when the labels are already there', async () => {
    await labelNode(strictApi({node: async () => node({zone: 'eu-1'})}), e, 'n2', {zone: 'eu-1'})
  })
})

describe('run records', () => {
  it('keep the options asked for as plain values, and no key', () => {
    const s = swarmSettingsFrom({...base, autolock: true, 'data-path-port': 4800, 'default-addr-pool': ['10.96.0.0/12'], 'swarm-label': ['zone=eu-1']})
    expect(runSettings(s)).toEqual({
      managers: 3,
      concurrency: 16,
      availability: 'auto',
      advertiseType: 'auto',
      noIngress: false,
      autolock: true,
      dataPathPort: 4800,
      defaultAddrPool: '10.96.0.0/12',
      nodeLabels: 'zone=eu-1',
    })
  })
})

describe('kernel profile large-swarm', () => {
  it('is a sysctl.d file, thresh3 before thresh2 before thresh1', () => {
    expect(kernelProfilePath('large-swarm')).toBe('/etc/sysctl.d/90-belt-large-swarm.conf')
    const lines = kernelProfileFile('large-swarm').split('\n').filter((l) => l && !l.startsWith('#'))
    expect(lines).toEqual([
      'net.ipv4.neigh.default.gc_thresh3 = 65536',
      'net.ipv4.neigh.default.gc_thresh2 = 32768',
      'net.ipv4.neigh.default.gc_thresh1 = 8192',
      'net.ipv6.neigh.default.gc_thresh3 = 65536',
      'net.ipv6.neigh.default.gc_thresh2 = 32768',
      'net.ipv6.neigh.default.gc_thresh1 = 8192',
      'net.netfilter.nf_conntrack_max = 262144',
    ])
  })

  it('applies what the kernel has through a real sh, and reports the rest as skipped', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'belt-sysctl-'))
    try {
      // A kernel with IPv4 neighbour tables and nothing else (no IPv6, conntrack not loaded).
      for (const k of ['gc_thresh1', 'gc_thresh2', 'gc_thresh3']) {
        mkdirSync(path.join(root, 'net/ipv4/neigh/default'), {recursive: true})
        writeFileSync(path.join(root, 'net/ipv4/neigh/default', k), '128\n')
      }
      const out = execFileSync('sh', ['-c', applyKernelProfileCommand('large-swarm', root)], {encoding: 'utf8'})
      const r = parseKernelProfileApply(out)
      expect(r.applied).toEqual(['net.ipv4.neigh.default.gc_thresh3', 'net.ipv4.neigh.default.gc_thresh2', 'net.ipv4.neigh.default.gc_thresh1'])
      expect(r.skipped).toEqual(['net.ipv6.neigh.default.gc_thresh3', 'net.ipv6.neigh.default.gc_thresh2', 'net.ipv6.neigh.default.gc_thresh1', 'net.netfilter.nf_conntrack_max'])
      expect(readFileSync(path.join(root, 'net/ipv4/neigh/default/gc_thresh3'), 'utf8')).toBe('65536\n')
      expect(readFileSync(path.join(root, 'net/ipv4/neigh/default/gc_thresh1'), 'utf8')).toBe('8192\n')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })

  it('is opt-in: --engine-kernel-profile sets it in the engine settings, nothing else does', () => {
    expect(engineConfigFrom({}).kernelProfile).toBeUndefined()
    expect(engineConfigFrom({'engine-kernel-profile': 'large-swarm'}).kernelProfile).toBe('large-swarm')
    expect(Object.keys(KERNEL_PROFILES)).toEqual(['large-swarm'])
  })
})

describe('create without --swarm', () => {
  it('refuses a swarm option rather than ignore it', () => {
    expect(refuseSwarmOptionsWithoutSwarm({})).toBeUndefined()
    expect(refuseSwarmOptionsWithoutSwarm({autolock: false, 'swarm-label': []})).toBeUndefined()
    expect(() => refuseSwarmOptionsWithoutSwarm({autolock: true})).toThrow('--autolock is an option of the swarm')
    expect(() => refuseSwarmOptionsWithoutSwarm({'swarm-label': ['a=b']})).toThrow('--swarm-label is an option of the swarm')
  })
})
