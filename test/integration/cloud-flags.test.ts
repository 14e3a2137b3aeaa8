/**
 * Docker Machine's DigitalOcean and amazonec2 flags that Belt lacked, through the built `belt`
 * binary against both emulators in this process (simulated backing hosts, `--no-bootstrap`): each
 * flag, and its Machine environment variable, reaches the API request the emulator recorded; a bad
 * value is one line with exit 2 before anything is created; the retry line of a failed batch carries
 * the new flags and never the token. DigitalOcean exchanges are checked against the OpenAPI document.
 */
import {createHash, generateKeyPairSync} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {OpenAPIBackend} from 'openapi-backend'
import {loadDoSpec, specViolations} from '../helpers/do-spec.js'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {Ec2Emulator, createSimulatedBacking as ec2Backing, type SimulatedBacking} from '../../drivers/amazonec2/emulator/index.js'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle, type Exchange} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking as doBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {belt} from '../helpers/cli.js'

const TOKEN = 'dop_v1_cloud_flags_test_token_0123456789'
const AWS = {AWS_ACCESS_KEY_ID: 'AKIDFLAGSTEST', AWS_SECRET_ACCESS_KEY: 'flags-test-secret', AWS_EC2_METADATA_DISABLED: 'true', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: ''}

let api: OpenAPIBackend
const exchanges: Exchange[] = []
let doEmu: EmulatorHandle
let ec2: Ec2Emulator
let ec2Hosts: SimulatedBacking
const ec2Calls: {action: string; params: Record<string, unknown>}[] = []
const dirs: string[] = []
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'belt-flags-'))
  dirs.push(d)
  return d
}

/** An ed25519 key pair: OpenSSH public line and PKCS#8 PEM private key. */
function keyPair(comment: string): {publicKey: string; privatePem: string} {
  const {publicKey, privateKey} = generateKeyPairSync('ed25519')
  const raw = publicKey.export({format: 'der', type: 'spki'}).subarray(-32)
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b])
  return {
    publicKey: `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} ${comment}`,
    privatePem: privateKey.export({format: 'pem', type: 'pkcs8'}).toString(),
  }
}

const violations = (ex: Exchange) => specViolations(api, ex)

beforeAll(async () => {
  api = await loadDoSpec()
  doEmu = await startEmulator({
    backing: doBacking({octet: 92}),
    backingContext: memoryContext(),
    bootDelayMs: 100,
    actionDelayMs: 20,
    rateLimit: {perHour: 1_000_000, perMinute: 100_000},
    onExchange: (ex) => exchanges.push(ex),
  })
  ec2Hosts = ec2Backing({secondOctet: 192})
  ec2 = await Ec2Emulator.start({backing: ec2Hosts, bootDelayMs: 100, onRequest: (action, params) => ec2Calls.push({action, params: structuredClone(params) as Record<string, unknown>})})
}, 60_000)

afterAll(async () => {
  await doEmu?.close()
  await ec2?.close()
  await ec2Hosts?.close()
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

describe('DigitalOcean: userdata (Machine spelling), ipv6, monitoring, backups, ssh-key-fingerprint', () => {
  const env = {DIGITALOCEAN_ACCESS_TOKEN: TOKEN}
  const stores: string[] = []
  const creates = (from: number) => exchanges.slice(from).filter((x) => x.method === 'POST' && x.path === '/v2/droplets')

  afterAll(async () => {
    for (const store of stores) await belt(['rm', '-y', '--force', '*'], {store, env})
  })

  it('every flag reaches the create request, and the exchanges conform to the spec', async () => {
    const dir = tmp()
    stores.push(dir)
    const userData = path.join(dir, 'cloud-init.yaml')
    writeFileSync(userData, '#cloud-config\nruncmd: [touch /etc/from-userdata]\n')
    // An SSH key of the operator's, already in the account (as doctl would have uploaded it).
    const mine = keyPair('operator@laptop')
    const res = await fetch(`${doEmu.url}/v2/account/keys`, {method: 'POST', headers: {Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json'}, body: JSON.stringify({name: 'operator', public_key: mine.publicKey})})
    expect(res.status).toBe(201)
    const fingerprint = createHash('md5').update(Buffer.from(mine.publicKey.split(' ')[1]!, 'base64')).digest('hex').match(/../g)!.join(':')
    const from = exchanges.length
    const r = await belt(
      ['create', '--driver', 'digitalocean', '--digitalocean-api-url', doEmu.url, '--no-bootstrap', '--digitalocean-userdata', userData, '--digitalocean-ipv6', '--digitalocean-monitoring', '--digitalocean-backups', '--digitalocean-ssh-key-fingerprint', fingerprint, 'flags1'],
      {store: dir, env},
    )
    expect(r.code, r.stderr).toBe(0)
    const [post] = creates(from)
    const body = post!.body as Record<string, unknown>
    expect(body.user_data).toBe('#cloud-config\nruncmd: [touch /etc/from-userdata]\n')
    expect(body).toMatchObject({ipv6: true, monitoring: true, backups: true})
    expect(body.ssh_keys).toHaveLength(2)
    expect(body.ssh_keys).toContain(fingerprint)
    expect(exchanges.slice(from).flatMap(violations)).toEqual([])
  })

  it("Machine's environment variables: DIGITALOCEAN_USERDATA, DIGITALOCEAN_IPV6, DIGITALOCEAN_MONITORING; defaults stay off", async () => {
    const dir = tmp()
    stores.push(dir)
    const userData = path.join(dir, 'user-data.sh')
    writeFileSync(userData, '#!/bin/sh\necho machine-env\n')
    const from = exchanges.length
    const r = await belt(['create', '--driver', 'digitalocean', '--digitalocean-api-url', doEmu.url, '--no-bootstrap', 'envflags1'], {
      store: dir,
      env: {...env, DIGITALOCEAN_USERDATA: userData, DIGITALOCEAN_IPV6: 'true', DIGITALOCEAN_MONITORING: 'true'},
    })
    expect(r.code, r.stderr).toBe(0)
    const body = creates(from)[0]!.body as Record<string, unknown>
    expect(body).toMatchObject({user_data: '#!/bin/sh\necho machine-env\n', ipv6: true, monitoring: true})
    expect(body.backups).toBeUndefined()
    expect(body.ssh_keys).toHaveLength(1)
  })

  it('bad values: one line, exit 2, no droplet requested and no record', async () => {
    const dir = tmp()
    for (const [extra, text] of [
      [['--digitalocean-ssh-key-fingerprint', 'zz:top'], "--digitalocean-ssh-key-fingerprint: 'zz:top' is not an MD5 key fingerprint"],
      [['--digitalocean-ssh-key-fingerprint', '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff'], 'no SSH key 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff in this account'],
      [['--digitalocean-userdata', path.join(dir, 'missing.yaml')], '--digitalocean-user-data: cannot read'],
    ] as const) {
      const from = exchanges.length
      const r = await belt(['create', '--driver', 'digitalocean', '--digitalocean-api-url', doEmu.url, '--no-bootstrap', ...extra, 'bad1'], {store: dir, env})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(text)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(creates(from)).toEqual([])
      expect(exchanges.slice(from).filter((x) => x.method !== 'GET')).toEqual([])
    }
    const ls = await belt(['ls', '--json'], {store: dir, env})
    expect(JSON.parse(ls.stdout || '[]')).toEqual([])
  })

  it('the retry line of a failed batch carries the new flags and --open-port, never the token', async () => {
    const dir = tmp()
    stores.push(dir)
    const userData = path.join(dir, 'ud.yaml')
    writeFileSync(userData, '#cloud-config\n')
    const failing = await startEmulator({
      backing: doBacking({octet: 93}),
      backingContext: memoryContext(),
      bootDelayMs: 100,
      rateLimit: {perHour: 1_000_000, perMinute: 100_000},
      faults: {neverActive: 1},
    })
    try {
      const r = await belt(
        ['create', '--driver', 'digitalocean', '--digitalocean-api-url', failing.url, '--no-bootstrap', '--digitalocean-active-timeout', '1', '--digitalocean-ipv6', '--open-port', '8080', 'retry1'],
        // Machine's variable: the retry line must still name the file (it may run in another shell).
        {store: dir, env: {...env, DIGITALOCEAN_USERDATA: userData}},
      )
      expect(r.code, r.stderr).toBe(4)
      const line = (r.stderr + r.stdout).split('\n').find((l) => l.includes('belt create') && l.includes('retry1'))
      expect(line, r.stderr).toBeDefined()
      expect(line).toContain('--digitalocean-ipv6')
      expect(line).toContain(`--digitalocean-user-data ${userData}`)
      expect(line).toContain('--open-port 8080')
      expect(line).not.toContain(TOKEN)
      expect(r.stderr + r.stdout).not.toContain(TOKEN)
      await belt(['rm', '-y', '--force', '*'], {store: dir, env: {...env, DIGITALOCEAN_API_URL: failing.url}})
    } finally {
      stores.pop()
      await failing.close()
    }
  })
})

describe('amazonec2: zone, volume-type, security-group, iam-instance-profile, private addresses, tags, userdata, keypair-name, ssh-keypath, monitoring', () => {
  const stores: string[] = []
  const run = (store: string, args: string[], extraEnv: Record<string, string> = {}) =>
    belt(['create', '--driver', 'amazonec2', '--amazonec2-endpoint', ec2.endpoint, '--amazonec2-region', 'us-east-1', '--no-bootstrap', ...args], {store, env: {...AWS, ...extraEnv}})
  const runInstances = (from: number) => ec2Calls.slice(from).filter((c) => c.action === 'RunInstances' && c.params.DryRun === undefined)
  const record = async (store: string, name: string) => JSON.parse((await belt(['inspect', name], {store, env: AWS})).stdout)

  afterAll(async () => {
    for (const store of stores) await belt(['rm', '-y', '--force', '*'], {store, env: AWS})
  })

  it('each flag reaches RunInstances; --amazonec2-use-private-address makes the record use the private address', async () => {
    const dir = tmp()
    stores.push(dir)
    await ec2.cloud.handle('CreateSecurityGroup', {GroupName: 'extra-sg', GroupDescription: 'operator group'}, 'us-east-1')
    const userData = path.join(dir, 'userdata.sh')
    writeFileSync(userData, '#!/bin/sh\necho from-userdata\n')
    const from = ec2Calls.length
    const r = await run(dir, [
      '--cluster', 'flags-a', '--amazonec2-zone', 'b', '--amazonec2-volume-type', 'io2', '--amazonec2-security-group', 'extra-sg', '--amazonec2-iam-instance-profile', 'web-profile',
      '--amazonec2-use-private-address', '--amazonec2-tags', 'team,web,env,prod', '--amazonec2-userdata', userData, '--amazonec2-monitoring', 'ec2a',
    ])
    expect(r.code, r.stderr).toBe(0)
    const [call] = runInstances(from)
    const p = call!.params as Record<string, any>
    expect(p.Placement.AvailabilityZone).toBe('us-east-1b')
    expect(p.BlockDeviceMapping['1'].Ebs.VolumeType).toBe('io2')
    expect(p.IamInstanceProfile.Name).toBe('web-profile')
    expect(p.Monitoring.Enabled).toBe('true')
    expect(Buffer.from(p.UserData, 'base64').toString()).toBe('#!/bin/sh\necho from-userdata\n')
    const w = ec2.cloud.world('us-east-1')
    const extra = [...w.groups.values()].find((g) => g.name === 'extra-sg')!
    expect(Object.values(p.NetworkInterface['1'].SecurityGroupId)).toContain(extra.id)
    const inst = [...w.instances.values()].find((i) => i.tags.get('Name') === 'ec2a')!
    expect(inst.az).toBe('us-east-1b')
    expect(inst.groupIds).toContain(extra.id)
    expect(inst.tags.get('team')).toBe('web')
    expect(inst.tags.get('env')).toBe('prod')
    expect(inst.monitoring).toBe(true)
    expect(inst.publicIp).toBeDefined()
    const rec = await record(dir, 'ec2a')
    expect(rec.machine.address).toBe(inst.privateIp)
  })

  it("--amazonec2-private-address-only asks for no public address; Machine's AWS_* variables are read", async () => {
    const dir = tmp()
    stores.push(dir)
    const from = ec2Calls.length
    const r = await run(dir, ['--cluster', 'flags-b', '--amazonec2-private-address-only', 'ec2b'], {AWS_ZONE: 'c', AWS_VOLUME_TYPE: 'gp2', AWS_TAGS: 'owner=ops', AWS_INSTANCE_PROFILE: 'arn:aws:iam::123456789012:instance-profile/ops'})
    expect(r.code, r.stderr).toBe(0)
    const p = runInstances(from)[0]!.params as Record<string, any>
    expect(p.NetworkInterface['1'].AssociatePublicIpAddress).toBe('false')
    expect(p.Placement.AvailabilityZone).toBe('us-east-1c')
    expect(p.BlockDeviceMapping['1'].Ebs.VolumeType).toBe('gp2')
    expect(p.IamInstanceProfile.Arn).toBe('arn:aws:iam::123456789012:instance-profile/ops')
    expect(p.Monitoring).toBeUndefined()
    const inst = [...ec2.cloud.world('us-east-1').instances.values()].find((i) => i.tags.get('Name') === 'ec2b')!
    expect(inst.publicIp).toBeUndefined()
    expect(inst.tags.get('owner')).toBe('ops')
    expect((await record(dir, 'ec2b')).machine.address).toBe(inst.privateIp)
  })

  it('--amazonec2-keypair-name with --amazonec2-ssh-keypath launches with that key pair, imports no cluster key, and records the key file to log in with', async () => {
    const dir = tmp()
    stores.push(dir)
    const k = keyPair('operator@ec2')
    const keyFile = path.join(dir, 'operator.pem')
    writeFileSync(keyFile, k.privatePem, {mode: 0o600})
    await ec2.cloud.handle('ImportKeyPair', {KeyName: 'operator-key', PublicKeyMaterial: Buffer.from(k.publicKey).toString('base64')}, 'us-east-1')
    const from = ec2Calls.length
    const r = await run(dir, ['--cluster', 'ownkey', 'ec2c'], {AWS_KEYPAIR_NAME: 'operator-key', AWS_SSH_KEYPATH: keyFile})
    expect(r.code, r.stderr).toBe(0)
    expect(runInstances(from)[0]!.params.KeyName).toBe('operator-key')
    expect(ec2Calls.slice(from).filter((c) => c.action === 'ImportKeyPair')).toEqual([])
    expect((await record(dir, 'ec2c')).machine.ssh.identityFile).toBe(keyFile)
  })

  it('bad values: one line, exit 2, nothing launched and nothing made', async () => {
    const dir = tmp()
    for (const [args, text] of [
      [['--amazonec2-zone', '9'], "--amazonec2-zone '9' is not a zone of us-east-1"],
      [['--amazonec2-zone', 'us-west-2a'], 'is not a zone of us-east-1'],
      [['--amazonec2-volume-type', 'fast'], "--amazonec2-volume-type 'fast' is not an EBS volume type"],
      [['--amazonec2-tags', 'a,b,c'], "--amazonec2-tags 'a,b,c' is neither"],
      [['--amazonec2-tags', 'Name,x'], 'the key Name is reserved'],
      [['--amazonec2-security-group', 'nosuch-group'], '--amazonec2-security-group: no security group nosuch-group'],
      [['--amazonec2-iam-instance-profile', 'bad profile!'], 'is neither an instance profile name nor its ARN'],
      [['--amazonec2-keypair-name', 'operator-key'], '--amazonec2-keypair-name needs --amazonec2-ssh-keypath'],
      [['--amazonec2-keypair-name', 'nosuch', '--amazonec2-ssh-keypath', '/etc/hostname'], 'no key pair nosuch in us-east-1'],
      [['--amazonec2-userdata', path.join(dir, 'none.sh')], '--amazonec2-userdata: cannot read'],
    ] as const) {
      const from = ec2Calls.length
      const r = await run(dir, ['--cluster', 'flags-bad', ...args, 'badec2'])
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(text)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      const made = ec2Calls.slice(from).filter((c) => (c.action === 'RunInstances' && c.params.DryRun === undefined) || /^(Create|Import|Authorize)/.test(c.action))
      expect(made).toEqual([])
    }
    const ls = await belt(['ls', '--json'], {store: dir, env: AWS})
    expect(JSON.parse(ls.stdout || '[]')).toEqual([])
  })
})
