import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {chaos, dropletIds, dropSshSessions, instanceIds, localNamespaces, prng, type ChaosReport} from '../../bench/chaos-lib.js'
import {beltBin} from '../helpers/cli.js'
import {startEmulator, type RunningEmulator} from '../helpers/emulator.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

// Ctrl-C at random moments of `belt create --count 4 --swarm`, the same command again until it
// finishes, then `belt rm`: against the DigitalOcean emulator (real hosts behind it, 429 and 5xx
// faults) and the local driver. The full-size run is bench/chaos.ts.
const TOKEN = 'dop_v1_chaos_token'
const CHECKER_TOKEN = 'dop_v1_chaos_checker' // the emulator limits per token: checks never eat belt's budget
let tmp: string
let before: SystemSnapshot
let emulator: RunningEmulator | undefined
let ec2: RunningEmulator | undefined

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = {...process.env, CI: 'true', NO_COLOR: '1', ...extra}
  delete e.NODE_ENV
  return e
}

function expectClean(r: ChaosReport): void {
  const detail = JSON.stringify(r, null, 1)
  expect(r.badExits, detail).toEqual([])
  expect(r.extraHosts, detail).toBe(0)
  expect(r.mismatches, detail).toBe(0)
  expect(r.finalCode, detail).toBe(0)
  expect(r.unfinished, detail).toEqual([])
  expect(r.orphans, detail).toEqual([])
  expect(r.steps.at(-1)!.records, detail).toBe(0)
  expect(r.steps.some((x) => x.kind.includes('interrupt') && x.code === 130), detail).toBe(true)
}

beforeAll(async () => {
  before = await systemSnapshot()
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-chaos-'))
})

afterAll(async () => {
  await emulator?.stop()
  await ec2?.stop()
  await rm(tmp, {recursive: true, force: true})
})

describe('Ctrl-C at random moments, then the same command, then rm', () => {
  it('DigitalOcean emulator (5% 429s, 2% 5xx, 10% never active): no extra host, records match the droplets after every step, nothing left after rm', async () => {
    const started = await startEmulator(
      'digitalocean',
      ['--local-subnet', '10.243.0.0/16', '--boot-delay', '800', '--fault-429', '0.05', '--fault-5xx', '0.02', '--fault-never-active', '0.1', '--seed', '7'],
      path.join(tmp, 'emulator-store'),
    )
    emulator = started
    const apiUrl = started.url
    const store = path.join(tmp, 'do-store')
    const report = await chaos(
      {
        label: 'digitalocean',
        create: [beltBin, 'create', '--driver', 'digitalocean', '--digitalocean-api-url', apiUrl, '--digitalocean-active-timeout', '8', '--count', '4', '--swarm'],
        remove: [beltBin, 'rm', '-y', '*'],
        env: env({BELT_STORE: store, DIGITALOCEAN_ACCESS_TOKEN: TOKEN}),
        store,
        hosts: 4,
        reality: dropletIds(apiUrl, CHECKER_TOKEN),
        kinds: ['droplet'],
        goal: 'joined',
      },
      // A droplet that never becomes active is deleted after 8 s and its host fails (exit 4): the
      // same command again makes it anew.
      {interrupts: 4, minDelayMs: 300, maxDelayMs: 6000, seed: 11, log: (l) => process.stderr.write(l + '\n'), finalRuns: 4},
    )
    expectClean(report)
  }, 600_000)

  it('EC2 emulator (5% throttled, 2% capacity faults): no extra host, records match the instances after every step, nothing left after rm', async () => {
    const started = await startEmulator(
      'ec2',
      ['--local-subnet', '10.242.0.0/16', '--boot-delay', '500', '--fault-throttle', '0.05', '--fault-capacity', '0.02', '--seed', '9'],
      path.join(tmp, 'ec2-emulator-store'),
    )
    ec2 = started
    const store = path.join(tmp, 'ec2-store')
    const aws = {AWS_ACCESS_KEY_ID: 'AKIDBELTCHAOS', AWS_SECRET_ACCESS_KEY: 'belt-chaos-secret', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null'}
    const report = await chaos(
      {
        label: 'amazonec2',
        create: [beltBin, 'create', '--driver', 'amazonec2', '--amazonec2-endpoint', started.url, '--count', '4', '--swarm'],
        remove: [beltBin, 'rm', '-y', '*'],
        env: env({BELT_STORE: store, ...aws}),
        store,
        hosts: 4,
        reality: instanceIds(started.url, aws),
        kinds: ['instance'],
        goal: 'joined',
      },
      {interrupts: 4, minDelayMs: 300, maxDelayMs: 8000, seed: 13, log: (l) => process.stderr.write(l + '\n')},
    )
    expectClean(report)
  }, 600_000)

  it('local driver with SSH sessions dropped: no extra host, namespaces match the records after every step, none left after rm', async () => {
    const store = path.join(tmp, 'local-store')
    const subnet = '10.244.0.0/16'
    const report = await chaos(
      {
        label: 'local',
        create: [beltBin, 'create', '--driver', 'local', '--local-subnet', subnet, '--count', '4', '--swarm'],
        remove: [beltBin, 'rm', '-y', '*'],
        env: env({BELT_STORE: store}),
        store,
        hosts: 4,
        reality: localNamespaces(subnet),
        kinds: ['netns'],
        goal: 'joined',
      },
      // SSH sessions of a random host dropped every ~2 s as well: bootstrap reconnects, or the host
      // fails honestly (exit 4) and the same command finishes it.
      {interrupts: 4, minDelayMs: 300, maxDelayMs: 5000, seed: 5, log: (l) => process.stderr.write(l + '\n'), disrupt: dropSshSessions(subnet, prng(6)), disruptEveryMs: 2000, finalRuns: 3},
    )
    expectClean(report)
  }, 600_000)

  it('leaves the machine as it was', async () => {
    await emulator?.stop()
    await ec2?.stop()
    expect(await systemSnapshot()).toEqual(before)
  })
})
