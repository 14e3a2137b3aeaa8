/**
 * Opt-in smoke test against the REAL DigitalOcean API: skipped unless DIGITALOCEAN_ACCESS_TOKEN is
 * set AND BELT_REAL_CLOUD=1. It runs the conformance suite, which creates two s-1vcpu-1gb droplets
 * (plus a key and a firewall) for a few minutes and removes everything (about US$0.02).
 */
import {generateKeyPairSync} from 'node:crypto'
import {describe} from 'vitest'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {createDigitalOceanDriver} from '../../drivers/digitalocean/index.js'
import {describeDriverConformance} from '../../drivers/testing/conformance.js'

const token = process.env.DIGITALOCEAN_ACCESS_TOKEN
const enabled = Boolean(token) && process.env.BELT_REAL_CLOUD === '1'

function sshPublicKey(): string {
  const raw = generateKeyPairSync('ed25519').publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} belt-smoke`
}

describe.runIf(enabled)('digitalocean on the real API (BELT_REAL_CLOUD=1)', () => {
  const suffix = Date.now().toString(36)
  const options = {
    'access-token': token,
    'api-url': process.env.DIGITALOCEAN_API_URL ?? 'https://api.digitalocean.com',
    region: process.env.DIGITALOCEAN_REGION ?? 'nyc3',
    size: 's-1vcpu-1gb',
    image: 'ubuntu-24-04-x64',
    'private-networking': 'true',
    'admin-cidr': process.env.DIGITALOCEAN_ADMIN_CIDR ?? '0.0.0.0/0,::/0',
  }
  const cluster = {name: `smoke-${suffix}`, sshPublicKey: sshPublicKey()}
  describeDriverConformance({
    name: 'digitalocean (real API)',
    makeDriver: () => createDigitalOceanDriver(),
    options,
    context: memoryContext((m) => process.stderr.write(`${m}\n`)),
    cluster,
    hostNames: [`belt-smoke-${suffix}-a`, `belt-smoke-${suffix}-b`],
    listResources: async () => {
      // Only this run's resources: droplets with its cluster tag, its firewall and key, by name.
      const {sharedClient} = await import('../../drivers/digitalocean/client.js')
      const c = sharedClient({apiUrl: options['api-url'], token: token!})
      const droplets = await c.listAll<{name: string}>('/v2/droplets', 'droplets', {tag_name: `belt-cluster-${cluster.name}`})
      const firewalls = (await c.listAll<{name: string}>('/v2/firewalls', 'firewalls')).filter((f) => f.name === `belt-${cluster.name}`)
      return [...droplets.map((d) => `droplet:${d.name}`), ...firewalls.map((f) => `firewall:${f.name}`)].sort()
    },
    missingMachine: () => ({id: '1', address: '192.0.2.1', ssh: {user: 'root', port: 22}, data: {dropletId: 1}}),
    secrets: [token ?? 'unset'],
  })
})
