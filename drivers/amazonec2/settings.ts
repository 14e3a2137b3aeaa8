import path from 'node:path'
import {UserError, ExitCode} from '../../src/errors.js'
import type {DriverOptions} from '../driver.js'
import {ANYWHERE} from './options.js'

/** The driver's options, parsed and validated once per call. Contains no secret. */
export interface Ec2Settings {
  readonly region: string
  readonly endpoint?: string
  readonly profile?: string
  readonly instanceType: string
  readonly ami?: string
  readonly vpcId?: string
  readonly subnetId?: string
  /** GB; undefined keeps the image's own size. */
  readonly rootSize?: number
  readonly spot: boolean
  readonly sshUser: string
  readonly adminCidrs: readonly string[]
  /** x86_64 or arm64, from the instance type. */
  readonly architecture: 'x86_64' | 'arm64'
  /** Full availability zone name (`us-east-1a`), from `--amazonec2-zone`. */
  readonly zone?: string
  readonly volumeType: string
  /** Extra security groups, by name or sg- id. */
  readonly securityGroups: readonly string[]
  /** `{Arn}` or `{Name}`. */
  readonly iamInstanceProfile?: {readonly Arn: string} | {readonly Name: string}
  readonly privateAddressOnly: boolean
  readonly usePrivateAddress: boolean
  /** Extra tags, in order; never `Name` or `belt:*`. */
  readonly tags: readonly {readonly Key: string; readonly Value: string}[]
  readonly userDataPath?: string
  readonly keypairName?: string
  /** Absolute path of the private key Belt logs in with (with `keypairName`). */
  readonly sshKeyPath?: string
  readonly monitoring: boolean
}

/** EBS volume types a root volume may have. */
export const VOLUME_TYPES = ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const

/** EC2's limit on user data (before base64). */
export const USERDATA_MAX_BYTES = 16 * 1024

/**
 * `--amazonec2-tags`: Docker Machine's `k1,v1,k2,v2`, or `k1=v1,k2=v2`. Keys Belt sets itself
 * (`Name`, `belt:*`) and `aws:*` are refused.
 */
export function parseTags(value: string | undefined): {Key: string; Value: string}[] {
  const raw = (value ?? '').trim()
  if (!raw) return []
  const items = raw.split(',').map((x) => x.trim())
  let pairs: [string, string][]
  if (items.every((x) => x.includes('='))) pairs = items.map((x) => [x.slice(0, x.indexOf('=')).trim(), x.slice(x.indexOf('=') + 1).trim()])
  else if (items.some((x) => x.includes('=')) || items.length % 2 !== 0)
    throw usage(`--amazonec2-tags '${value}' is neither key1,value1,key2,value2 nor key1=value1,key2=value2`, 'E_OPTION_INVALID', 'e.g. team,web,env,prod or team=web,env=prod')
  else pairs = Array.from({length: items.length / 2}, (_, i) => [items[2 * i]!, items[2 * i + 1]!])
  const out: {Key: string; Value: string}[] = []
  for (const [Key, Value] of pairs) {
    if (!Key || Key.length > 128 || Value.length > 256) throw usage(`--amazonec2-tags: '${Key}' is not a tag key of 1 to 128 characters with a value of at most 256`, 'E_OPTION_INVALID')
    if (Key === 'Name' || Key.startsWith('belt:') || Key.toLowerCase().startsWith('aws:'))
      throw usage(`--amazonec2-tags: the key ${Key} is reserved (Belt sets Name and belt:*, AWS owns aws:*)`, 'E_OPTION_INVALID')
    if (out.some((t) => t.Key === Key)) throw usage(`--amazonec2-tags: the key ${Key} is given twice`, 'E_OPTION_INVALID')
    out.push({Key, Value})
  }
  return out
}

const usage = (message: string, code: string, hint?: string) => new UserError(message, {code, hint, exit: ExitCode.usage})

const TRUE = new Set(['true', '1', 'yes', 'on', 'y'])
const FALSE = new Set(['false', '0', 'no', 'off', 'n', ''])

/** `true`/`yes`/`1`/`on` and their opposites, case-insensitive. */
export function parseBooleanish(value: string | undefined, flag: string): boolean {
  const v = (value ?? '').trim().toLowerCase()
  if (TRUE.has(v)) return true
  if (FALSE.has(v)) return false
  throw usage(`--${flag} must be true or false, not '${value}'`, 'E_OPTION_INVALID')
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/

/** Validates an IPv4 CIDR such as 203.0.113.7/32 (host bits must be zero, as EC2 requires). */
export function parseCidr(value: string): {base: number; bits: number} | undefined {
  const m = CIDR.exec(value.trim())
  if (!m) return undefined
  const octets = m.slice(1, 5).map(Number)
  const bits = Number(m[5])
  if (octets.some((o) => o > 255) || bits > 32) return undefined
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  if ((base & mask) >>> 0 !== base) return undefined
  return {base, bits}
}

/**
 * Graviton (arm64) instance families: a1, and families whose generation digit is followed by `g`
 * (t4g, m6g, c7gn, r8g, ...). Everything else is x86_64.
 */
export function architectureOf(instanceType: string): 'x86_64' | 'arm64' {
  const family = instanceType.split('.')[0] ?? ''
  return family === 'a1' || /^[a-z]+\d+g[a-z]*$/.test(family) ? 'arm64' : 'x86_64'
}

/** Options -> settings, or a usage UserError naming the flag. `env` supplies AWS_REGION. */
export function parseSettings(options: DriverOptions, env: NodeJS.ProcessEnv = process.env): Ec2Settings {
  const region = (options.region || env.AWS_REGION || 'us-east-1').trim()
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    throw usage(`--amazonec2-region '${region}' is not an AWS region name`, 'E_AWS_REGION', 'use a name such as us-east-1 or eu-west-3')

  let endpoint = options.endpoint?.trim() || undefined
  if (endpoint) {
    let url: URL
    try {
      url = new URL(endpoint)
    } catch {
      throw usage(`--amazonec2-endpoint '${endpoint}' is not a URL`, 'E_OPTION_INVALID', 'e.g. http://127.0.0.1:8773 for belt emulator ec2')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw usage(`--amazonec2-endpoint must be an http or https URL, not '${endpoint}'`, 'E_OPTION_INVALID')
    endpoint = url.toString().replace(/\/$/, '')
  }

  const instanceType = (options['instance-type'] || 't3.small').trim()
  if (!/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/.test(instanceType))
    throw usage(`--amazonec2-instance-type '${instanceType}' is not an instance type`, 'E_OPTION_INVALID', 'e.g. t3.small')

  const ami = options.ami?.trim() || undefined
  if (ami && !/^ami-[0-9a-f]{8,17}$/.test(ami)) throw usage(`--amazonec2-ami '${ami}' is not an image id`, 'E_OPTION_INVALID', 'image ids look like ami-0abcdef1234567890')
  const vpcId = options['vpc-id']?.trim() || undefined
  if (vpcId && !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) throw usage(`--amazonec2-vpc-id '${vpcId}' is not a VPC id`, 'E_OPTION_INVALID', 'VPC ids look like vpc-0abc1234')
  const subnetId = options['subnet-id']?.trim() || undefined
  if (subnetId && !/^subnet-[0-9a-f]{8,17}$/.test(subnetId))
    throw usage(`--amazonec2-subnet-id '${subnetId}' is not a subnet id`, 'E_OPTION_INVALID', 'subnet ids look like subnet-0abc1234')

  let rootSize: number | undefined
  const rs = options['root-size']?.trim()
  if (rs) {
    rootSize = Number(rs)
    if (!Number.isInteger(rootSize) || rootSize < 8 || rootSize > 16_384)
      throw usage(`--amazonec2-root-size must be a whole number of GB between 8 and 16384, not '${rs}'`, 'E_OPTION_INVALID')
  }

  const sshUser = (options['ssh-user'] || 'ubuntu').trim()
  if (!/^[a-z_][a-z0-9_-]*$/.test(sshUser)) throw usage(`--amazonec2-ssh-user '${sshUser}' is not a user name`, 'E_OPTION_INVALID')

  const adminCidrs = (options['admin-cidr'] || ANYWHERE)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const c of adminCidrs)
    if (!parseCidr(c)) throw usage(`--amazonec2-admin-cidr '${c}' is not an IPv4 CIDR with zero host bits`, 'E_OPTION_INVALID', 'e.g. 203.0.113.7/32 or 198.51.100.0/24')

  const zoneRaw = options.zone?.trim().toLowerCase() || undefined
  let zone: string | undefined
  if (zoneRaw) {
    if (/^[a-z]$/.test(zoneRaw)) zone = `${region}${zoneRaw}`
    else if (zoneRaw.startsWith(region) && /^[a-z]$/.test(zoneRaw.slice(region.length))) zone = zoneRaw
    else throw usage(`--amazonec2-zone '${options.zone}' is not a zone of ${region}`, 'E_OPTION_INVALID', `a letter (a, b, c ...) or a full name such as ${region}a`)
  }
  const volumeType = (options['volume-type'] || 'gp3').trim()
  if (!(VOLUME_TYPES as readonly string[]).includes(volumeType))
    throw usage(`--amazonec2-volume-type '${volumeType}' is not an EBS volume type`, 'E_OPTION_INVALID', `one of ${VOLUME_TYPES.join(', ')}`)
  const securityGroups = [...new Set((options['security-group'] ?? '').split(',').map((x) => x.trim()).filter(Boolean))]
  for (const g of securityGroups)
    if (!/^sg-[0-9a-f]{8,17}$/.test(g) && (g.startsWith('sg-') || !/^[\x20-\x7e]{1,255}$/.test(g)))
      throw usage(`--amazonec2-security-group '${g}' is neither a security group id (sg-...) nor a group name`, 'E_OPTION_INVALID')
  const profile = options['iam-instance-profile']?.trim() || undefined
  let iamInstanceProfile: Ec2Settings['iamInstanceProfile']
  if (profile) {
    if (/^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]+$/.test(profile)) iamInstanceProfile = {Arn: profile}
    else if (/^[\w+=,.@-]{1,128}$/.test(profile)) iamInstanceProfile = {Name: profile}
    else throw usage(`--amazonec2-iam-instance-profile '${profile}' is neither an instance profile name nor its ARN`, 'E_OPTION_INVALID', 'e.g. my-profile or arn:aws:iam::123456789012:instance-profile/my-profile')
  }
  const privateAddressOnly = parseBooleanish(options['private-address-only'], 'amazonec2-private-address-only')
  const usePrivateAddress = parseBooleanish(options['use-private-address'], 'amazonec2-use-private-address')
  const keypairName = options['keypair-name']?.trim() || undefined
  const keyPathRaw = options['ssh-keypath']?.trim() || undefined
  if (keypairName && !/^[\x20-\x7e]{1,255}$/.test(keypairName)) throw usage(`--amazonec2-keypair-name '${keypairName}' is not a key pair name`, 'E_OPTION_INVALID')
  if (keypairName && !keyPathRaw)
    throw usage('--amazonec2-keypair-name needs --amazonec2-ssh-keypath: the private key of that key pair, which Belt logs in with', 'E_OPTION_INVALID')
  if (keyPathRaw && !keypairName)
    throw usage('--amazonec2-ssh-keypath needs --amazonec2-keypair-name: the key pair it belongs to', 'E_OPTION_INVALID', 'without both, Belt makes and imports its own cluster key')

  return {
    region,
    endpoint,
    ...(zone ? {zone} : {}),
    volumeType,
    securityGroups,
    ...(iamInstanceProfile ? {iamInstanceProfile} : {}),
    privateAddressOnly,
    usePrivateAddress,
    tags: parseTags(options.tags),
    ...(options.userdata?.trim() ? {userDataPath: options.userdata.trim()} : {}),
    ...(keypairName ? {keypairName, sshKeyPath: path.resolve(keyPathRaw!)} : {}),
    monitoring: parseBooleanish(options.monitoring, 'amazonec2-monitoring'),
    profile: options.profile?.trim() || undefined,
    instanceType,
    ami,
    vpcId,
    subnetId,
    rootSize,
    spot: parseBooleanish(options.spot, 'amazonec2-spot'),
    sshUser,
    adminCidrs: [...new Set(adminCidrs)],
    architecture: architectureOf(instanceType),
  }
}
