import {createHash, randomBytes} from 'node:crypto'
import type {Backing, DriverContext, DriverOptions, Machine} from '../../driver.js'
import {ec2ImportedFingerprint, parseOpenSshKey} from '../keys.js'
import {parseCidr} from '../settings.js'
import {
  Ec2Error,
  bool,
  filters,
  int,
  objList,
  paginate,
  passes,
  required,
  specTags,
  str,
  strList,
  sub,
  type Params,
} from './query.js'

/** How the emulated cloud behaves in time and under faults. */
export interface CloudOptions {
  /** Each instance is a host of this driver. */
  readonly backing: Backing
  readonly backingOptions: DriverOptions
  readonly backingContext: DriverContext
  /** pending -> running takes at least this long (plus the backing host's own creation). */
  bootDelayMs: number
  /** stopping -> stopped. */
  stopDelayMs: number
  /** shutting-down -> terminated. */
  terminateDelayMs: number
  /** How long terminated instances stay visible (EC2: about an hour). */
  readonly terminatedRetentionMs: number
  /** Probability (0..1) that a RunInstances call fails with InsufficientInstanceCapacity. */
  faultCapacity: number
  /** Availability zones with no capacity at all (every launch there fails with InsufficientInstanceCapacity). */
  noCapacityZones: ReadonlySet<string>
  /** IPv4 CIDR of every region's default VPC. */
  readonly vpcCidr: string
  /** Regions this cloud knows; requests signed for another fail with AuthFailure. */
  readonly regions: readonly string[]
  /** Instances that may exist at once (InstanceLimitExceeded beyond). */
  readonly maxInstances: number
  /**
   * Login user of every image, overriding each image's own (ubuntu on Canonical's images, ec2-user
   * on Amazon Linux, as on EC2). The backing host makes it as cloud-init does (key, passwordless
   * sudo, root refused); written on the images as the `belt:ssh-user` tag.
   */
  readonly imageLoginUser?: string
  readonly accountId: string
  /**
   * At most this many items per page when the caller asks for pages (MaxResults), even if it asks
   * for more: EC2 may return fewer than MaxResults, and clients must follow NextToken.
   */
  readonly maxPageSize?: number
  readonly random: () => number
  readonly log: (line: string) => void
}

type StateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped'
const STATE_CODE: Record<StateName, number> = {pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80}

interface Instance {
  readonly id: string
  readonly reservationId: string
  readonly imageId: string
  readonly instanceType: string
  readonly keyName?: string
  readonly subnetId: string
  readonly vpcId: string
  readonly az: string
  readonly groupIds: readonly string[]
  readonly tags: Map<string, string>
  readonly launchIndex: number
  readonly launchTime: string
  readonly clientToken?: string
  readonly rootDeviceName: string
  readonly spot: boolean
  readonly publicIpWanted: boolean
  readonly monitoring: boolean
  /** Name or ARN, as given. */
  readonly iamInstanceProfile?: string
  state: StateName
  stateReason?: {code: string; message: string}
  transitionReason: string
  privateIp?: string
  publicIp?: string
  backing?: Machine
  /** Host name given to the backing driver, kept while the instance lives. */
  backingName?: string
  /** The backing host exists but is powered off (the backing driver can start it again). */
  backingStopped: boolean
  /** Backing operations run one after the other per instance. */
  op: Promise<void>
}

interface Vpc {
  readonly id: string
  readonly cidr: string
  readonly isDefault: boolean
  readonly tags: Map<string, string>
}

interface Subnet {
  readonly id: string
  readonly vpcId: string
  readonly cidr: string
  readonly az: string
  readonly defaultForAz: boolean
  readonly mapPublicIp: boolean
  readonly tags: Map<string, string>
  /** Host addresses handed out, for availableIpAddressCount. */
  used: number
}

interface Rule {
  readonly protocol: string
  readonly from?: number
  readonly to?: number
  readonly cidr?: string
  readonly groupId?: string
  readonly description?: string
}

interface Group {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly vpcId: string
  readonly tags: Map<string, string>
  readonly ingress: Rule[]
  readonly egress: Rule[]
}

interface KeyPair {
  readonly id: string
  readonly name: string
  readonly fingerprint: string
  readonly publicKey: string
  readonly type: string
  readonly createTime: string
  readonly tags: Map<string, string>
}

interface Image {
  readonly id: string
  readonly name: string
  readonly owner: string
  readonly description: string
  readonly architecture: 'x86_64' | 'arm64'
  readonly creationDate: string
  readonly rootDeviceName: string
  /** Who logs in to its instances (cloud-init's default user). */
  readonly loginUser: string
  readonly tags: Map<string, string>
}

interface World {
  readonly region: string
  readonly azs: readonly string[]
  readonly vpcs: Map<string, Vpc>
  readonly subnets: Map<string, Subnet>
  readonly groups: Map<string, Group>
  readonly keyPairs: Map<string, KeyPair>
  readonly instances: Map<string, Instance>
  readonly tokens: Map<string, {fingerprint: string; reservationId: string; instanceIds: string[]}>
}

const CANONICAL = '099720109477'
const AMAZON = '137112412989'

/** `prefix-` and 17 hex digits, like EC2's current ids. */
const newId = (prefix: string) => `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`
/** Stable ids for the default network, so scripts may name them across emulator restarts. */
const stableId = (prefix: string, seed: string) => `${prefix}-${createHash('sha256').update(seed).digest('hex').slice(0, 17)}`

const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/
const INSTANCE_TYPE = /^(t2|t3|t3a|t4g|m5|m5a|m6i|m6a|m6g|m7i|m7a|m7g|c5|c6i|c6a|c6g|c7i|c7a|c7g|r5|r6i|r6g|r7i|r7g)\.(nano|micro|small|medium|large|xlarge|\d+xlarge)$/
const armType = (t: string) => /^[a-z]+\d+g[a-z]*\./.test(t)

const intToIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')

const tagSet = (tags: ReadonlyMap<string, string>) => set([...tags].map(([key, value]) => ({key, value})))
/** An EC2 XML list: `<xSet><item>..</item></xSet>`, or an empty element. */
export const set = (items: readonly object[]): {item: object[]} | '' => (items.length ? {item: [...items]} : '')

const PROTOCOLS: Record<string, string> = {tcp: 'tcp', '6': 'tcp', udp: 'udp', '17': 'udp', icmp: 'icmp', '1': 'icmp', '-1': '-1', all: '-1'}

/** Regions, default VPCs, images, key pairs, security groups and instances, in memory, per region. */
export class Ec2Cloud {
  private readonly worlds = new Map<string, World>()
  private readonly images: Image[]
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Backing cluster names used, for removeCluster on close. */
  private readonly backingClusters = new Set<string>()
  private closed = false

  constructor(readonly opts: CloudOptions) {
    this.images = catalogue(opts.imageLoginUser, opts.backing.name)
  }

  /** The region's world, created on first use; unknown regions fail like a badly scoped signature. */
  world(region: string): World {
    let w = this.worlds.get(region)
    if (w) return w
    if (!this.opts.regions.includes(region)) throw new Ec2Error('AuthFailure', `Credential should be scoped to a valid region, not '${region}'.`, 401)
    w = newWorld(region, this.opts.vpcCidr, this.opts.accountId)
    this.worlds.set(region, w)
    return w
  }

  /** Runs one API action; resolves with the response body's fields. */
  async handle(action: string, p: Params, region: string): Promise<Record<string, unknown>> {
    const w = this.world(region)
    switch (action) {
      case 'RunInstances':
        return this.runInstances(w, p)
      case 'DescribeInstances':
        return this.describeInstances(w, p)
      case 'TerminateInstances':
        return this.changeStates(w, p, 'terminate')
      case 'StopInstances':
        return this.changeStates(w, p, bool(p, 'Force') ? 'kill' : 'stop')
      case 'StartInstances':
        return this.changeStates(w, p, 'start')
      case 'RebootInstances':
        return this.reboot(w, p)
      case 'DescribeImages':
        return this.describeImages(p)
      case 'ImportKeyPair':
        return this.importKeyPair(w, p)
      case 'DeleteKeyPair':
        return this.deleteKeyPair(w, p)
      case 'DescribeKeyPairs':
        return this.describeKeyPairs(w, p)
      case 'CreateSecurityGroup':
        return this.createSecurityGroup(w, p)
      case 'AuthorizeSecurityGroupIngress':
        return this.authorizeIngress(w, p)
      case 'RevokeSecurityGroupIngress':
        return this.revokeIngress(w, p)
      case 'DescribeSecurityGroups':
        return this.describeSecurityGroups(w, p)
      case 'DeleteSecurityGroup':
        return this.deleteSecurityGroup(w, p)
      case 'CreateTags':
        return this.createTags(w, p)
      case 'DescribeVpcs':
        return this.describeVpcs(w, p)
      case 'DescribeSubnets':
        return this.describeSubnets(w, p)
      case 'DescribeRegions':
        return this.describeRegions(p)
      default:
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`)
    }
  }

  // ---------------------------------------------------------------- instances

  private dryRun(p: Params): void {
    if (bool(p, 'DryRun')) throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412)
  }

  private runInstances(w: World, p: Params): Record<string, unknown> {
    const imageId = required(p, 'ImageId')
    if (!/^ami-[0-9a-f]{8,17}$/.test(imageId)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${imageId}" (expecting "ami-...")`)
    const image = this.images.find((i) => i.id === imageId)
    if (!image) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`)
    const instanceType = str(p, 'InstanceType') ?? 't3.micro'
    if (!INSTANCE_TYPE.test(instanceType)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`)
    const arch = armType(instanceType) ? 'arm64' : 'x86_64'
    if (arch !== image.architecture)
      throw new Ec2Error(
        'InvalidParameterValue',
        `The architecture '${arch}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
      )
    const min = int(p, 'MinCount')
    const max = int(p, 'MaxCount')
    if (min === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter MinCount')
    if (max === undefined) throw new Ec2Error('MissingParameter', 'The request must contain the parameter MaxCount')
    if (min < 1 || max < min) throw new Ec2Error('InvalidParameterValue', `Invalid MinCount/MaxCount: ${min}/${max}`)
    const keyName = str(p, 'KeyName')
    if (keyName !== undefined && !w.keyPairs.has(keyName)) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`)

    const ni = objList(p, 'NetworkInterface')[0]
    const subnetId = str(ni, 'SubnetId') ?? str(p, 'SubnetId')
    let subnet: Subnet | undefined
    if (subnetId) {
      subnet = w.subnets.get(subnetId)
      if (!subnet) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`)
    } else {
      const az = str(sub(p, 'Placement'), 'AvailabilityZone')
      const vpc = [...w.vpcs.values()].find((v) => v.isDefault)
      if (!vpc) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user')
      subnet = [...w.subnets.values()].find((s) => s.vpcId === vpc.id && s.defaultForAz && (!az || s.az === az))
      if (!subnet) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${az}]`)
    }
    const groupIds = [...new Set([...strList(ni, 'SecurityGroupId'), ...strList(p, 'SecurityGroupId')])]
    for (const name of strList(p, 'SecurityGroup')) {
      const g = [...w.groups.values()].find((x) => x.name === name && x.vpcId === subnet!.vpcId)
      if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in VPC '${subnet.vpcId}'`)
      groupIds.push(g.id)
    }
    for (const id of groupIds) {
      const g = w.groups.get(id)
      if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`)
      if (g.vpcId !== subnet.vpcId) throw new Ec2Error('InvalidParameter', `Security group ${id} and subnet ${subnet.id} belong to different networks.`)
    }
    if (groupIds.length === 0) groupIds.push([...w.groups.values()].find((g) => g.vpcId === subnet!.vpcId && g.name === 'default')!.id)
    const placementAz = str(sub(p, 'Placement'), 'AvailabilityZone')
    if (placementAz && placementAz !== subnet.az)
      throw new Ec2Error('InvalidParameterCombination', `The specified Availability Zone ${placementAz} does not match the subnet ${subnet.id} (${subnet.az}).`)
    for (const bdm of objList(p, 'BlockDeviceMapping')) {
      const vt = str(sub(bdm, 'Ebs'), 'VolumeType')
      if (vt && !['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'].includes(vt)) throw new Ec2Error('InvalidParameterValue', `Value (${vt}) for parameter volumeType is invalid.`)
    }
    const monitoring = bool(sub(p, 'Monitoring'), 'Enabled') ?? false
    const profile = sub(p, 'IamInstanceProfile')
    const iamInstanceProfile = str(profile, 'Arn') ?? str(profile, 'Name')
    const publicIpWanted = bool(ni, 'AssociatePublicIpAddress') ?? subnet.mapPublicIp
    const market = sub(p, 'InstanceMarketOptions')
    const spot = str(market, 'MarketType') === 'spot'
    if (spot && str(sub(market, 'SpotOptions'), 'SpotInstanceType') === 'persistent')
      throw new Ec2Error('InvalidParameterCombination', 'The emulator only supports one-time Spot instances')
    const tags = specTags(p, 'instance')

    // ClientToken: the same request again returns the same reservation; a different one is refused.
    const token = str(p, 'ClientToken')
    const fingerprint = JSON.stringify({imageId, instanceType, min, max, keyName, subnet: subnet.id, groupIds, spot, tags: [...tags]})
    if (token) {
      if (token.length > 64) throw new Ec2Error('InvalidParameterValue', 'The client token must be at most 64 ASCII characters')
      const known = w.tokens.get(token)
      if (known) {
        if (known.fingerprint !== fingerprint)
          throw new Ec2Error('IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that is already deleted or has different parameters.')
        this.dryRun(p)
        return this.reservationView(w, known.reservationId, known.instanceIds)
      }
    }
    this.dryRun(p)
    if (this.opts.noCapacityZones.has(subnet.az) || (this.opts.faultCapacity > 0 && this.opts.random() < this.opts.faultCapacity))
      throw new Ec2Error(
        'InsufficientInstanceCapacity',
        `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${subnet.az}). Our system will be working on provisioning additional capacity. You can currently get ${instanceType} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.`,
        500,
      )
    const live = [...w.instances.values()].filter((i) => i.state !== 'terminated').length
    const room = this.opts.maxInstances - live
    if (room < min)
      throw new Ec2Error('InstanceLimitExceeded', `You have requested more instances (${live + min}) than your current instance limit of ${this.opts.maxInstances} allows for the specified instance type.`)
    const count = Math.min(max, room)
    const reservationId = newId('r')
    const now = new Date().toISOString()
    const ids: string[] = []
    for (let n = 0; n < count; n++) {
      const inst: Instance = {
        id: newId('i'),
        reservationId,
        imageId,
        instanceType,
        keyName,
        subnetId: subnet.id,
        vpcId: subnet.vpcId,
        az: subnet.az,
        groupIds,
        tags: new Map(tags),
        launchIndex: n,
        launchTime: now,
        clientToken: token,
        rootDeviceName: image.rootDeviceName,
        spot,
        publicIpWanted,
        monitoring,
        ...(iamInstanceProfile ? {iamInstanceProfile} : {}),
        state: 'pending',
        transitionReason: '',
        backingStopped: false,
        op: Promise.resolve(),
      }
      subnet.used++
      w.instances.set(inst.id, inst)
      ids.push(inst.id)
      this.after(this.opts.bootDelayMs, () => this.boot(w, inst))
    }
    if (token) w.tokens.set(token, {fingerprint, reservationId, instanceIds: ids})
    this.opts.log(`RunInstances: ${count} ${instanceType} in ${subnet.az} (${ids.join(', ')})`)
    return this.reservationView(w, reservationId, ids)
  }

  private reservationView(w: World, reservationId: string, ids: readonly string[]): Record<string, unknown> {
    const insts = ids.map((id) => w.instances.get(id)).filter((i): i is Instance => Boolean(i))
    return {
      reservationId,
      ownerId: this.opts.accountId,
      groupSet: '',
      instancesSet: set(insts.map((i) => this.instanceView(w, i))),
    }
  }

  private instanceView(w: World, i: Instance): Record<string, unknown> {
    return {
      instanceId: i.id,
      imageId: i.imageId,
      instanceState: {code: STATE_CODE[i.state], name: i.state},
      privateDnsName: i.privateIp ? `ip-${i.privateIp.replaceAll('.', '-')}.ec2.internal` : '',
      dnsName: i.publicIp ? `ec2-${i.publicIp.replaceAll('.', '-')}.compute-1.amazonaws.com` : '',
      reason: i.transitionReason,
      keyName: i.keyName,
      amiLaunchIndex: i.launchIndex,
      productCodes: '',
      instanceType: i.instanceType,
      launchTime: i.launchTime,
      placement: {availabilityZone: i.az, groupName: '', tenancy: 'default'},
      monitoring: {state: i.monitoring ? 'enabled' : 'disabled'},
      iamInstanceProfile: i.iamInstanceProfile
        ? {arn: i.iamInstanceProfile.startsWith('arn:') ? i.iamInstanceProfile : `arn:aws:iam::${this.opts.accountId}:instance-profile/${i.iamInstanceProfile}`, id: 'AIPA' + i.id.slice(2, 19).toUpperCase()}
        : undefined,
      subnetId: i.subnetId,
      vpcId: i.vpcId,
      privateIpAddress: i.privateIp,
      ipAddress: i.publicIp,
      sourceDestCheck: true,
      groupSet: set(i.groupIds.map((id) => ({groupId: id, groupName: w.groups.get(id)?.name ?? ''}))),
      stateReason: i.stateReason,
      architecture: armType(i.instanceType) ? 'arm64' : 'x86_64',
      rootDeviceType: 'ebs',
      rootDeviceName: i.rootDeviceName,
      blockDeviceMapping: '',
      instanceLifecycle: i.spot ? 'spot' : undefined,
      virtualizationType: 'hvm',
      clientToken: i.clientToken ?? '',
      tagSet: tagSet(i.tags),
      hypervisor: 'xen',
      ebsOptimized: false,
      enaSupport: true,
    }
  }

  private instanceFilterValues(w: World, i: Instance, name: string): readonly string[] | undefined {
    switch (name) {
      case 'instance-id':
        return [i.id]
      case 'instance-state-name':
        return [i.state]
      case 'instance-state-code':
        return [String(STATE_CODE[i.state])]
      case 'instance-type':
        return [i.instanceType]
      case 'image-id':
        return [i.imageId]
      case 'key-name':
        return i.keyName ? [i.keyName] : []
      case 'vpc-id':
        return [i.vpcId]
      case 'subnet-id':
        return [i.subnetId]
      case 'availability-zone':
        return [i.az]
      case 'reservation-id':
        return [i.reservationId]
      case 'client-token':
        return i.clientToken ? [i.clientToken] : []
      case 'instance.group-id':
      case 'group-id':
        return i.groupIds
      case 'instance.group-name':
      case 'group-name':
        return i.groupIds.map((g) => w.groups.get(g)?.name ?? '')
      case 'private-ip-address':
        return i.privateIp ? [i.privateIp] : []
      case 'ip-address':
        return i.publicIp ? [i.publicIp] : []
      case 'instance-lifecycle':
        return i.spot ? ['spot'] : []
      default:
        return undefined
    }
  }

  /** Resolves `InstanceId.N` like EC2: malformed ids and unknown ids are errors naming them. */
  private instancesById(w: World, ids: readonly string[]): Instance[] {
    const malformed = ids.filter((id) => !INSTANCE_ID.test(id))
    if (malformed.length) throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${malformed[0]}"`)
    const missing = ids.filter((id) => !w.instances.has(id))
    if (missing.length === 1) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing[0]}' does not exist`)
    if (missing.length > 1) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`)
    return ids.map((id) => w.instances.get(id)!)
  }

  private describeInstances(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'InstanceId')
    if (ids.length && str(p, 'MaxResults') !== undefined)
      throw new Ec2Error('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults')
    const fs = filters(p)
    const pool = ids.length ? this.instancesById(w, ids) : [...w.instances.values()]
    const matching = pool.filter((i) => passes(fs, (n) => this.instanceFilterValues(w, i, n), i.tags))
    const {page, nextToken} = paginate(matching, p, undefined, this.opts.maxPageSize)
    // Instances of one reservation on one page are listed together, as EC2 does.
    const byReservation = new Map<string, Instance[]>()
    for (const i of page) byReservation.set(i.reservationId, [...(byReservation.get(i.reservationId) ?? []), i])
    return {
      reservationSet: set(
        [...byReservation].map(([reservationId, insts]) => ({
          reservationId,
          ownerId: this.opts.accountId,
          groupSet: '',
          instancesSet: set(insts.map((i) => this.instanceView(w, i))),
        })),
      ),
      nextToken,
    }
  }

  private changeStates(w: World, p: Params, verb: 'terminate' | 'stop' | 'kill' | 'start'): Record<string, unknown> {
    const ids = strList(p, 'InstanceId')
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId')
    const insts = this.instancesById(w, ids)
    // Validate them all first: EC2 changes none when one is refused.
    for (const i of insts) {
      if (verb === 'stop' || verb === 'kill') {
        if (i.spot) throw new Ec2Error('UnsupportedOperation', `You can't stop the Spot Instance '${i.id}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.`)
        if (i.state === 'pending' || i.state === 'shutting-down' || i.state === 'terminated')
          throw new Ec2Error('IncorrectInstanceState', `This instance '${i.id}' is not in a state from which it can be stopped.`)
      }
      if (verb === 'start' && i.state !== 'stopped' && i.state !== 'running' && i.state !== 'pending')
        throw new Ec2Error('IncorrectInstanceState', `The instance '${i.id}' is not in a state from which it can be started.`)
    }
    this.dryRun(p)
    const changes = insts.map((i) => {
      const previous = i.state
      if (verb === 'terminate') this.terminate(w, i)
      else if (verb === 'start') this.start(w, i)
      else this.stop(i, verb === 'kill')
      return {instanceId: i.id, currentState: {code: STATE_CODE[i.state], name: i.state}, previousState: {code: STATE_CODE[previous], name: previous}}
    })
    return {instancesSet: set(changes)}
  }

  private reboot(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'InstanceId')
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId')
    const insts = this.instancesById(w, ids)
    for (const i of insts)
      if (i.state !== 'running') throw new Ec2Error('IncorrectInstanceState', `The instance '${i.id}' is not in a state from which it can be rebooted.`)
    this.dryRun(p)
    for (const i of insts)
      this.serially(i, async () => {
        if (i.state !== 'running' || !i.backing) return
        const {backing, backingOptions, backingContext} = this.opts
        if (backing.restart) this.attach(i, await backing.restart(i.backing, backingOptions, backingContext))
        this.opts.log(`${i.id}: rebooted`)
      })
    return {return: true}
  }

  /** Schedules `fn` after `ms` (cancelled on close). */
  private after(ms: number, fn: () => void): void {
    if (this.closed) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn()
    }, ms)
    this.timers.add(t)
  }

  /** Queues a backing operation of one instance behind the previous ones; failures are logged. */
  private serially(i: Instance, fn: () => Promise<void>): void {
    i.op = i.op.then(fn).catch((e: unknown) => this.opts.log(`${i.id}: backing ${this.opts.backing.name} failed: ${(e as Error).message}`))
  }

  private attach(i: Instance, m: Machine): void {
    i.backing = m
    i.privateIp = m.privateAddress ?? m.address
    i.publicIp = i.publicIpWanted ? m.address : undefined
  }

  private backingName(w: World, i: Instance): string {
    const name = (i.tags.get('Name') ?? '').toLowerCase()
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.length > 50) return i.id
    // Two instances may carry one Name: the backing driver needs distinct host names.
    const taken = [...w.instances.values()].some((o) => o !== i && o.state !== 'terminated' && o.backingName === name)
    return taken ? `${name}-${i.id.slice(-6)}` : name
  }

  private boot(w: World, i: Instance): void {
    this.serially(i, async () => {
      if (i.state !== 'pending') return
      const {backing, backingOptions, backingContext} = this.opts
      try {
        let m: Machine
        if (i.backing && i.backingStopped && backing.start) m = await backing.start(i.backing, backingOptions, backingContext)
        else {
          const key = i.keyName ? w.keyPairs.get(i.keyName)?.publicKey : undefined
          const cluster = i.tags.get('belt:cluster')
          const clusterName = cluster && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(cluster) ? cluster : 'ec2-emulator'
          this.backingClusters.add(clusterName)
          i.backingName = this.backingName(w, i)
          const loginUser = this.images.find((x) => x.id === i.imageId)?.loginUser ?? 'root'
          // The local backing makes the image's login user as cloud-init does, root refused
          // (drivers/local's CLOUD_USER_OPTION).
          const options = loginUser === 'root' ? backingOptions : {...backingOptions, 'cloud-user': loginUser}
          m = await backing.create({name: i.backingName, cluster: {name: clusterName, sshPublicKey: key ?? ''}, options}, backingContext)
        }
        this.attach(i, m)
        i.backingStopped = false
      } catch (e) {
        i.state = 'terminated'
        i.stateReason = {code: 'Server.InternalError', message: 'Server.InternalError: Internal error on launch'}
        i.transitionReason = `Server.InternalError (${new Date().toISOString()})`
        this.opts.log(`${i.id}: launch failed, the backing ${backing.name} host could not be created: ${(e as Error).message}`)
        this.after(this.opts.terminatedRetentionMs, () => w.instances.delete(i.id))
        return
      }
      // Terminated or stopped while the backing host was being made: leave the state to that change.
      if (i.state !== 'pending') return
      i.state = 'running'
      i.stateReason = undefined
      this.opts.log(`${i.id}${i.tags.get('Name') ? ` (${i.tags.get('Name')})` : ''}: running at ${i.backing?.address}`)
    })
  }

  private stop(i: Instance, force: boolean): void {
    if (i.state === 'stopped' || i.state === 'stopping') return
    i.state = 'stopping'
    i.transitionReason = `User initiated (${new Date().toISOString()})`
    this.after(force ? Math.min(this.opts.stopDelayMs, 50) : this.opts.stopDelayMs, () =>
      this.serially(i, async () => {
        if (i.state !== 'stopping') return
        const {backing, backingOptions, backingContext} = this.opts
        if (i.backing) {
          const powerOff = force ? (backing.kill ?? backing.stop) : backing.stop
          if (powerOff && backing.start) {
            await powerOff.call(backing, i.backing, backingOptions, backingContext)
            i.backingStopped = true
          } else {
            // A backing driver without power control: the host goes and a new one comes on start.
            await backing.remove(i.backing, backingOptions, backingContext)
            i.backing = undefined
          }
        }
        // EC2 releases the public address of a stopped instance.
        i.publicIp = undefined
        i.state = 'stopped'
        i.stateReason = {code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown'}
        this.opts.log(`${i.id}: stopped`)
      }),
    )
  }

  private start(w: World, i: Instance): void {
    if (i.state !== 'stopped') return
    i.state = 'pending'
    i.stateReason = undefined
    i.transitionReason = ''
    this.after(this.opts.bootDelayMs, () => this.boot(w, i))
  }

  private terminate(w: World, i: Instance): void {
    if (i.state === 'terminated' || i.state === 'shutting-down') return
    i.state = 'shutting-down'
    i.transitionReason = `User initiated (${new Date().toISOString()})`
    this.after(this.opts.terminateDelayMs, () =>
      this.serially(i, async () => {
        const {backing, backingOptions, backingContext} = this.opts
        try {
          if (i.backing) await backing.remove(i.backing, backingOptions, backingContext)
        } finally {
          i.backing = undefined
          i.publicIp = undefined
          i.state = 'terminated'
          i.stateReason = {code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown'}
          w.subnets.get(i.subnetId)!.used--
          this.opts.log(`${i.id}: terminated`)
          this.after(this.opts.terminatedRetentionMs, () => w.instances.delete(i.id))
        }
      }),
    )
  }

  // ---------------------------------------------------------------- images

  private describeImages(p: Params): Record<string, unknown> {
    const ids = strList(p, 'ImageId')
    for (const id of ids) if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`)
    const missing = ids.filter((id) => !this.images.some((i) => i.id === id))
    if (missing.length) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`)
    const owners = strList(p, 'Owner').map((o) => (o === 'self' ? this.opts.accountId : o === 'amazon' ? AMAZON : o))
    const fs = filters(p)
    const images = this.images.filter(
      (i) =>
        (ids.length === 0 || ids.includes(i.id)) &&
        (owners.length === 0 || owners.includes(i.owner)) &&
        passes(fs, (n) => imageFilterValues(i, n), i.tags),
    )
    return {
      imagesSet: set(
        images.map((i) => ({
          imageId: i.id,
          imageLocation: `${i.owner}/${i.name}`,
          imageState: 'available',
          imageOwnerId: i.owner,
          creationDate: i.creationDate,
          isPublic: true,
          architecture: i.architecture,
          imageType: 'machine',
          name: i.name,
          description: i.description,
          rootDeviceType: 'ebs',
          rootDeviceName: i.rootDeviceName,
          blockDeviceMapping: set([{deviceName: i.rootDeviceName, ebs: {volumeSize: 8, volumeType: 'gp3', deleteOnTermination: true}}]),
          virtualizationType: 'hvm',
          hypervisor: 'xen',
          enaSupport: true,
          tagSet: tagSet(i.tags),
        })),
      ),
    }
  }

  // ---------------------------------------------------------------- key pairs

  private importKeyPair(w: World, p: Params): Record<string, unknown> {
    const name = required(p, 'KeyName')
    const material = Buffer.from(required(p, 'PublicKeyMaterial'), 'base64').toString('utf8')
    const key = parseOpenSshKey(material)
    if (!key || (key.type !== 'ssh-ed25519' && key.type !== 'ssh-rsa')) throw new Ec2Error('InvalidKey.Format', 'Key is not in valid OpenSSH public key format')
    if (w.keyPairs.has(name)) throw new Ec2Error('InvalidKeyPair.Duplicate', `The keypair already exists`)
    this.dryRun(p)
    const kp: KeyPair = {
      id: newId('key'),
      name,
      fingerprint: ec2ImportedFingerprint(key),
      publicKey: `${key.type} ${key.blob.toString('base64')}${key.comment ? ` ${key.comment}` : ''}`,
      type: key.type === 'ssh-rsa' ? 'rsa' : 'ed25519',
      createTime: new Date().toISOString(),
      tags: specTags(p, 'key-pair'),
    }
    w.keyPairs.set(name, kp)
    return {keyFingerprint: kp.fingerprint, keyName: kp.name, keyPairId: kp.id, tagSet: tagSet(kp.tags)}
  }

  /** EC2 answers success for a key pair that does not exist, and so does the emulator. */
  private deleteKeyPair(w: World, p: Params): Record<string, unknown> {
    const name = str(p, 'KeyName')
    const id = str(p, 'KeyPairId')
    if (!name && !id) throw new Ec2Error('MissingParameter', 'The request must contain the parameter KeyName or KeyPairId')
    this.dryRun(p)
    const kp = [...w.keyPairs.values()].find((k) => (name !== undefined && k.name === name) || (id !== undefined && k.id === id))
    if (kp) w.keyPairs.delete(kp.name)
    return {return: true, keyPairId: kp?.id}
  }

  private describeKeyPairs(w: World, p: Params): Record<string, unknown> {
    const names = strList(p, 'KeyName')
    const ids = strList(p, 'KeyPairId')
    for (const n of names) if (!w.keyPairs.has(n)) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${n}' does not exist`)
    for (const id of ids) if (![...w.keyPairs.values()].some((k) => k.id === id)) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${id}' does not exist`)
    const withKey = bool(p, 'IncludePublicKey') ?? false
    const fs = filters(p)
    const pairs = [...w.keyPairs.values()].filter(
      (k) =>
        (names.length === 0 || names.includes(k.name)) &&
        (ids.length === 0 || ids.includes(k.id)) &&
        passes(fs, (n) => ({'key-name': [k.name], 'key-pair-id': [k.id], fingerprint: [k.fingerprint], 'key-type': [k.type]})[n], k.tags),
    )
    return {
      keySet: set(
        pairs.map((k) => ({
          keyPairId: k.id,
          keyFingerprint: k.fingerprint,
          keyName: k.name,
          keyType: k.type,
          tagSet: tagSet(k.tags),
          publicKey: withKey ? k.publicKey : undefined,
          createTime: k.createTime,
        })),
      ),
    }
  }

  // ---------------------------------------------------------------- security groups

  private group(w: World, p: Params): Group {
    const id = str(p, 'GroupId')
    const name = str(p, 'GroupName')
    if (id) {
      const g = w.groups.get(id)
      if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`)
      return g
    }
    if (name) {
      const vpc = [...w.vpcs.values()].find((v) => v.isDefault)
      const g = [...w.groups.values()].find((x) => x.name === name && x.vpcId === vpc?.id)
      if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in default VPC '${vpc?.id}'`)
      return g
    }
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupName or groupId')
  }

  private createSecurityGroup(w: World, p: Params): Record<string, unknown> {
    const name = required(p, 'GroupName')
    const description = required(p, 'GroupDescription')
    if (name.startsWith('sg-')) throw new Ec2Error('InvalidParameterValue', "Group names may not be in the format sg-*")
    let vpcId = str(p, 'VpcId')
    if (vpcId) {
      if (!w.vpcs.has(vpcId)) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`)
    } else {
      vpcId = [...w.vpcs.values()].find((v) => v.isDefault)?.id
      if (!vpcId) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user')
    }
    if ([...w.groups.values()].some((g) => g.name === name && g.vpcId === vpcId))
      throw new Ec2Error('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`)
    this.dryRun(p)
    const g = newGroup(name, description, vpcId, specTags(p, 'security-group'))
    w.groups.set(g.id, g)
    return {return: true, groupId: g.id, tagSet: tagSet(g.tags)}
  }

  /** IpPermissions.N as single-source rules, validated. */
  private rules(w: World, p: Params): Rule[] {
    const out: Rule[] = []
    for (const perm of objList(p, 'IpPermissions')) {
      const protocol = PROTOCOLS[(str(perm, 'IpProtocol') ?? '').toLowerCase()]
      if (!protocol) throw new Ec2Error('InvalidParameterValue', `Invalid value '${str(perm, 'IpProtocol')}' for IP protocol. Unknown protocol.`)
      const from = protocol === '-1' ? undefined : int(perm, 'FromPort')
      const to = protocol === '-1' ? undefined : int(perm, 'ToPort')
      if (protocol === 'tcp' || protocol === 'udp') {
        if (from === undefined || to === undefined || from < 0 || to > 65535 || from > to)
          throw new Ec2Error('InvalidParameterValue', `Invalid port range ${from}-${to} for protocol ${protocol}`)
      }
      const ranges = objList(perm, 'IpRanges')
      const pairs = objList(perm, 'Groups')
      if (ranges.length + pairs.length === 0) throw new Ec2Error('MissingParameter', 'Either IP ranges or source groups must be specified')
      for (const r of ranges) {
        const cidr = str(r, 'CidrIp') ?? ''
        if (!parseCidr(cidr)) throw new Ec2Error('InvalidParameterValue', `CIDR block ${cidr} is malformed`)
        out.push({protocol, from, to, cidr, description: str(r, 'Description')})
      }
      for (const g of pairs) {
        const groupId = str(g, 'GroupId')
        if (!groupId || !w.groups.has(groupId)) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${groupId}' does not exist`)
        out.push({protocol, from, to, groupId, description: str(g, 'Description')})
      }
    }
    if (out.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter ipPermissions')
    return out
  }

  private authorizeIngress(w: World, p: Params): Record<string, unknown> {
    const g = this.group(w, p)
    const rules = this.rules(w, p)
    const same = (a: Rule, b: Rule) => a.protocol === b.protocol && a.from === b.from && a.to === b.to && a.cidr === b.cidr && a.groupId === b.groupId
    for (const r of rules) {
      if (g.ingress.some((x) => same(x, r)) || rules.filter((x) => same(x, r)).length > 1) {
        const peer = r.cidr ?? r.groupId
        const proto = r.protocol === '-1' ? 'ALL' : r.protocol.toUpperCase()
        throw new Ec2Error('InvalidPermission.Duplicate', `the specified rule "peer: ${peer}, ${proto}, from port: ${r.from ?? -1}, to port: ${r.to ?? -1}, ALLOW" already exists`)
      }
    }
    this.dryRun(p)
    g.ingress.push(...rules)
    return {
      return: true,
      securityGroupRuleSet: set(
        rules.map((r) => ({
          securityGroupRuleId: newId('sgr'),
          groupId: g.id,
          groupOwnerId: this.opts.accountId,
          isEgress: false,
          ipProtocol: r.protocol,
          fromPort: r.from ?? -1,
          toPort: r.to ?? -1,
          cidrIpv4: r.cidr,
          referencedGroupInfo: r.groupId ? {groupId: r.groupId, userId: this.opts.accountId} : undefined,
          description: r.description,
        })),
      ),
    }
  }

  /**
   * Removes ingress rules matched by protocol, ports and source (descriptions aside). As EC2 does
   * since 2021, a rule that is not there fails the call with InvalidPermission.NotFound only when
   * none of the given rules matched.
   */
  private revokeIngress(w: World, p: Params): Record<string, unknown> {
    const g = this.group(w, p)
    const rules = this.rules(w, p)
    const same = (a: Rule, b: Rule) => a.protocol === b.protocol && a.from === b.from && a.to === b.to && a.cidr === b.cidr && a.groupId === b.groupId
    const unknown = rules.filter((r) => !g.ingress.some((x) => same(x, r)))
    if (unknown.length === rules.length)
      throw new Ec2Error('InvalidPermission.NotFound', `The specified rule does not exist in this security group.`)
    this.dryRun(p)
    const kept = g.ingress.filter((x) => !rules.some((r) => same(x, r)))
    g.ingress.splice(0, g.ingress.length, ...kept)
    return {return: true, ...(unknown.length > 0 ? {unknownIpPermissionSet: this.permissionsView(unknown)} : {})}
  }

  private permissionsView(rules: readonly Rule[]): {item: object[]} | '' {
    const byPort = new Map<string, Rule[]>()
    for (const r of rules) {
      const k = `${r.protocol}|${r.from}|${r.to}`
      byPort.set(k, [...(byPort.get(k) ?? []), r])
    }
    return set(
      [...byPort.values()].map((rs) => ({
        ipProtocol: rs[0]!.protocol,
        fromPort: rs[0]!.from,
        toPort: rs[0]!.to,
        groups: set(rs.filter((r) => r.groupId).map((r) => ({userId: this.opts.accountId, groupId: r.groupId, description: r.description}))),
        ipRanges: set(rs.filter((r) => r.cidr).map((r) => ({cidrIp: r.cidr, description: r.description}))),
        ipv6Ranges: '',
        prefixListIds: '',
      })),
    )
  }

  private describeSecurityGroups(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'GroupId')
    const names = strList(p, 'GroupName')
    for (const id of ids) if (!w.groups.has(id)) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`)
    for (const n of names)
      if (![...w.groups.values()].some((g) => g.name === n)) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${n}' does not exist in default VPC`)
    const fs = filters(p)
    const groups = [...w.groups.values()].filter(
      (g) =>
        (ids.length === 0 || ids.includes(g.id)) &&
        (names.length === 0 || names.includes(g.name)) &&
        passes(fs, (n) => groupFilterValues(g, n), g.tags),
    )
    const {page, nextToken} = paginate(groups, p, undefined, this.opts.maxPageSize)
    return {
      securityGroupInfo: set(
        page.map((g) => ({
          ownerId: this.opts.accountId,
          groupId: g.id,
          groupName: g.name,
          groupDescription: g.description,
          vpcId: g.vpcId,
          ipPermissions: this.permissionsView(g.ingress),
          ipPermissionsEgress: this.permissionsView(g.egress),
          tagSet: tagSet(g.tags),
        })),
      ),
      nextToken,
    }
  }

  private deleteSecurityGroup(w: World, p: Params): Record<string, unknown> {
    const g = this.group(w, p)
    if (g.name === 'default') throw new Ec2Error('CannotDelete', `the specified group: "${g.id}" name: "default" cannot be deleted by a user`)
    // Instances hold their groups until they are terminated, shutting-down ones included.
    const user = [...w.instances.values()].find((i) => i.state !== 'terminated' && i.groupIds.includes(g.id))
    const referrer = [...w.groups.values()].find((o) => o !== g && [...o.ingress, ...o.egress].some((r) => r.groupId === g.id))
    if (user || referrer) throw new Ec2Error('DependencyViolation', `resource ${g.id} has a dependent object`)
    this.dryRun(p)
    w.groups.delete(g.id)
    return {return: true, groupId: g.id}
  }

  // ---------------------------------------------------------------- tags, network, regions

  private createTags(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'ResourceId')
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter ResourceId')
    const tags = objList(p, 'Tag').map((t) => [str(t, 'Key') ?? '', str(t, 'Value') ?? ''] as const)
    if (tags.some(([k]) => !k || k.startsWith('aws:'))) throw new Ec2Error('InvalidParameterValue', 'Tag keys must be non-empty and may not start with aws:')
    const targets = ids.map((id): Map<string, string> => {
      if (id.startsWith('i-')) return this.instancesById(w, [id])[0]!.tags
      if (id.startsWith('sg-')) {
        const g = w.groups.get(id)
        if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`)
        return g.tags
      }
      if (id.startsWith('key-')) {
        const k = [...w.keyPairs.values()].find((x) => x.id === id)
        if (!k) throw new Ec2Error('InvalidKeyPairId.NotFound', `The key pair ID '${id}' does not exist`)
        return k.tags
      }
      if (id.startsWith('vpc-')) {
        const v = w.vpcs.get(id)
        if (!v) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`)
        return v.tags
      }
      if (id.startsWith('subnet-')) {
        const s = w.subnets.get(id)
        if (!s) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`)
        return s.tags
      }
      throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`)
    })
    this.dryRun(p)
    for (const t of targets) for (const [k, v] of tags) t.set(k, v)
    return {return: true}
  }

  private describeVpcs(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'VpcId')
    for (const id of ids) if (!w.vpcs.has(id)) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`)
    const fs = filters(p)
    const vpcs = [...w.vpcs.values()].filter(
      (v) =>
        (ids.length === 0 || ids.includes(v.id)) &&
        passes(fs, (n) => ({'vpc-id': [v.id], 'is-default': [String(v.isDefault)], cidr: [v.cidr], 'cidr-block-association.cidr-block': [v.cidr], state: ['available'], 'owner-id': [this.opts.accountId]})[n], v.tags),
    )
    return {
      vpcSet: set(
        vpcs.map((v) => ({
          vpcId: v.id,
          ownerId: this.opts.accountId,
          state: 'available',
          cidrBlock: v.cidr,
          dhcpOptionsId: stableId('dopt', v.id),
          instanceTenancy: 'default',
          isDefault: v.isDefault,
          tagSet: tagSet(v.tags),
        })),
      ),
    }
  }

  private describeSubnets(w: World, p: Params): Record<string, unknown> {
    const ids = strList(p, 'SubnetId')
    for (const id of ids) if (!w.subnets.has(id)) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`)
    const fs = filters(p)
    const subnets = [...w.subnets.values()].filter(
      (s) =>
        (ids.length === 0 || ids.includes(s.id)) &&
        passes(
          fs,
          (n) =>
            ({
              'subnet-id': [s.id],
              'vpc-id': [s.vpcId],
              'availability-zone': [s.az],
              'default-for-az': [String(s.defaultForAz)],
              'map-public-ip-on-launch': [String(s.mapPublicIp)],
              'cidr-block': [s.cidr],
              state: ['available'],
            })[n],
          s.tags,
        ),
    )
    return {
      subnetSet: set(
        subnets.map((s) => ({
          subnetId: s.id,
          state: 'available',
          vpcId: s.vpcId,
          cidrBlock: s.cidr,
          availableIpAddressCount: Math.max(0, 2 ** (32 - (parseCidr(s.cidr)?.bits ?? 20)) - 5 - s.used),
          availabilityZone: s.az,
          defaultForAz: s.defaultForAz,
          mapPublicIpOnLaunch: s.mapPublicIp,
          ownerId: this.opts.accountId,
          tagSet: tagSet(s.tags),
        })),
      ),
    }
  }

  private describeRegions(p: Params): Record<string, unknown> {
    const names = strList(p, 'RegionName')
    for (const n of names) if (!this.opts.regions.includes(n)) throw new Ec2Error('InvalidParameterValue', `Invalid region: ${n}`)
    const fs = filters(p)
    const regions = this.opts.regions.filter((r) => (names.length === 0 || names.includes(r)) && passes(fs, (n) => ({'region-name': [r], endpoint: [`ec2.${r}.amazonaws.com`]})[n], new Map()))
    return {regionInfo: set(regions.map((r) => ({regionName: r, regionEndpoint: `ec2.${r}.amazonaws.com`, optInStatus: 'opt-in-not-required'})))}
  }

  // ---------------------------------------------------------------- lifetime

  /** Instances that exist and are not terminated, in every region (for logs and tests of the emulator itself). */
  liveInstances(): number {
    let n = 0
    for (const w of this.worlds.values()) for (const i of w.instances.values()) if (i.state !== 'terminated') n++
    return n
  }

  /**
   * Stops the clock and removes every backing host (bounded concurrency), then the backing
   * clusters. The emulated cloud is gone afterwards.
   */
  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    const {backing, backingOptions, backingContext} = this.opts
    const all = [...this.worlds.values()].flatMap((w) => [...w.instances.values()])
    const queue = [...all]
    const worker = async () => {
      for (let i = queue.shift(); i; i = queue.shift()) {
        const inst = i
        await inst.op.catch(() => undefined)
        if (inst.backing) await backing.remove(inst.backing, backingOptions, backingContext).catch((e: unknown) => this.opts.log(`${inst.id}: backing remove failed: ${(e as Error).message}`))
        inst.backing = undefined
        inst.state = 'terminated'
      }
    }
    await Promise.all(Array.from({length: 8}, worker))
    for (const c of this.backingClusters) await backing.removeCluster?.(c, backingOptions, backingContext).catch(() => undefined)
  }
}

function imageFilterValues(i: Image, name: string): readonly string[] | undefined {
  switch (name) {
    case 'name':
      return [i.name]
    case 'image-id':
      return [i.id]
    case 'owner-id':
      return [i.owner]
    case 'state':
      return ['available']
    case 'architecture':
      return [i.architecture]
    case 'root-device-type':
      return ['ebs']
    case 'virtualization-type':
      return ['hvm']
    case 'is-public':
      return ['true']
    case 'description':
      return [i.description]
    default:
      return undefined
  }
}

function groupFilterValues(g: Group, name: string): readonly string[] | undefined {
  switch (name) {
    case 'group-id':
      return [g.id]
    case 'group-name':
      return [g.name]
    case 'vpc-id':
      return [g.vpcId]
    case 'description':
      return [g.description]
    default:
      return undefined
  }
}

function newGroup(name: string, description: string, vpcId: string, tags: Map<string, string>): Group {
  return {id: newId('sg'), name, description, vpcId, tags, ingress: [], egress: [{protocol: '-1', cidr: '0.0.0.0/0'}]}
}

/** A region as a new AWS account has it: a default VPC with one default subnet per zone and its default group. */
function newWorld(region: string, vpcCidr: string, accountId: string): World {
  const azs = ['a', 'b', 'c'].map((z) => `${region}${z}`)
  const vpc: Vpc = {id: stableId('vpc', `${accountId}/${region}/default`), cidr: vpcCidr, isDefault: true, tags: new Map()}
  const c = parseCidr(vpcCidr)
  if (!c) throw new Error(`emulator: bad VPC CIDR ${vpcCidr}`)
  const bits = Math.min(28, c.bits + 4)
  const subnets = new Map<string, Subnet>()
  azs.forEach((az, n) => {
    const base = (c.base + n * 2 ** (32 - bits)) >>> 0
    const s: Subnet = {id: stableId('subnet', `${vpc.id}/${az}`), vpcId: vpc.id, cidr: `${intToIp(base)}/${bits}`, az, defaultForAz: true, mapPublicIp: true, tags: new Map(), used: 0}
    subnets.set(s.id, s)
  })
  const def = newGroup('default', 'default VPC security group', vpc.id, new Map())
  // The default group lets its members talk to each other, as on AWS.
  def.ingress.push({protocol: '-1', groupId: def.id})
  return {
    region,
    azs,
    vpcs: new Map([[vpc.id, vpc]]),
    subnets,
    groups: new Map([[def.id, def]]),
    keyPairs: new Map(),
    instances: new Map(),
    tokens: new Map(),
  }
}

/**
 * Images like the public ones, same names and owners: several Ubuntu 24.04 builds (the newest must
 * win), an arm64 one, older Ubuntu and a Pro image the driver's pattern must not pick, and Amazon
 * Linux. Their login users are EC2's (ubuntu, ec2-user) unless `override` names another; each
 * also says it in a `belt:ssh-user` tag, which real images do not have.
 */
function catalogue(override: string | undefined, backingName: string): Image[] {
  const userOf = (owner: string) => override ?? (owner === AMAZON ? 'ec2-user' : 'ubuntu')
  const ubuntu = (name: string, date: string, architecture: 'x86_64' | 'arm64', version: string, codename: string): [string, string, 'x86_64' | 'arm64', string, string] => [
    name,
    date,
    architecture,
    `Canonical, Ubuntu, ${version} LTS, ${architecture === 'arm64' ? 'arm64' : 'amd64'} ${codename} image (Belt EC2 emulator: a ${backingName} host; log in as ${userOf(CANONICAL)})`,
    CANONICAL,
  ]
  const rows: Array<[string, string, 'x86_64' | 'arm64', string, string]> = [
    ubuntu('ubuntu/images/hvm-ssd/ubuntu-noble-24.04-amd64-server-20240423', '2024-04-23T10:11:12.000Z', 'x86_64', '24.04', 'noble'),
    ubuntu('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250305', '2025-03-05T09:00:00.000Z', 'x86_64', '24.04', 'noble'),
    ubuntu('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251015', '2025-10-15T08:30:00.000Z', 'x86_64', '24.04', 'noble'),
    ubuntu('ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251015', '2025-10-15T08:31:00.000Z', 'arm64', '24.04', 'noble'),
    ubuntu('ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20251101', '2025-11-01T07:00:00.000Z', 'x86_64', '22.04', 'jammy'),
    ubuntu('ubuntu-pro-server/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-pro-server-20251101', '2025-11-01T07:30:00.000Z', 'x86_64', '24.04', 'noble'),
    ['al2023-ami-2023.9.20251020.0-kernel-6.1-x86_64', '2025-10-20T12:00:00.000Z', 'x86_64', `Amazon Linux 2023 AMI (Belt EC2 emulator: a ${backingName} host; log in as ${userOf(AMAZON)})`, AMAZON],
  ]
  return rows.map(([name, creationDate, architecture, description, owner]) => ({
    id: stableId('ami', name),
    name,
    owner,
    description,
    architecture,
    creationDate,
    rootDeviceName: owner === AMAZON ? '/dev/xvda' : '/dev/sda1',
    loginUser: userOf(owner),
    tags: new Map([['belt:ssh-user', userOf(owner)]]),
  }))
}
