/**
 * Hosts keep their endpoint (issue 9, item 5), through the built CLI: a droplet created against one
 * DigitalOcean emulator is never looked for at another. With DIGITALOCEAN_API_URL pointing at a
 * second emulator, `belt rm` used to get "not found" there, count the host as removed and drop its
 * record while the droplet kept running; now every command on the host refuses with one line,
 * before any API call, and `belt rm` without the variable removes the droplet where it lives.
 *
 * Both emulators run in this process on 127.0.0.1 with simulated backing (loopback addresses with a
 * banner on port 22: binding port 22 needs root, as the other emulator tests).
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {belt} from '../helpers/cli.js'

const TOKEN = 'dop_v1_pinned_endpoint_test_token'
const fast = {perHour: 1_000_000, perMinute: 100_000}
let tmp: string
let store: string
let home: EmulatorHandle
let elsewhere: EmulatorHandle

const emulator = (octet: number) =>
  startEmulator({backing: createSimulatedBacking({octet}), backingContext: memoryContext(), bootDelayMs: 100, actionDelayMs: 20, rateLimit: fast})

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-pinned-cli-'))
  store = path.join(tmp, 'store')
  home = await emulator(91)
  elsewhere = await emulator(92)
})

afterAll(async () => {
  await belt(['rm', '-y', '--force', 'pin*'], {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN, DIGITALOCEAN_API_URL: ''}}).catch(() => undefined)
  await home?.close()
  await elsewhere?.close()
  await rm(tmp, {recursive: true, force: true})
})

/** `belt ARGS` with the token, and DIGITALOCEAN_API_URL set to `url` (empty: unset). */
const run = (args: string[], url = '') => belt(args, {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN, DIGITALOCEAN_API_URL: url}})

describe('a host keeps the DigitalOcean endpoint it was created with', () => {
  it('belt create --digitalocean-api-url records the endpoint', async () => {
    const r = await run(['create', '--driver', 'digitalocean', '--digitalocean-api-url', home.url, '--no-bootstrap', 'pin1'])
    expect(r.code, r.stderr).toBe(0)
    expect(home.droplets().map((d) => d.name)).toEqual(['pin1'])
  })

  it('with DIGITALOCEAN_API_URL at another endpoint, rm (even --force), ls, status, stop and inspect exit 2 with one line and call no API', async () => {
    const before = elsewhere.stats.requests
    for (const args of [['rm', '-y', 'pin1'], ['rm', '-y', '--force', 'pin1'], ['ls'], ['status', 'pin1'], ['stop', 'pin1'], ['inspect', 'pin1']]) {
      const r = await run(args, elsewhere.url)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      const lines = r.stderr.trim().split('\n')
      expect(lines, args.join(' ')).toHaveLength(1)
      expect(lines[0]).toBe(
        `Error: pin1 was created with --digitalocean-api-url ${home.url}, but DIGITALOCEAN_API_URL is ${elsewhere.url}: a host keeps the api-url it was created with. ` +
          'Unset DIGITALOCEAN_API_URL (belt uses the recorded value for existing hosts).',
      )
    }
    expect(elsewhere.stats.requests - before).toBe(0)
    // The record and the droplet are both still there.
    const ls = await run(['ls', '--json'])
    expect(ls.code, ls.stderr).toBe(0)
    expect(JSON.parse(ls.stdout)).toMatchObject([{name: 'pin1', state: 'Running'}])
    expect(home.droplets().map((d) => d.name)).toEqual(['pin1'])
  })

  it('the same endpoint in the environment is accepted, and rm without it removes the droplet where it lives', async () => {
    const st = await run(['status', 'pin1'], `${home.url}/`)
    expect(st.code, st.stderr).toBe(0)
    expect(st.stdout.trim()).toBe('Running')
    const r = await run(['rm', '-y', 'pin1'])
    expect(r.code, r.stderr).toBe(0)
    expect(home.droplets()).toEqual([])
    expect(home.sshKeys()).toEqual([])
    expect(home.firewalls()).toEqual([])
  })
})
