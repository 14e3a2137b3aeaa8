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

  return {
    region,
    endpoint,
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
