import {randomUUID} from 'node:crypto'
import {promises as fsp} from 'node:fs'
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeRegionsCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type Instance,
  type RunInstancesCommandInput,
  type Subnet,
} from '@aws-sdk/client-ec2'
import pLimit from 'p-limit'
import {ExitCode, UserError} from '../../src/errors.js'
import type {ClusterSpec, Driver, DriverContext, DriverOptions, HostSpec, Machine, MachineState, PortChange, PortRule, ResourceId} from '../driver.js'
import {Ec2Calls, backoff, defaultTiming, sleep, waitForPort, type Ec2Timing} from './calls.js'
import {Ec2ApiStats, awsErrorCode, clientConfig, isThrottling, sdkClient, type Ec2ClientFactory} from './client.js'
import {CLUSTER_TAG, clusterPortRules, deleteClusterGroups, deleteClusterKeyPairs, ensureKeyPair, ensureSecurityGroup, findClusterGroups, setGroupPorts} from './cluster.js'
import {resolveImage, resolveNetwork, type Ec2Image, type Ec2Network} from './network.js'
import {addPendingGroup, deletePendingGroups, dropPendingGroups} from './pending-groups.js'
import {amazonec2Description, amazonec2Options} from './options.js'
import {USERDATA_MAX_BYTES, parseSettings, type Ec2Settings} from './settings.js'
import {InstanceWatcher, type Decide} from './watcher.js'

export {Ec2ApiStats} from './client.js'
export type {Ec2Timing} from './calls.js'

/** What a test or a benchmark may replace. Production code passes nothing. */
export interface AmazonEc2Deps {
  /** Merged into every client's config, e.g. static fake credentials for the emulator tests. */
  readonly clientConfig?: Partial<EC2ClientConfig>
  /** Replaces the SDK client (unit tests pass fakes that fail on unexpected calls). */
  readonly makeClient?: Ec2ClientFactory
  readonly timing?: Partial<Ec2Timing>
  /** Supplies AWS_REGION when --amazonec2-region is not given. */
  readonly env?: NodeJS.ProcessEnv
}

/** The instance-level tag of the host name. */
const NAME_TAG = 'Name'
const SSH_PORT = 22

/** Everything a launch needs, resolved once per cluster and settings (and cached by the driver object). */
interface LaunchPlan {
  readonly network: Ec2Network
  readonly image: Ec2Image
  readonly groupId: string
  /** `--amazonec2-security-group`, as ids of the VPC's groups. */
  readonly extraGroupIds: readonly string[]
  readonly keyName: string
  /** `--amazonec2-userdata`'s text. */
  readonly userData?: string
}

const usageErr = (message: string, hint?: string, cause?: unknown) => new UserError(message, {code: 'E_OPTION_INVALID', exit: ExitCode.usage, hint, cause})

/** The user-data file's text; a usage error when it is unreadable or larger than EC2 accepts. */
async function readUserData(file: string): Promise<string> {
  let text: string
  try {
    text = await fsp.readFile(file, 'utf8')
  } catch (e) {
    throw usageErr(`--amazonec2-userdata: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, undefined, e)
  }
  if (Buffer.byteLength(text) > USERDATA_MAX_BYTES) throw usageErr(`--amazonec2-userdata: ${file} is ${Buffer.byteLength(text)} bytes; EC2 accepts at most 16 KiB`)
  return text
}

/** Only the subnets of `--amazonec2-zone`, when given; a usage error when the network has none there. */
function inZone(network: Ec2Network, s: Ec2Settings): Ec2Network {
  if (!s.zone) return network
  const subnets = network.subnets.filter((x) => x.AvailabilityZone === s.zone)
  if (subnets.length === 0)
    throw usageErr(`--amazonec2-zone: ${s.subnetId ?? network.vpcId} has no subnet in ${s.zone}`, `zones it has: ${[...new Set(network.subnets.map((x) => x.AvailabilityZone))].join(', ') || 'none'}`)
  return {...network, subnets}
}

/*
 * `shutting-down` counts as gone, like `terminated`. TerminateInstances is irrevocable: once EC2
 * lists an instance as shutting-down it can never be started, stopped, rebooted or reached again,
 * and EC2 stops billing for it at that state change (its own documentation on instance states). So
 * `belt rm` lets a record go as soon as one DescribeInstances shows the instance shutting-down or
 * terminated, instead of waiting out the shutdown (the boot delay in the emulator, a minute or more
 * on EC2): what is left of the instance is no longer Belt's to manage. `state` says `missing` for it.
 * The one thing a shutting-down instance still holds is its security groups: see removeCluster.
 */
const STATE: Record<string, MachineState> = {
  pending: 'starting',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  'shutting-down': 'missing',
  terminated: 'missing',
}

/** Gone for Belt: not listed, terminated, or shutting-down (irrevocable; see STATE). */
const isGone = (i: Instance | undefined): boolean => !i || i.State?.Name === 'terminated' || i.State?.Name === 'shutting-down'
const goneOrWait = (i: Instance | undefined): true | undefined => (isGone(i) ? true : undefined)

/** EC2 instance state name -> Belt's. */
export const machineState = (ec2State: string | undefined): MachineState => (ec2State ? (STATE[ec2State] ?? 'error') : 'missing')

const NOT_FOUND = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed'])

/** The key of a client: instances, groups and pending deletions of one region, endpoint and profile. */
const clientKey = (s: Ec2Settings): string => `${s.region}|${s.endpoint ?? ''}|${s.profile ?? ''}`
/** The lock under which a cluster's shared resources are set up (and a pending group deleted). */
const clusterLock = (cluster: string, s: Ec2Settings): string => `cluster-${cluster}-${s.region}`

/** Errors that say the whole account or request is wrong rather than one host: reported as UserErrors. */
const QUOTA = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded', 'MaxSpotInstanceCountExceeded', 'InsufficientFreeAddressesInSubnet'])

/** A launch failure, as the operator should read it. */
function launchError(e: unknown, s: Ec2Settings): Error {
  const code = awsErrorCode(e)
  const msg = e instanceof Error ? e.message : String(e)
  if (code && QUOTA.has(code))
    return new UserError(`EC2 refused to launch more instances in ${s.region}: ${code}: ${msg}`, {
      code: 'E_AWS_QUOTA',
      exit: ExitCode.environment,
      hint: 'request a higher quota (Service Quotas console) or create fewer hosts',
      cause: e,
    })
  if (code === 'InsufficientInstanceCapacity')
    return new UserError(`EC2 has no ${s.instanceType} capacity left in the subnets tried: ${msg}`, {
      code: 'E_AWS_CAPACITY',
      exit: ExitCode.environment,
      hint: 'retry later, or choose another --amazonec2-instance-type or --amazonec2-subnet-id',
      cause: e,
    })
  if (code === 'UnauthorizedOperation' || code === 'AuthFailure') return authError(e, s)
  return code ? new Error(`RunInstances failed: ${code}: ${msg}`, {cause: e}) : e instanceof Error ? e : new Error(msg)
}

function authError(e: unknown, s: Ec2Settings): UserError {
  const code = awsErrorCode(e)
  const msg = e instanceof Error ? e.message : String(e)
  if (code === 'UnauthorizedOperation')
    return new UserError(`the AWS identity may not do this in ${s.region}: ${msg.split('Encoded authorization failure message')[0]!.trim()}`, {
      code: 'E_AWS_PERMISSION',
      exit: ExitCode.environment,
      hint: 'grant it the EC2 actions Belt uses (ec2:RunInstances, ec2:Describe*, ec2:CreateTags, key pair and security group actions)',
      cause: e,
    })
  return new UserError(`AWS rejected the credentials for ${s.region}: ${code ?? 'error'}: ${msg}`, {
    code: 'E_AWS_AUTH',
    exit: ExitCode.environment,
    hint: 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile (--amazonec2-profile, AWS_PROFILE; aws sso login), and that the region is enabled',
    cause: e,
  })
}

/** Turns failures of the very first call into something the operator can act on. */
function connectionError(e: unknown, s: Ec2Settings): unknown {
  const name = (e as {name?: string} | undefined)?.name
  const code = awsErrorCode(e)
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(String((e as Error)?.message)))
    return new UserError('no AWS credentials found', {
      code: 'E_AWS_CREDENTIALS',
      exit: ExitCode.environment,
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (--amazonec2-profile / AWS_PROFILE; aws sso login for SSO)',
      cause: e,
    })
  if (code && ['AuthFailure', 'UnauthorizedOperation', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'OptInRequired'].includes(code))
    return authError(e, s)
  const sys = (e as {code?: string} | undefined)?.code
  if (sys && ['ENOTFOUND', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN'].includes(sys))
    return new UserError(`cannot reach the EC2 API ${s.endpoint ?? `of ${s.region}`} (${sys})`, {
      code: 'E_AWS_UNREACHABLE',
      exit: ExitCode.environment,
      hint: s.endpoint ? 'is the emulator running (belt emulator ec2)? check --amazonec2-endpoint' : 'check --amazonec2-region and the network',
      cause: e,
    })
  return e
}

/** Instance ids per DescribeInstances `instance-id` filter (EC2 takes at most 200 values per filter). */
const IDS_PER_DESCRIBE = 200
/** Instance ids per TerminateInstances call (EC2's limit is 1,000). */
const IDS_PER_TERMINATE = 1000

/** Splits `xs` into slices of at most `n`. */
const chunks = <T>(xs: readonly T[], n: number): T[][] => Array.from({length: Math.ceil(xs.length / n)}, (_, i) => xs.slice(i * n, i * n + n))

/**
 * The amazonec2 driver. One object may serve many calls at once: it keeps one SDK client (and so one
 * adaptive rate limiter) per region/endpoint/profile, one shared DescribeInstances poller per client,
 * and the cluster's launch plan once set up. None of that is needed to manage a host later: a fresh
 * object manages any Machine from its data and the options.
 */
export class AmazonEc2Driver implements Driver {
  readonly name = 'amazonec2'
  readonly description = amazonec2Description
  readonly options = amazonec2Options
  /** API calls by kind and retries, for every client of this object. */
  readonly stats = new Ec2ApiStats()
  private readonly timing: Ec2Timing
  private readonly clients = new Map<string, {calls: Ec2Calls; watcher: InstanceWatcher}>()
  private readonly plans = new Map<string, Promise<LaunchPlan>>()
  /** CreateTags calls for batch names at once, over every batch of this object. */
  private readonly tagLimit = pLimit(8)

  constructor(private readonly deps: AmazonEc2Deps = {}) {
    this.timing = {...defaultTiming, ...deps.timing}
  }

  private settings(options: DriverOptions, machine?: Machine): Ec2Settings {
    const region = typeof machine?.data.region === 'string' ? machine.data.region : options.region
    return parseSettings({...options, region}, this.deps.env ?? process.env)
  }

  private client(s: Ec2Settings): {calls: Ec2Calls; watcher: InstanceWatcher} {
    const key = `${s.region}|${s.endpoint ?? ''}|${s.profile ?? ''}`
    let c = this.clients.get(key)
    if (!c) {
      const config = clientConfig(s, this.deps.clientConfig)
      const api = this.deps.makeClient ? this.deps.makeClient(config) : sdkClient(config, this.stats)
      const calls = new Ec2Calls(api, this.stats, this.timing)
      c = {calls, watcher: new InstanceWatcher(calls)}
      this.clients.set(key, c)
    }
    return c
  }

  /**
   * Credentials and region (DescribeRegions), network (DescribeVpcs/DescribeSubnets), image
   * (DescribeImages), then a RunInstances dry run that checks permissions, instance type and image
   * together. Creates nothing.
   */
  async preflight(options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = this.settings(options)
    const {calls} = this.client(s)
    let regions
    try {
      regions = await calls.call((api) => api.send(new DescribeRegionsCommand({})), ctx.signal)
    } catch (e) {
      if (ctx.signal?.aborted) throw e
      throw connectionError(e, s)
    }
    const known = (regions.Regions ?? []).map((r) => r.RegionName)
    if (!known.includes(s.region))
      throw new UserError(`region ${s.region} is not enabled for this account (enabled: ${known.join(', ')})`, {
        code: 'E_AWS_REGION',
        exit: ExitCode.usage,
        hint: 'choose one with --amazonec2-region, or enable the region in the AWS console',
      })
    const network = inZone(await resolveNetwork(calls, s, ctx.signal), s)
    if (s.userDataPath) await readUserData(s.userDataPath)
    await this.extraGroups(calls, s, network.vpcId, ctx)
    if (s.keypairName) await this.checkKeyPair(calls, s, ctx)
    const image = await resolveImage(calls, s, ctx.signal)
    if (image.sshUserTag && image.sshUserTag !== s.sshUser)
      ctx.log(`warning: image ${image.imageId} says its login user is ${image.sshUserTag}, not ${s.sshUser}: pass --amazonec2-ssh-user ${image.sshUserTag}`)
    await this.dryRun(calls, s, network, image, ctx)
  }

  /** `--amazonec2-security-group` as group ids of `vpcId`: every name or id must be a group there (a usage error otherwise). */
  private async extraGroups(calls: Ec2Calls, s: Ec2Settings, vpcId: string, ctx: DriverContext): Promise<string[]> {
    if (s.securityGroups.length === 0) return []
    const out = await calls.call((api) => api.send(new DescribeSecurityGroupsCommand({Filters: [{Name: 'vpc-id', Values: [vpcId]}]})), ctx.signal)
    const groups = out.SecurityGroups ?? []
    return s.securityGroups.map((want) => {
      const g = groups.find((x) => x.GroupId === want || x.GroupName === want)
      if (!g) throw usageErr(`--amazonec2-security-group: no security group ${want} in ${vpcId}`, 'create it first, or give a group of the hosts\' VPC (aws ec2 describe-security-groups)')
      return g.GroupId!
    })
  }

  /** `--amazonec2-keypair-name` exists in the region and `--amazonec2-ssh-keypath` is a readable private key. */
  private async checkKeyPair(calls: Ec2Calls, s: Ec2Settings, ctx: DriverContext): Promise<void> {
    try {
      await calls.call((api) => api.send(new DescribeKeyPairsCommand({KeyNames: [s.keypairName!]})), ctx.signal)
    } catch (e) {
      if (ctx.signal?.aborted) throw e
      if (awsErrorCode(e) === 'InvalidKeyPair.NotFound') throw usageErr(`--amazonec2-keypair-name: no key pair ${s.keypairName} in ${s.region}`, 'aws ec2 describe-key-pairs lists them', e)
      throw e
    }
    let text: string
    try {
      text = await fsp.readFile(s.sshKeyPath!, 'utf8')
    } catch (e) {
      throw usageErr(`--amazonec2-ssh-keypath: cannot read ${s.sshKeyPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, undefined, e)
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw usageErr(`--amazonec2-ssh-keypath: ${s.sshKeyPath} is not a private key (OpenSSH or PEM)`)
  }

  private async dryRun(calls: Ec2Calls, s: Ec2Settings, network: Ec2Network, image: Ec2Image, ctx: DriverContext): Promise<void> {
    let last: unknown
    for (const subnet of network.subnets) {
      try {
        await calls.call(
          (api) => api.send(new RunInstancesCommand({DryRun: true, ImageId: image.imageId, InstanceType: s.instanceType as never, MinCount: 1, MaxCount: 1, SubnetId: subnet.SubnetId})),
          ctx.signal,
        )
        return // an endpoint that ignores DryRun would have launched: EC2 and the emulator both answer DryRunOperation
      } catch (e) {
        const code = awsErrorCode(e)
        if (code === 'DryRunOperation') return
        // Ctrl-C: the request was cut off, which says nothing about the hosts (not a usage error).
        if (ctx.signal?.aborted) throw e
        if (code === 'UnauthorizedOperation' || code === 'AuthFailure') throw authError(e, s)
        // The type may not be offered in every zone: another subnet may do.
        if (code === 'Unsupported' || code === 'InsufficientInstanceCapacity') {
          last = e
          continue
        }
        throw new UserError(`EC2 would refuse these hosts: ${code ?? 'error'}: ${(e as Error).message}`, {
          code: 'E_AWS_INVALID',
          exit: ExitCode.usage,
          hint: 'check --amazonec2-instance-type, --amazonec2-ami and --amazonec2-subnet-id',
          cause: e,
        })
      }
    }
    throw new UserError(`${s.instanceType} cannot be launched in any subnet of ${network.vpcId}: ${(last as Error)?.message}`, {
      code: 'E_AWS_INVALID',
      exit: ExitCode.usage,
      hint: 'choose another --amazonec2-instance-type or --amazonec2-subnet-id',
      cause: last,
    })
  }

  /** Network, image, key pair and security group for a cluster: once per process, under the cluster lock. */
  private plan(s: Ec2Settings, cluster: ClusterSpec, ctx: DriverContext): Promise<LaunchPlan> {
    const key = JSON.stringify([s.region, s.endpoint, s.profile, s.vpcId, s.subnetId, s.ami, s.architecture, s.adminCidrs, cluster.name, cluster.sshPublicKey, s.zone, s.securityGroups, s.keypairName, s.userDataPath])
    let p = this.plans.get(key)
    if (!p) {
      const {calls} = this.client(s)
      p = (async () => {
        const network = inZone(await resolveNetwork(calls, s, ctx.signal), s)
        const image = await resolveImage(calls, s, ctx.signal)
        const extraGroupIds = await this.extraGroups(calls, s, network.vpcId, ctx)
        const userData = s.userDataPath ? await readUserData(s.userDataPath) : undefined
        // One process per cluster and region sets up the shared resources; the others find them.
        return ctx.withLock(clusterLock(cluster.name, s), async () => {
          // The group may be waiting to be deleted by a later rm (pending-groups.ts): it is this cluster's again.
          await dropPendingGroups(ctx, clientKey(s), cluster.name)
          // With --amazonec2-keypair-name the operator's key pair is used and the cluster's is not made.
          const keyName = s.keypairName ?? (await ensureKeyPair(calls, cluster, ctx)).keyName
          const groupId = await ensureSecurityGroup(calls, cluster.name, network.vpcId, s.adminCidrs, ctx)
          return {network, image, groupId, extraGroupIds, keyName, ...(userData !== undefined ? {userData} : {})}
        })
      })()
      this.plans.set(key, p)
      p.catch(() => this.plans.delete(key))
    }
    return p
  }

  private forgetPlans(cluster: string): void {
    for (const k of this.plans.keys()) if ((JSON.parse(k) as unknown[])[8] === cluster) this.plans.delete(k)
  }

  /** Creates one host: {@link createMany} with one spec. */
  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    const [result] = await this.createMany([spec], ctx)
    if (result instanceof Error || result === undefined) throw result ?? new Error('no result')
    return result
  }

  /**
   * Creates hosts of one cluster with as few RunInstances calls as EC2 allows (MinCount 1, MaxCount
   * up to `maxBatch`; the rest launched again when EC2 returns fewer), each with a ClientToken so a
   * retried call never launches twice. Every instance id is journalled as soon as RunInstances
   * returns it. Failed hosts are terminated and reported as Errors in their place; the others are
   * returned once EC2 says running and TCP port 22 accepts.
   */
  async createMany(specs: readonly HostSpec[], ctx: DriverContext): Promise<Array<Machine | Error>> {
    if (specs.length === 0) return []
    const first = specs[0]!
    if (specs.some((x) => x.cluster.name !== first.cluster.name || x.cluster.sshPublicKey !== first.cluster.sshPublicKey || JSON.stringify(x.options) !== JSON.stringify(first.options)))
      throw new Error('createMany: every spec of one call must share the cluster and the options')
    const s = this.settings(first.options)
    const {calls} = this.client(s)
    let plan: LaunchPlan
    try {
      plan = await this.plan(s, first.cluster, ctx)
    } catch (e) {
      throw connectionError(e, s)
    }
    // The cluster's shared resources may vanish after they were set up (another process removed the
    // cluster): RunInstances then says NotFound and the launch sets them up again, once.
    let replanned = false
    const replan = async (): Promise<LaunchPlan | undefined> => {
      if (replanned) return undefined
      replanned = true
      this.forgetPlans(first.cluster.name)
      plan = await this.plan(s, first.cluster, ctx)
      return plan
    }
    const launched = new Map<HostSpec, Instance | Error>()
    // Hosts an interrupted run left: their instances are adopted, only the others launched.
    const adopted = await this.findLeftovers(calls, first.cluster.name, specs.filter((sp) => sp.leftovers !== undefined), ctx)
    for (const [spec, i] of adopted) {
      ctx.log(`${spec.name}: adopting ${i.InstanceId}, launched by an interrupted run`)
      launched.set(spec, i)
    }
    // Name tags go on in the background: the next RunInstances and the waits need not wait for them.
    const naming: Promise<void>[] = []
    for (const chunk of chunks(specs.filter((sp) => !adopted.has(sp)), this.timing.maxBatch))
      for (const [spec, r] of await this.launch(calls, s, () => plan, replan, first.cluster, chunk, ctx, naming)) launched.set(spec, r)
    const probe = pLimit(this.timing.portProbeConcurrency)
    const results = await Promise.all(
      specs.map(async (spec): Promise<Machine | Error> => {
        const r = launched.get(spec)
        if (!r) return new Error(`${spec.name}: not launched`)
        if (r instanceof Error) return r
        const id = r.InstanceId!
        try {
          const running = await this.waitRunning(s, id, ctx)
          const machine = this.toMachine(running, s, plan)
          if (!(await probe(() => waitForPort(machine.address, SSH_PORT, this.timing.sshTimeoutMs, {signal: ctx.signal}))))
            throw new UserError(`${spec.name} (${id}) is running but port 22 at ${machine.address} did not accept within ${Math.round(this.timing.sshTimeoutMs / 1000)} s`, {
              code: 'E_AWS_SSH_TIMEOUT',
              exit: ExitCode.environment,
              hint: "check --amazonec2-admin-cidr includes this machine's address and that the subnet routes to an internet gateway",
            })
          return machine
        } catch (e) {
          // Interrupted: the instance stays, journaled; the next create of this host adopts it.
          if (ctx.signal?.aborted) return new Error(`${spec.name}: interrupted while ${id} was starting`, {cause: ctx.signal.reason})
          // Leave nothing billable: terminate what will not become a host, and say so in the journal.
          await this.terminate(calls, id, ctx)
            .then(() => ctx.journal({kind: 'instance', id, host: spec.name, action: 'deleted'}))
            .catch((e2: unknown) => ctx.log(`${spec.name}: could not terminate ${id} after a failed create (${(e2 as Error).message}); it stays in the journal`))
          return e instanceof Error ? e : new Error(String(e))
        }
      }),
    )
    await Promise.all(naming)
    return results
  }

  /** RunInstances for `chunk`, over the candidate subnets, until every spec has an instance or an error. */
  private async launch(
    calls: Ec2Calls,
    s: Ec2Settings,
    currentPlan: () => LaunchPlan,
    replan: () => Promise<LaunchPlan | undefined>,
    cluster: ClusterSpec,
    chunk: readonly HostSpec[],
    ctx: DriverContext,
    naming: Promise<void>[],
  ): Promise<Map<HostSpec, Instance | Error>> {
    const results = new Map<HostSpec, Instance | Error>()
    let pending = [...chunk]
    let subnetIndex = 0
    let capacityRound = 0
    const fail = (e: unknown) => {
      const err = launchError(e, s)
      for (const spec of pending) results.set(spec, err)
      return results
    }
    while (pending.length > 0) {
      if (ctx.signal?.aborted) return fail(ctx.signal.reason ?? new Error('aborted'))
      const plan = currentPlan()
      const subnet = plan.network.subnets[Math.min(subnetIndex, plan.network.subnets.length - 1)]!
      const token = randomUUID()
      const input = this.runInput(s, plan, cluster, subnet, pending, token)
      let instances: Instance[]
      try {
        // Not cut off by the operator's Ctrl-C: once sent, its instances must be journaled.
        const out = await calls.call((api) => api.send(new RunInstancesCommand(input)))
        instances = out.Instances ?? []
      } catch (e) {
        const code = awsErrorCode(e)
        if (code === 'InvalidGroup.NotFound' || code === 'InvalidKeyPair.NotFound') {
          const again = await replan().catch((e2: unknown) => e2)
          if (again === undefined || again instanceof Error || !again) return fail(again instanceof Error ? again : e)
          continue
        }
        // An ambiguous failure (network, 5xx, throttling to the end) may hide a launch: the token finds it.
        const ambiguous = code !== 'InsufficientInstanceCapacity' && (code === undefined || isThrottling(e) || (e as {$fault?: string}).$fault === 'server')
        const orphans = ambiguous ? await this.findByToken(calls, token, ctx).catch((): Instance[] => []) : []
        if (orphans.length === 0) {
          if ((code === 'InsufficientInstanceCapacity' || code === 'Unsupported') && subnetIndex + 1 < plan.network.subnets.length) {
            ctx.log(`${code} in ${subnet.AvailabilityZone}; trying ${plan.network.subnets[subnetIndex + 1]!.AvailabilityZone}`)
            subnetIndex++
            continue
          }
          if (code === 'InsufficientInstanceCapacity' && capacityRound + 1 < this.timing.capacityRounds) {
            capacityRound++
            subnetIndex = 0
            const waited = await sleep(backoff(capacityRound, this.timing.throttleBaseMs * 5, this.timing.throttleMaxMs * 3), ctx.signal).then(
              () => true,
              () => false,
            )
            if (!waited) return fail(ctx.signal?.reason ?? e)
            continue
          }
          return fail(e)
        }
        instances = orphans
      }
      instances.sort((a, b) => (a.AmiLaunchIndex ?? 0) - (b.AmiLaunchIndex ?? 0))
      const got = pending.slice(0, instances.length)
      await Promise.all(got.map((spec, i) => ctx.journal({kind: 'instance', id: instances[i]!.InstanceId!, host: spec.name, action: 'created'})))
      got.forEach((spec, i) => results.set(spec, instances[i]!))
      if (got.length > 1) naming.push(this.nameInstances(calls, got, [...instances], ctx))
      pending = pending.slice(instances.length)
      if (pending.length > 0) ctx.log(`EC2 launched ${instances.length} of ${instances.length + pending.length}; launching the rest`)
    }
    return results
  }

  private runInput(s: Ec2Settings, plan: LaunchPlan, cluster: ClusterSpec, subnet: Subnet, pending: readonly HostSpec[], token: string): RunInstancesCommandInput {
    const tags = [{Key: CLUSTER_TAG, Value: cluster.name}, ...(pending.length === 1 ? [{Key: NAME_TAG, Value: pending[0]!.name}] : []), ...s.tags]
    return {
      ImageId: plan.image.imageId,
      InstanceType: s.instanceType as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: pending.length,
      ClientToken: token,
      KeyName: plan.keyName,
      NetworkInterfaces: [
        {DeviceIndex: 0, SubnetId: subnet.SubnetId, Groups: [plan.groupId, ...plan.extraGroupIds], AssociatePublicIpAddress: !s.privateAddressOnly, DeleteOnTermination: true},
      ],
      TagSpecifications: [
        {ResourceType: 'instance', Tags: tags},
        {ResourceType: 'volume', Tags: [{Key: CLUSTER_TAG, Value: cluster.name}, ...s.tags]},
      ],
      ...(s.zone ? {Placement: {AvailabilityZone: s.zone}} : {}),
      ...(s.iamInstanceProfile ? {IamInstanceProfile: {...s.iamInstanceProfile}} : {}),
      ...(s.monitoring ? {Monitoring: {Enabled: true}} : {}),
      ...(plan.userData !== undefined ? {UserData: Buffer.from(plan.userData).toString('base64')} : {}),
      ...(plan.image.rootDeviceName && (s.rootSize || s.volumeType !== 'gp3')
        ? {BlockDeviceMappings: [{DeviceName: plan.image.rootDeviceName, Ebs: {...(s.rootSize ? {VolumeSize: s.rootSize} : {}), VolumeType: s.volumeType as 'gp3', DeleteOnTermination: true}}]}
        : {}),
      ...(s.spot ? {InstanceMarketOptions: {MarketType: 'spot', SpotOptions: {SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate'}}} : {}),
      // IMDSv2 only: a token is required to read instance metadata from the host.
      MetadataOptions: {HttpTokens: 'required', HttpEndpoint: 'enabled'},
    }
  }

  /** Name tags of a batch (RunInstances tags every instance of a call alike). A failure is logged: the host works without it. */
  private async nameInstances(calls: Ec2Calls, specs: readonly HostSpec[], instances: readonly Instance[], ctx: DriverContext): Promise<void> {
    await Promise.all(
      specs.map((spec, i) =>
        this.tagLimit(() =>
          calls
            .callLow((api) => api.send(new CreateTagsCommand({Resources: [instances[i]!.InstanceId!], Tags: [{Key: NAME_TAG, Value: spec.name}]})), ctx.signal)
            .catch((e: unknown) => ctx.log(`${spec.name}: could not tag ${instances[i]!.InstanceId} with its name: ${(e as Error).message}`)),
        ),
      ),
    )
  }

  /**
   * The live instances that interrupted creates left for these hosts, from one paginated
   * DescribeInstances of the cluster's tag: by journaled id, else by Name tag. A host keeps its
   * newest instance; any other is terminated, so a host never has two.
   */
  private async findLeftovers(calls: Ec2Calls, cluster: string, specs: readonly HostSpec[], ctx: DriverContext): Promise<Map<HostSpec, Instance>> {
    const out = new Map<HostSpec, Instance>()
    if (specs.length === 0) return out
    const live = await this.clusterInstances(calls, cluster, ctx)
    for (const sp of specs) {
      const ids = new Set(sp.leftovers!.filter((r) => r.kind === 'instance').map((r) => r.id))
      const mine = live
        .filter((i) => ids.has(i.InstanceId!) || i.Tags?.some((t) => t.Key === NAME_TAG && t.Value === sp.name))
        .sort((a, b) => (b.LaunchTime?.getTime() ?? 0) - (a.LaunchTime?.getTime() ?? 0))
      const [keep, ...extra] = mine
      for (const i of extra) if (await this.terminate(calls, i.InstanceId!, ctx)) await ctx.journal({kind: 'instance', id: i.InstanceId!, host: sp.name, action: 'deleted'})
      if (!keep) continue
      if (!ids.has(keep.InstanceId!)) await ctx.journal({kind: 'instance', id: keep.InstanceId!, host: sp.name, action: 'created'})
      out.set(sp, keep)
    }
    return out
  }

  /** The cluster's pending and running instances (every page). */
  private async clusterInstances(calls: Ec2Calls, cluster: string, ctx: DriverContext): Promise<Instance[]> {
    return calls.describeInstances([{Name: `tag:${CLUSTER_TAG}`, Values: [cluster]}, {Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped']}], ctx.signal)
  }

  /**
   * Terminates what an interrupted create left for a host: the journaled instance ids; when none
   * was journaled (RunInstances' answer was lost), the cluster's instances named for the host.
   */
  async removeLeftovers(host: {name: string; cluster: string}, leftovers: readonly ResourceId[], options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = this.settings(options)
    const {calls, watcher} = this.client(s)
    let ids = leftovers.filter((r) => r.kind === 'instance').map((r) => r.id)
    if (ids.length === 0)
      ids = (await this.clusterInstances(calls, host.cluster, ctx)).filter((i) => i.Tags?.some((t) => t.Key === NAME_TAG && t.Value === host.name)).map((i) => i.InstanceId!)
    for (const id of ids) {
      if (await this.terminate(calls, id, ctx)) await watcher.wait(id, goneOrWait, this.timing.terminateTimeoutMs, 'shutting-down', ctx.signal)
      await ctx.journal({kind: 'instance', id, host: host.name, action: 'deleted'})
    }
  }

  private async findByToken(calls: Ec2Calls, token: string, ctx: DriverContext): Promise<Instance[]> {
    const out = await calls.call((api) => api.send(new DescribeInstancesCommand({Filters: [{Name: 'client-token', Values: [token]}]})), ctx.signal)
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => i.State?.Name !== 'terminated')
  }

  private waitRunning(s: Ec2Settings, id: string, ctx: DriverContext): Promise<Instance> {
    const {watcher} = this.client(s)
    let missingSince: number | undefined
    const decide: Decide<Instance> = (i) => {
      if (!i) {
        // Just launched instances can be invisible for a moment (eventual consistency); not for minutes.
        missingSince ??= Date.now()
        return Date.now() - missingSince > 120_000 ? new Error(`${id} is not listed by DescribeInstances`) : undefined
      }
      missingSince = undefined
      const state = i.State?.Name
      if (state === 'running') return i
      if (state === 'pending') return undefined
      const reason = i.StateReason?.Message ?? i.StateTransitionReason ?? ''
      return new Error(`${id} went ${state} while starting${reason ? `: ${reason}` : ''}`)
    }
    return watcher.wait(id, decide, this.timing.runningTimeoutMs, 'running', ctx.signal)
  }

  private toMachine(i: Instance, s: Ec2Settings, plan?: LaunchPlan): Machine {
    // --amazonec2-private-address-only / --amazonec2-use-private-address: Belt reaches the host in the VPC.
    const address = s.privateAddressOnly || s.usePrivateAddress ? i.PrivateIpAddress : (i.PublicIpAddress ?? i.PrivateIpAddress)
    if (!address) throw new Error(`${i.InstanceId} is running but has no IP address`)
    return {
      id: i.InstanceId!,
      address,
      ...(i.PrivateIpAddress ? {privateAddress: i.PrivateIpAddress} : {}),
      ssh: {user: s.sshUser, port: SSH_PORT, ...(s.sshKeyPath ? {identityFile: s.sshKeyPath} : {})},
      data: {
        instanceId: i.InstanceId,
        region: s.region,
        instanceType: i.InstanceType ?? s.instanceType,
        ami: i.ImageId ?? plan?.image.imageId,
        az: i.Placement?.AvailabilityZone,
        subnetId: i.SubnetId,
        vpcId: i.VpcId,
        ...(plan ? {securityGroupId: plan.groupId, keyName: plan.keyName, ...(plan.extraGroupIds.length > 0 ? {extraSecurityGroupIds: [...plan.extraGroupIds]} : {})} : {}),
        ...(i.InstanceLifecycle === 'spot' ? {spot: true} : {}),
      },
    }
  }

  private async describeOne(calls: Ec2Calls, id: string, ctx: DriverContext): Promise<Instance | undefined> {
    try {
      const out = await calls.call((api) => api.send(new DescribeInstancesCommand({InstanceIds: [id]})), ctx.signal)
      return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id)
    } catch (e) {
      if (NOT_FOUND.has(awsErrorCode(e) ?? '')) return undefined
      throw e
    }
  }

  async state(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<MachineState> {
    const s = this.settings(options, machine)
    const i = await this.describeOne(this.client(s).calls, machine.id, ctx)
    return machineState(i?.State?.Name)
  }

  /** TerminateInstances; NotFound is success. */
  private async terminate(calls: Ec2Calls, id: string, ctx: DriverContext): Promise<boolean> {
    try {
      await calls.call((api) => api.send(new TerminateInstancesCommand({InstanceIds: [id]})), ctx.signal)
      return true
    } catch (e) {
      if (NOT_FOUND.has(awsErrorCode(e) ?? '')) return false
      throw e
    }
  }

  /** Security groups an earlier rm left to shut-down instances (pending-groups.ts), deleted when free; never fails the caller. */
  private async deletePendingGroups(s: Ec2Settings, ctx: DriverContext): Promise<void> {
    try {
      const deleted = await deletePendingGroups(this.client(s).calls, clientKey(s), ctx, (cluster) => clusterLock(cluster, s))
      if (deleted.length > 0) ctx.log(`removed security group ${deleted.join(', ')}, left by an earlier rm while its instances shut down`)
    } catch (e) {
      ctx.log(`could not delete the security groups an earlier rm left (${(e as Error).message}); a later belt rm tries again`)
    }
  }

  /** Terminates the instance and waits (bounded) until EC2 lists it shutting-down or terminated, so `state` is 'missing' after. */
  async remove(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = this.settings(options, machine)
    const {calls, watcher} = this.client(s)
    if (!(await this.terminate(calls, machine.id, ctx))) return
    await watcher.wait(machine.id, goneOrWait, this.timing.terminateTimeoutMs, 'shutting-down', ctx.signal)
    await ctx.journal({kind: 'instance', id: machine.id, action: 'deleted'})
  }

  /** Machines by the client (region, endpoint, profile) that manages them, with their indexes. */
  private byClient(machines: readonly Machine[], options: DriverOptions): Map<string, {s: Ec2Settings; idx: number[]}> {
    const groups = new Map<string, {s: Ec2Settings; idx: number[]}>()
    machines.forEach((m, i) => {
      const s = this.settings(options, m)
      const key = clientKey(s)
      const g = groups.get(key) ?? {s, idx: []}
      g.idx.push(i)
      groups.set(key, g)
    })
    return groups
  }

  /** The instances of these ids that EC2 lists (any state), IDS_PER_DESCRIBE ids per call, calls in parallel. */
  private async describeMany(calls: Ec2Calls, ids: readonly string[], ctx: DriverContext): Promise<Map<string, Instance>> {
    const found = new Map<string, Instance>()
    await Promise.all(
      chunks([...new Set(ids)], IDS_PER_DESCRIBE).map(async (chunk) => {
        // The instance-id filter, unlike InstanceIds, does not fail the call for an id EC2 no longer lists.
        for (const i of await calls.describeInstances([{Name: 'instance-id', Values: chunk}], ctx.signal)) if (i.InstanceId) found.set(i.InstanceId, i)
      }),
    )
    return found
  }

  /** States of many instances: DescribeInstances of up to 200 ids per call (not one call per host). */
  async states(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<MachineState | Error>> {
    const out: Array<MachineState | Error> = machines.map(() => 'missing')
    let failures = 0
    for (const {s, idx} of this.byClient(machines, options).values()) {
      try {
        const found = await this.describeMany(this.client(s).calls, idx.map((i) => machines[i]!.id), ctx)
        for (const i of idx) out[i] = machineState(found.get(machines[i]!.id)?.State?.Name)
      } catch (e) {
        const err = connectionError(e, s)
        for (const i of idx) out[i] = err instanceof Error ? err : new Error(String(err))
        failures += idx.length
      }
    }
    if (machines.length > 0 && failures === machines.length) throw out[0]
    return out
  }

  /**
   * Terminates many instances: one TerminateInstances per 1,000 ids (terminating an instance that is
   * shutting down or terminated changes nothing; ids EC2 no longer knows, which its NotFound answer
   * names, are gone already and left out of a second try), then DescribeInstances of those ids (200
   * per call, spaced like every poll) until EC2 lists each shutting-down or terminated, as `remove`
   * does (normally the first one does), bounded by the terminate timeout. No DescribeInstances
   * before: parsing the SDK's XML of 300 instances costs more CPU than the rest of `rm`.
   */
  async removeMany(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<Error | undefined>> {
    const results: Array<Error | undefined> = machines.map(() => undefined)
    await Promise.all(
      [...this.byClient(machines, options).values()].map(async ({s, idx}) => {
        const {calls} = this.client(s)
        const indexOf = new Map(idx.map((i) => [machines[i]!.id, i]))
        const fail = (id: string, e: unknown) => (results[indexOf.get(id)!] ??= e instanceof Error ? e : new Error(String(e)))
        const unknown = new Set<string>()
        await Promise.all(
          chunks([...indexOf.keys()], IDS_PER_TERMINATE).map(async (chunk) => {
            let rest = chunk
            for (let attempt = 0; attempt < 3 && rest.length > 0; attempt++) {
              try {
                await calls.call((api) => api.send(new TerminateInstancesCommand({InstanceIds: rest})), ctx.signal)
                return
              } catch (e) {
                if (!NOT_FOUND.has(awsErrorCode(e) ?? '')) {
                  for (const id of rest) fail(id, connectionError(e, s))
                  return
                }
                // One unknown id fails the whole call: EC2 names them; the others are tried again.
                const named = new Set(((e as Error).message.match(/\bi-[0-9a-f]+\b/g) ?? []).filter((id) => rest.includes(id)))
                if (named.size === 0) break
                for (const id of named) unknown.add(id)
                rest = rest.filter((id) => !named.has(id))
              }
            }
            // Unknown ids not named (or named again and again): one by one, NotFound being success.
            for (const id of rest) await this.terminate(calls, id, ctx).catch((e2: unknown) => fail(id, connectionError(e2, s)))
          }),
        )
        let waiting = [...indexOf.keys()].filter((id) => !unknown.has(id) && results[indexOf.get(id)!] === undefined)
        const deadline = Date.now() + this.timing.terminateTimeoutMs
        for (let round = 0; waiting.length > 0; round++) {
          try {
            if (round > 0) await sleep(Math.min(this.timing.pollMaxMs, this.timing.pollMinMs * 1.5 ** (round - 1)), ctx.signal)
            const found = await this.describeMany(calls, waiting, ctx)
            await Promise.all(waiting.filter((x) => isGone(found.get(x))).map((id) => ctx.journal({kind: 'instance', id, action: 'deleted'})))
            waiting = waiting.filter((x) => !isGone(found.get(x)))
          } catch (e) {
            for (const id of waiting) fail(id, new Error(`${id}: terminated, but could not be confirmed (${(e as Error).message})`, {cause: e}))
            return
          }
          if (waiting.length > 0 && Date.now() > deadline) for (const id of waiting.splice(0)) fail(id, new Error(`${id} was not shutting down ${Math.round(this.timing.terminateTimeoutMs / 1000)} s after TerminateInstances`))
        }
        await this.deletePendingGroups(s, ctx)
      }),
    )
    return results
  }

  private async waitState(s: Ec2Settings, id: string, want: 'stopped', timeoutMs: number, ctx: DriverContext): Promise<Instance> {
    return this.client(s).watcher.wait(
      id,
      (i) => {
        const state = i?.State?.Name
        if (!i || state === 'terminated' || state === 'shutting-down') return new Error(`${id} is ${state ?? 'gone'}`)
        return state === want ? i : undefined
      },
      timeoutMs,
      want,
      ctx.signal,
    )
  }

  private async powerCall(s: Ec2Settings, id: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn()
    } catch (e) {
      const code = awsErrorCode(e)
      if (NOT_FOUND.has(code ?? '')) throw new UserError(`instance ${id} no longer exists in ${s.region}`, {code: 'E_AWS_GONE', exit: ExitCode.notFound, hint: 'remove the record with belt rm', cause: e})
      if (code === 'UnsupportedOperation' || code === 'IncorrectInstanceState' || code === 'IncorrectSpotRequestState')
        throw new UserError(`EC2 refused: ${(e as Error).message}`, {code: 'E_AWS_STATE', exit: ExitCode.usage, cause: e})
      throw e
    }
  }

  /** StartInstances; resolves when running and port 22 accepts. The public address may change (EC2 releases it on stop). */
  async start(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    const s = this.settings(options, machine)
    const {calls} = this.client(s)
    const current = await this.describeOne(calls, machine.id, ctx)
    if (current?.State?.Name === 'stopping') await this.waitState(s, machine.id, 'stopped', this.timing.stopTimeoutMs, ctx)
    await this.powerCall(s, machine.id, () => calls.call((api) => api.send(new StartInstancesCommand({InstanceIds: [machine.id]})), ctx.signal))
    const running = await this.waitRunning(s, machine.id, ctx)
    const fresh = this.toMachine(running, s)
    const started: Machine = {...machine, address: fresh.address, ...(fresh.privateAddress ? {privateAddress: fresh.privateAddress} : {})}
    if (!(await waitForPort(started.address, SSH_PORT, this.timing.sshTimeoutMs, {signal: ctx.signal})))
      throw new Error(`${machine.id} is running but port 22 at ${started.address} did not accept within ${Math.round(this.timing.sshTimeoutMs / 1000)} s`)
    return started
  }

  /** StopInstances; resolves when stopped. One-time Spot instances cannot be stopped (EC2 says so). */
  async stop(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    await this.stopWith(machine, options, ctx, false)
  }

  /** StopInstances with Force (no clean OS shutdown); resolves when stopped. */
  async kill(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void> {
    await this.stopWith(machine, options, ctx, true)
  }

  private async stopWith(machine: Machine, options: DriverOptions, ctx: DriverContext, force: boolean): Promise<void> {
    const s = this.settings(options, machine)
    const {calls} = this.client(s)
    await this.powerCall(s, machine.id, () => calls.call((api) => api.send(new StopInstancesCommand({InstanceIds: [machine.id], Force: force})), ctx.signal))
    await this.waitState(s, machine.id, 'stopped', this.timing.stopTimeoutMs, ctx)
  }

  /** RebootInstances; resolves when port 22 accepts again (after going down, or after a grace period). */
  async restart(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine> {
    const s = this.settings(options, machine)
    const {calls} = this.client(s)
    await this.powerCall(s, machine.id, () => calls.call((api) => api.send(new RebootInstancesCommand({InstanceIds: [machine.id]})), ctx.signal))
    await waitForPort(machine.address, SSH_PORT, this.timing.rebootDownGraceMs, {signal: ctx.signal, closed: true})
    if (!(await waitForPort(machine.address, SSH_PORT, this.timing.sshTimeoutMs, {signal: ctx.signal})))
      throw new Error(`${machine.id} did not accept SSH at ${machine.address} within ${Math.round(this.timing.sshTimeoutMs / 1000)} s of the reboot`)
    return machine
  }

  /** The ingress rules of the cluster's security group(s) (every VPC), found by the cluster tag. */
  async listPorts(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]> {
    const s = this.settings(options)
    try {
      return clusterPortRules(await findClusterGroups(this.client(s).calls, cluster, ctx.signal))
    } catch (e) {
      throw connectionError(e, s)
    }
  }

  /**
   * Publishes and closes ports on the cluster's security group(s), under the cluster lock: every
   * group tagged with the cluster, or, when there is none yet, the group made in the hosts' VPC
   * (with Belt's own rules), so the ports hold for hosts created afterwards.
   */
  async setPorts(cluster: string, change: PortChange, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]> {
    const s = this.settings(options)
    const {calls} = this.client(s)
    try {
      return await ctx.withLock(`cluster-${cluster}-${s.region}`, async () => {
        let groups = await findClusterGroups(calls, cluster, ctx.signal)
        if (groups.length === 0) {
          const network = inZone(await resolveNetwork(calls, s, ctx.signal), s)
          await ensureSecurityGroup(calls, cluster, network.vpcId, s.adminCidrs, ctx)
          groups = await findClusterGroups(calls, cluster, ctx.signal)
        }
        for (const g of groups) await setGroupPorts(calls, g, change, ctx)
        return clusterPortRules(await findClusterGroups(calls, cluster, ctx.signal))
      })
    } catch (e) {
      throw connectionError(e, s)
    }
  }

  /**
   * When no instance tagged with the cluster is left but terminated or terminating ones, deletes the
   * cluster's security groups (waiting out DependencyViolation while instances terminate, bounded)
   * and key pairs, all found by tag. With instances left, keeps everything and says so. Idempotent.
   */
  async removeCluster(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<void> {
    const s = this.settings(options)
    const {calls} = this.client(s)
    await this.deletePendingGroups(s, ctx)
    const live = (await this.clusterInstances(calls, cluster, ctx)).map((i) => i.InstanceId!)
    if (live.length > 0) {
      ctx.log(`keeping the key pair and security group of cluster ${cluster} in ${s.region}: ${live.length} instance(s) still carry its tag (${live.slice(0, 5).join(', ')}${live.length > 5 ? ', ...' : ''})`)
      return
    }
    this.forgetPlans(cluster)
    // A group held only by the cluster's instances shutting down is left for the next `belt rm`
    // (pending-groups.ts) instead of waited for: they are gone for Belt already (see STATE).
    const held: string[] = []
    const groups = await deleteClusterGroups(calls, cluster, ctx, async (groupId) => {
      await addPendingGroup(ctx, {groupId, cluster, client: clientKey(s)})
      held.push(groupId)
    })
    const keys = await deleteClusterKeyPairs(calls, cluster, ctx)
    if (groups.length + keys.length > 0) ctx.log(`removed ${[...groups.map((g) => `security group ${g}`), ...keys.map((k) => `key pair ${k}`)].join(', ')}`)
    if (held.length > 0)
      ctx.log(
        `security group ${held.join(', ')} of cluster ${cluster} stays until its instances have shut down (EC2 keeps a group while they do; it costs nothing): the next belt rm with amazonec2 deletes it`,
      )
  }
}

/** A new driver object (tests and benchmarks pass deps). */
export function createAmazonEc2Driver(deps: AmazonEc2Deps = {}): AmazonEc2Driver {
  return new AmazonEc2Driver(deps)
}

let shared: AmazonEc2Driver | undefined

/**
 * The process-wide driver object the registry hands out, so that every host of a command shares one
 * SDK client per region (one adaptive rate limiter, one DescribeInstances poller) and one setup.
 */
export function defaultAmazonEc2Driver(): AmazonEc2Driver {
  shared ??= new AmazonEc2Driver()
  return shared
}
