/**
 * Bootstrap as a login user other than root (Ubuntu's `ubuntu` on EC2): every privileged step
 * through `sudo -n`, files staged by SFTP and moved into place by `sudo install` with their modes;
 * and the one-line failures when a host refuses the user (cloud-init's disable_root, a key that a
 * running sshd keeps refusing).
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import ssh2 from 'ssh2'
import {afterAll, describe, expect, it} from 'vitest'
import {bootstrapHost, type BootstrapInput} from '../../src/bootstrap/bootstrap.js'
import {
  ENGINE_PATHS,
  emptyEngineConfig,
  installStagedCommand,
  privileged,
  readFileCommand,
  removeStagingCommand,
  stagingDirCommand,
} from '../../src/bootstrap/commands.js'
import {generateSshKeyPair} from '../../src/ssh/keys.js'
import {redirectedLogin, type ExecResult, type Remote} from '../../src/ssh/remote.js'
import {keyRefusedMessage, waitForSsh} from '../../src/ssh/ssh2-remote.js'

const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], {encoding: 'utf8'})

describe('command builders for a sudo user', () => {
  it.each([
    ['root', 'systemctl restart docker', 'systemctl restart docker'],
    ['ubuntu', 'systemctl restart docker', "sudo -n sh -c 'systemctl restart docker'"],
    ['ubuntu', "echo 'x' > /etc/hostname", `sudo -n sh -c 'echo '\\''x'\\'' > /etc/hostname'`],
  ])('privileged(%j, %j)', (user, cmd, expected) => expect(privileged(cmd, user)).toBe(expected))

  it.each([
    [[{from: '/tmp/belt.a/0', to: '/etc/docker/ca.pem', mode: 0o644}], 'install -o root -g root -m 0644 /tmp/belt.a/0 /etc/docker/ca.pem'],
    [
      [
        {from: '/tmp/belt.a/0', to: '/etc/docker/server.pem', mode: 0o644},
        {from: '/tmp/belt.a/1', to: '/etc/docker/server-key.pem', mode: 0o600},
        {from: '/tmp/belt.a/2', to: '/tmp/belt-install-engine.sh', mode: 0o700},
      ],
      'install -o root -g root -m 0644 /tmp/belt.a/0 /etc/docker/server.pem && install -o root -g root -m 0600 /tmp/belt.a/1 /etc/docker/server-key.pem && install -o root -g root -m 0700 /tmp/belt.a/2 /tmp/belt-install-engine.sh',
    ],
    [[{from: "/tmp/it's here", to: '/etc/a b', mode: 0o640}], `install -o root -g root -m 0640 '/tmp/it'\\''s here' '/etc/a b'`],
  ])('installStagedCommand %#', (files, expected) => expect(installStagedCommand(files)).toBe(expected))

  it('installStagedCommand refuses an empty batch', () => expect(() => installStagedCommand([])).toThrow(/no staged files/))

  it.each([
    [stagingDirCommand, 'mktemp -d /tmp/belt.XXXXXXXX'],
    [removeStagingCommand('/tmp/belt.AbC123'), 'rm -rf -- /tmp/belt.AbC123'],
    [readFileCommand(ENGINE_PATHS.cert), 'cat -- /etc/docker/server.pem'],
  ])('%s', (built, expected) => expect(built).toBe(expected))

  it.runIf(process.getuid?.() === 0)('a real shell runs installStagedCommand: root-owned files with exactly the modes asked, whatever the umask', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-install-'))
    try {
      writeFileSync(path.join(dir, '0'), 'cert')
      writeFileSync(path.join(dir, '1'), 'key')
      const cmd = installStagedCommand([
        {from: path.join(dir, '0'), to: path.join(dir, 'server.pem'), mode: 0o644},
        {from: path.join(dir, '1'), to: path.join(dir, 'key file.pem'), mode: 0o600},
      ])
      sh(`umask 077; ${cmd}`)
      expect(statSync(path.join(dir, 'server.pem')).mode & 0o7777).toBe(0o644)
      expect(statSync(path.join(dir, 'key file.pem')).mode & 0o7777).toBe(0o600)
      expect(statSync(path.join(dir, 'key file.pem')).uid).toBe(0)
      expect(readFileSync(path.join(dir, 'key file.pem'), 'utf8')).toBe('key')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

/** A host that answers the probe like a Debian host with dockerd, records every call, and fails on nothing. */
class FakeHost implements Remote {
  readonly execs: string[] = []
  readonly uploads: {path: string; mode: number; content: string}[] = []
  constructor(private readonly answer: (command: string) => ExecResult | undefined = () => undefined) {}
  async exec(command: string): Promise<ExecResult> {
    this.execs.push(command)
    const a = this.answer(command)
    if (a) return a
    if (command === stagingDirCommand) return {code: 0, stdout: '/tmp/belt.Q1w2E3r4\n', stderr: ''}
    if (command.includes('--os')) return {code: 0, stdout: '--os\nID=debian\nPRETTY_NAME="Debian 12"\n--dockerd\n/usr/bin/dockerd\n--cloud-init\nno\n--keyjson\nno\n--active\nactive\n--sums\n', stderr: ''}
    return {code: 0, stdout: '', stderr: ''}
  }
  async upload(p: string, content: string | Buffer, mode: number): Promise<void> {
    this.uploads.push({path: p, mode, content: String(content)})
  }
  async download(): Promise<Buffer> {
    throw Object.assign(new Error('no such file'), {code: 'ENOENT'})
  }
  async close(): Promise<void> {}
}

function input(remote: Remote, user: string, extra: Partial<BootstrapInput> = {}): BootstrapInput {
  return {
    remote,
    name: 'node1',
    driver: 'amazonec2',
    machine: {id: 'i-0123456789abcdef0', address: '127.0.0.9', ssh: {user, port: 22}, data: {}},
    engine: emptyEngineConfig(),
    templates: {dropIn: '[Service]\nExecStart=\nExecStart={{DOCKERD}} -H tcp://0.0.0.0:{{PORT}}\n', installDebian: '', installScript: ''},
    caPem: 'CA',
    clientTls: {ca: 'CA', cert: 'C', key: 'K'},
    keepServerCert: () => false,
    issueServerCert: async () => ({certPem: 'CERT', keyPem: 'KEY'}),
    resetEngineId: false,
    log: () => undefined,
    // The engine check is the last step: an aborted signal ends the run there.
    signal: AbortSignal.abort(new Error('stop before the engine check')),
    ...extra,
  }
}

describe('bootstrapHost as ubuntu with passwordless sudo', () => {
  it('runs every privileged step through sudo -n and stages files before one sudo install with their modes', async () => {
    const host = new FakeHost()
    await expect(bootstrapHost(input(host, 'ubuntu'))).rejects.toThrow(/stop before the engine check/)
    const unprivileged = host.execs.filter((c) => !c.startsWith('sudo -n sh -c '))
    expect(unprivileged).toEqual([stagingDirCommand, removeStagingCommand('/tmp/belt.Q1w2E3r4')])
    // Only the staging directory receives uploads, each private to the user.
    expect(host.uploads.map((u) => [u.path, u.mode])).toEqual([0, 1, 2, 3, 4].map((i) => [`/tmp/belt.Q1w2E3r4/${i}`, 0o600]))
    const installs = host.execs.filter((c) => c.includes('install -o root'))
    expect(installs).toEqual([
      privileged(
        installStagedCommand([
          {from: '/tmp/belt.Q1w2E3r4/0', to: ENGINE_PATHS.ca, mode: 0o644},
          {from: '/tmp/belt.Q1w2E3r4/1', to: ENGINE_PATHS.daemonJson, mode: 0o644},
          {from: '/tmp/belt.Q1w2E3r4/2', to: ENGINE_PATHS.dropIn, mode: 0o644},
          {from: '/tmp/belt.Q1w2E3r4/3', to: ENGINE_PATHS.cert, mode: 0o644},
          {from: '/tmp/belt.Q1w2E3r4/4', to: ENGINE_PATHS.key, mode: 0o600},
        ]),
        'ubuntu',
      ),
    ])
    // The staging directory goes after the install, and the engine restarts after that.
    const order = (needle: string) => host.execs.findIndex((c) => c.includes(needle))
    expect(order('install -o root')).toBeLessThan(order('rm -rf -- /tmp/belt.Q1w2E3r4'))
    expect(order('rm -rf -- /tmp/belt.Q1w2E3r4')).toBeLessThan(order('systemctl restart docker'))
    expect(host.uploads.find((u) => u.path.endsWith('/4'))!.content).toBe('KEY')
  })

  it('as root: no sudo, files straight to their paths with their modes', async () => {
    const host = new FakeHost()
    await expect(bootstrapHost(input(host, 'root'))).rejects.toThrow(/stop before the engine check/)
    expect(host.execs.filter((c) => c.includes('sudo') || c.includes('mktemp'))).toEqual([])
    expect(host.uploads.map((u) => [u.path, u.mode])).toEqual([
      [ENGINE_PATHS.ca, 0o644],
      [ENGINE_PATHS.daemonJson, 0o644],
      [ENGINE_PATHS.dropIn, 0o644],
      [ENGINE_PATHS.cert, 0o644],
      [ENGINE_PATHS.key, 0o600],
    ])
  })

  it('reads the current server certificate through sudo, and keeps it when it is still right', async () => {
    const sums = `--sums\n${'a'.repeat(64)}  ${ENGINE_PATHS.cert}\n${'b'.repeat(64)}  ${ENGINE_PATHS.key}\n`
    const host = new FakeHost((c) => {
      if (c.includes('--os')) return {code: 0, stdout: `--os\nID=ubuntu\n--dockerd\n/usr/bin/dockerd\n--cloud-init\nno\n--keyjson\nno\n--active\nactive\n${sums}`, stderr: ''}
      if (c === privileged(readFileCommand(ENGINE_PATHS.cert), 'ubuntu')) return {code: 0, stdout: 'CURRENT', stderr: ''}
      return undefined
    })
    const seen: (string | undefined)[] = []
    await expect(bootstrapHost(input(host, 'ubuntu', {keepServerCert: (pem) => (seen.push(pem), true)}))).rejects.toThrow(/engine check/)
    expect(seen).toEqual(['CURRENT'])
    expect(host.uploads.map((u) => u.path)).toHaveLength(3) // ca, daemon.json, drop-in: not the cert and key
  })

  it('root on an Ubuntu image: one line naming the user the host asks for and the flag', async () => {
    const host = new FakeHost(() => ({code: 142, stdout: 'Please login as the user "ubuntu" rather than the user "root".\n\n', stderr: ''}))
    const err = (await bootstrapHost(input(host, 'root', {userFlag: '--amazonec2-ssh-user'})).catch((e: unknown) => e)) as Error & {code?: string}
    expect(err.code).toBe('E_SSH_WRONG_USER')
    expect(err.message).toBe('node1 (127.0.0.9) refuses logins as root and asks for user ubuntu: create it again with --amazonec2-ssh-user ubuntu (belt rm node1 first)')
    expect(host.execs).toHaveLength(1)
  })

  it('a user without passwordless sudo: one line that says so', async () => {
    const host = new FakeHost(() => ({code: 1, stdout: '', stderr: 'sudo: a password is required\n'}))
    await expect(bootstrapHost(input(host, 'admin'))).rejects.toMatchObject({code: 'E_SUDO_PASSWORD', message: expect.stringMatching(/^node1 .*user admin has no passwordless sudo/)})
  })

  it.each([
    [{code: 142, stdout: 'Please login as the user "ec2-user" rather than the user "root".\n', stderr: ''}, 'ec2-user'],
    [{code: 1, stdout: 'Please login as the user "ubuntu" rather than the user "root".', stderr: ''}, 'ubuntu'],
    [{code: 0, stdout: 'Please login as the user "ubuntu" rather than the user "root".', stderr: ''}, undefined],
    [{code: 1, stdout: 'hello', stderr: ''}, undefined],
  ])('redirectedLogin %#', (r, user) => expect(redirectedLogin(r)).toBe(user))
})

describe('waitForSsh when a running sshd refuses the key', () => {
  const servers: ssh2.Server[] = []
  afterAll(() => servers.forEach((s) => s.close()))

  it('fails after the refusal window, not the whole wait, with one line naming the user and the flag', async () => {
    const hostKey = generateSshKeyPair('host').privateKey
    const server = new ssh2.Server({hostKeys: [hostKey]}, (client) => {
      client.on('authentication', (ctx) => ctx.reject(['publickey']))
      client.on('error', () => undefined)
    })
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    const t0 = Date.now()
    const err = (await waitForSsh(
      {host: '127.0.0.1', port, username: 'admin', privateKey: generateSshKeyPair('belt').privateKey, hostName: 'node1', knownHostKeys: []},
      {timeoutMs: 60_000, keyRefusedWindowMs: 1500, userFlag: '--amazonec2-ssh-user'},
    ).catch((e: unknown) => e)) as Error & {code?: string}
    expect(Date.now() - t0).toBeLessThan(30_000)
    expect(err.code).toBe('E_SSH_AUTH')
    expect(err.message).not.toContain('\n')
    expect(err.message).toMatch(/^node1 \(127\.0\.0\.1\) refused belt's SSH key for user admin for \d+ s after its sshd came up: .*--amazonec2-ssh-user USER \(belt rm node1 first\)$/)
  })

  it.each([
    ['--amazonec2-ssh-user', "n1 (10.0.0.1) refused belt's SSH key for user ubuntu for 30 s after its sshd came up: if the image logs in as another user, create it again with --amazonec2-ssh-user USER (belt rm n1 first)"],
    [undefined, "n1 (10.0.0.1) refused belt's SSH key for user ubuntu for 30 s after its sshd came up: check that the cluster key is in ubuntu's authorized_keys"],
  ])('keyRefusedMessage with flag %j', (flag, expected) => expect(keyRefusedMessage('n1', '10.0.0.1', 'ubuntu', 30, flag)).toBe(expected))
})
