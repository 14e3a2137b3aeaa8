import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt} from '../helpers/cli.js'
import {startEmulator, type RunningEmulator} from '../helpers/emulator.js'

// Issue 9, seen #9: the retry line of a partial failure dropped --cluster, the driver's options and
// the --engine-* flags; run as printed it would have targeted the default region and size.
const TOKEN = 'dop_v1_retry_line_token'
let tmp: string
let emulator: RunningEmulator
let apiUrl: string

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-retry-'))
  // An account that may have one droplet: a batch of two fails with DigitalOcean's 422.
  emulator = await startEmulator('digitalocean', ['--backing', 'simulated', '--boot-delay', '0', '--droplet-limit', '1'], path.join(tmp, 'emulator-store'))
  apiUrl = emulator.url
})

afterAll(async () => {
  await belt(['rm', '-y', '*'], {store: path.join(tmp, 'store'), env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}}).catch(() => undefined)
  await emulator?.stop()
  await rm(tmp, {recursive: true, force: true})
})

describe('the retry line of a partial failure', () => {
  it('carries the cluster, the driver options and the engine flags, never the token', async () => {
    const store = path.join(tmp, 'store')
    const r = await belt(
      ['create', '--driver', 'digitalocean', '--digitalocean-api-url', apiUrl, '--digitalocean-region', 'fra1', '--digitalocean-size', 's-2vcpu-4gb', '--cluster', 'blue', '--engine-label', 'tier=web', '--no-bootstrap', '--count', '2'],
      {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}},
    )
    expect(r.code, r.stderr).toBe(4)
    const line = /Retry only those with: (.*)/.exec(r.stderr)?.[1]
    expect(line, r.stderr).toBeDefined()
    for (const part of ['--driver digitalocean', '--cluster blue', '--engine-label tier=web', '--no-bootstrap', '--digitalocean-region fra1', '--digitalocean-size s-2vcpu-4gb', `--digitalocean-api-url ${apiUrl}`])
      expect(line).toContain(part)
    expect(line).toMatch(/ node1 node2$/)
    expect(line).not.toContain('--count')
    expect(r.stderr + r.stdout).not.toContain(TOKEN)
  })
})
