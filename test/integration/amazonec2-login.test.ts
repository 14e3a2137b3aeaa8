import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Store} from '../../src/store/store.js'
import {belt} from '../helpers/cli.js'
import {startEmulator, type RunningEmulator} from '../helpers/emulator.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

// The EC2 emulator's default image logs in like a real Ubuntu AMI: user ubuntu with the key pair and
// passwordless sudo, root refused as cloud-init refuses it. A wrong --amazonec2-ssh-user fails in
// one line that names the user and the flag. One host per case, on a subnet of its own.
const SUBNET = '10.233.0.0/16'
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDBELTTEST',
  AWS_SECRET_ACCESS_KEY: 'belt-test-secret',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
}
let tmp: string
let store: string
let emulator: RunningEmulator
let endpoint: string
let before: SystemSnapshot

beforeAll(async () => {
  before = await systemSnapshot()
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-ec2-login-'))
  store = path.join(tmp, 'store')
  emulator = await startEmulator('ec2', ['--local-subnet', SUBNET, '--boot-delay', '200'], path.join(tmp, 'emulator-store'))
  endpoint = emulator.url
})

afterAll(async () => {
  await belt(['rm', '-y', '--force', '*'], {store, env: AWS_ENV}).catch(() => undefined)
  await emulator?.stop()
  await rm(tmp, {recursive: true, force: true})
})

const create = (...args: string[]) => belt(['create', '--driver', 'amazonec2', '--amazonec2-endpoint', endpoint, ...args], {store, env: AWS_ENV})

/** The lines of a batch's output that mention `host`'s failure. */
const failureLines = (out: string, host: string) => out.split('\n').filter((l) => l.includes(host) && /fail|refuse/i.test(l))

describe('the EC2 emulator logs in like an Ubuntu AMI', () => {
  it('the default image: ubuntu with the key pair and passwordless sudo (no user flag)', async () => {
    const r = await create('--no-bootstrap', 'u1')
    expect(r.code, r.stderr).toBe(0)
    expect((await new Store(store).get('u1')).machine?.ssh.user).toBe('ubuntu')
    const s = await belt(['ssh', 'u1', 'id -un; sudo -n id -u; sudo -n cat /etc/sudoers.d/90-cloud-init-users'], {store})
    expect(s.code, s.stderr).toBe(0)
    const [user, uid, ...sudoers] = s.stdout.trim().split('\n')
    expect([user, uid]).toEqual(['ubuntu', '0'])
    expect(sudoers).toContain('ubuntu ALL=(ALL) NOPASSWD:ALL')
  })

  it('refuses root as cloud-init does, and belt says in one line which user and flag to use', async () => {
    const r = await create('--amazonec2-ssh-user', 'root', 'r1')
    expect(r.code, r.stderr).toBe(4)
    const out = r.stderr + r.stdout
    expect(out).toContain('r1 (10.233.') // the line names the host and its address
    expect(out).toMatch(/refuses logins as root and asks for user ubuntu: create it again with --amazonec2-ssh-user ubuntu \(belt rm r1 first\)/)
    // The host itself: root's key is accepted only to print cloud-init's message and exit 142.
    const s = await belt(['ssh', 'r1', 'id'], {store})
    expect(s.code).toBe(142)
    expect(s.stdout).toContain('Please login as the user "ubuntu" rather than the user "root".')
    expect(s.stdout).not.toContain('uid=')
  })

  it('a user the image does not have: one line naming the user and --amazonec2-ssh-user, within the cloud-init window', async () => {
    const r = await create('--amazonec2-ssh-user', 'admin', 'a1')
    expect(r.code, r.stderr).toBe(4)
    const lines = failureLines(r.stderr + r.stdout, 'a1').filter((l) => l.includes('refused'))
    expect(lines.length, r.stderr).toBeGreaterThan(0)
    const m = /refused belt's SSH key for user admin for (\d+) s after its sshd came up: if the image logs in as another user, create it again with --amazonec2-ssh-user USER/.exec(lines[0]!)
    expect(m, lines[0]).not.toBeNull()
    expect(Number(m![1])).toBeLessThan(60) // the refusal window, not the 180 s SSH wait
    expect((await new Store(store).get('a1')).error?.message).toMatch(/^a1 \(10\.233\.\d+\.\d+\) refused .* --amazonec2-ssh-user USER \(belt rm a1 first\)$/)
  })

  it('belt rm removes every instance, and the emulator leaves the machine as it was', async () => {
    const r = await belt(['rm', '-y', '*'], {store, env: AWS_ENV})
    expect(r.code, r.stderr).toBe(0)
    expect(await emulator.stop()).toBe(0)
    expect(await systemSnapshot()).toEqual(before)
  })
})
