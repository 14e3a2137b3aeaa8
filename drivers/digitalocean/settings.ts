import {promises as fs} from 'node:fs'
import {ExitCode, UserError, usageError} from '../../src/errors.js'
import type {DriverOptions} from '../driver.js'
import {parseCidrs} from './cluster.js'
import {DO_DEFAULTS} from './options.js'

/** The driver's options, parsed and checked. Holds the token: never log or persist it. */
export interface DoSettings {
  readonly token: string
  readonly apiUrl: string
  readonly region: string
  readonly size: string
  readonly image: string
  readonly sshUser: string
  readonly privateNetworking: boolean
  readonly vpcUuid?: string
  readonly adminCidrs: readonly string[]
  readonly userDataPath?: string
  readonly tags: readonly string[]
  readonly ipv6: boolean
  readonly monitoring: boolean
  readonly backups: boolean
  /** `--digitalocean-ssh-key-fingerprint`: an account key added to every droplet (MD5 fingerprint, or a numeric id). */
  readonly sshKeyFingerprint?: string
  /** `--digitalocean-active-timeout` in ms, when given (the driver's default otherwise). */
  readonly activeTimeoutMs?: number
}

/** DigitalOcean's limit on user data. */
export const USER_DATA_MAX_BYTES = 64 * 1024

const TAG = /^[a-zA-Z0-9_\-:]+$/
const FINGERPRINT = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const bad = (flag: string, message: string, hint?: string) => usageError(`--digitalocean-${flag}: ${message}`, 'E_DO_OPTION', hint)

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/** Parses option values; rejects with a UserError naming the flag. Makes no request. */
export function parseSettings(options: DriverOptions): DoSettings {
  const token = options['access-token']?.trim()
  if (!token) throw usageError('missing --digitalocean-access-token (or DIGITALOCEAN_ACCESS_TOKEN)', 'E_MISSING_OPTION', 'create a token with read and write scope at https://cloud.digitalocean.com/account/api/tokens')
  const apiUrl = (options['api-url'] ?? DO_DEFAULTS.apiUrl).trim()
  let url: URL
  try {
    url = new URL(apiUrl)
  } catch {
    throw bad('api-url', `'${apiUrl}' is not a URL`)
  }
  // The token travels in a header: never in clear text beyond this machine.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname)))
    throw bad('api-url', `${url.origin} would receive the token unencrypted`, 'use https://, or http:// only for an emulator on 127.0.0.1')
  const region = (options.region ?? DO_DEFAULTS.region).trim()
  const size = (options.size ?? DO_DEFAULTS.size).trim()
  const image = (options.image ?? DO_DEFAULTS.image).trim()
  if (!region) throw bad('region', 'empty')
  if (!size) throw bad('size', 'empty')
  if (!image) throw bad('image', 'empty')
  const sshUser = (options['ssh-user'] ?? DO_DEFAULTS.sshUser).trim()
  if (!/^[a-z_][a-z0-9_-]*$/.test(sshUser)) throw bad('ssh-user', `'${sshUser}' is not a user name`)
  const pn = (options['private-networking'] ?? 'true').trim().toLowerCase()
  if (pn !== 'true' && pn !== 'false') throw bad('private-networking', `'${pn}' is neither true nor false`)
  const vpcUuid = options['vpc-uuid']?.trim() || undefined
  if (vpcUuid && !UUID.test(vpcUuid)) throw bad('vpc-uuid', `'${vpcUuid}' is not a UUID`)
  const cidrs = parseCidrs(options['admin-cidr'] ?? DO_DEFAULTS.adminCidr)
  if (typeof cidrs === 'string') throw bad('admin-cidr', cidrs, 'e.g. 203.0.113.7/32 or 0.0.0.0/0,::/0')
  const tags = (options.tags ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  for (const t of tags) if (!TAG.test(t) || t.length > 255) throw bad('tags', `'${t}' is not a tag (letters, digits, _ - :)`)
  const flag = (name: string): boolean => {
    const v = (options[name] ?? 'false').trim().toLowerCase()
    if (v !== 'true' && v !== 'false') throw bad(name, `'${options[name]}' is neither true nor false`)
    return v === 'true'
  }
  const ipv6 = flag('ipv6')
  const monitoring = flag('monitoring')
  const backups = flag('backups')
  const fp = options['ssh-key-fingerprint']?.trim().toLowerCase() || undefined
  if (fp && !FINGERPRINT.test(fp) && !/^[1-9]\d{0,15}$/.test(fp))
    throw bad('ssh-key-fingerprint', `'${options['ssh-key-fingerprint']}' is not an MD5 key fingerprint or a key id`, 'e.g. 3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa (doctl compute ssh-key list)')
  const at = options['active-timeout']?.trim()
  if (at !== undefined && at !== '' && !(/^[0-9]+$/.test(at) && Number(at) >= 1 && Number(at) <= 3600)) throw bad('active-timeout', `'${at}' is not a whole number of seconds from 1 to 3600`)
  return {
    ...(at ? {activeTimeoutMs: Number(at) * 1000} : {}),
    token,
    apiUrl,
    region,
    size,
    image,
    sshUser,
    privateNetworking: pn === 'true',
    vpcUuid,
    adminCidrs: cidrs,
    userDataPath: options['user-data']?.trim() || undefined,
    tags,
    ipv6,
    monitoring,
    backups,
    ...(fp ? {sshKeyFingerprint: fp} : {}),
  }
}

/** The user-data file's text; a UserError when it is missing, unreadable or too large. */
export async function readUserData(path: string): Promise<string> {
  let text: string
  try {
    text = await fs.readFile(path, 'utf8')
  } catch (e) {
    throw new UserError(`--digitalocean-user-data: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {code: 'E_DO_OPTION', exit: ExitCode.usage, cause: e})
  }
  if (Buffer.byteLength(text) > USER_DATA_MAX_BYTES) throw bad('user-data', `${path} is ${Buffer.byteLength(text)} bytes; DigitalOcean accepts at most 64 KiB`)
  return text
}

/** The image as the API wants it: a number for a numeric id, else the slug. */
export const imageRef = (image: string): string | number => (/^\d+$/.test(image) ? Number(image) : image)
