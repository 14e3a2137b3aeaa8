import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, beltBin} from '../helpers/cli.js'

// Issue 9, seen #9: the retry line of a partial failure dropped --cluster, the driver's options and
// the --engine-* flags; run as printed it would have targeted the default region and size.
const TOKEN = 'dop_v1_retry_line_token'
let tmp: string
let emulator: ChildProcess
let apiUrl: string

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-retry-'))
  const env: NodeJS.ProcessEnv = {...process.env, BELT_STORE: path.join(tmp, 'emulator-store'), CI: 'true'}
  delete env.NODE_ENV
  // An account that may have one droplet: a batch of two fails with DigitalOcean's 422.
  emulator = spawn(process.execPath, [beltBin, 'emulator', 'digitalocean', '--port', '0', '--backing', 'simulated', '--boot-delay', '0', '--droplet-limit', '1'], {env, stdio: ['ignore', 'pipe', 'pipe']})
  apiUrl = await new Promise<string>((resolve, reject) => {
    let out = ''
    emulator.stdout!.on('data', (d) => {
      out += d
      const m = /DIGITALOCEAN_API_URL=(http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    emulator.on('exit', (code) => reject(new Error(`the emulator exited ${code}`)))
  })
})

afterAll(async () => {
  await belt(['rm', '-y', '*'], {store: path.join(tmp, 'store'), env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}}).catch(() => undefined)
  const exited = new Promise((r) => emulator.once('exit', r))
  emulator.kill('SIGTERM')
  await exited
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
