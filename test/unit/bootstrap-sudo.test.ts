/**
 * Bootstrap as a login user other than root (Ubuntu's `ubuntu` on EC2): every privileged step
 * through `sudo -n`, files written from the configuring command's stdin with their modes;
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
  configureCommand,
  emptyEngineConfig,
  privileged,
  readFileCommand,
  stdinFile,
  writeFilesCommand,
} from '../../src/bootstrap/commands.js'
import {generateSshKeyPair} from '../../src/ssh/keys.js'
import {redirectedLogin, type ExecOptions, type ExecResult, type Remote} from '../../src/ssh/remote.js'
import {keyRefusedMessage, waitForSsh} from '../../src/ssh/ssh2-remote.js'

const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], {encoding: 'utf8'})

describe('command builders for a sudo user', () => {
  it.each([
    ['root', 'systemctl restart docker', 'systemctl restart docker'],
    ['ubuntu', 'systemctl restart docker', "sudo -n sh -c 'systemctl restart docker'"],
    ['ubuntu', "echo 'x' > /etc/hostname", `sudo -n sh -c 'echo '\\''x'\\'' > /etc/hostname'`],
  ])('privileged(%j, %j)', (user, cmd, expected) => expect(privileged(cmd, user)).toBe(expected))

  it('writeFilesCommand refuses an empty batch and bad entries', () => {
    expect(() => writeFilesCommand([])).toThrow(/no files/)
    expect(() => writeFilesCommand([{path: '/a', mode: 0o644, size: -1, sha256: 'a'.repeat(64)}])).toThrow(/bad size/)
    expect(() => writeFilesCommand([{path: '/a', mode: 0o644, size: 1, sha256: 'nothex'}])).toThrow(/bad SHA-256/)
  })

  it('stdinFile counts bytes, not characters', () => {
    const f = stdinFile({path: '/etc/x', content: 'é\n', mode: 0o600})
    // printf 'é\n' | sha256sum
    expect(f).toEqual({path: '/etc/x', mode: 0o600, size: 3, sha256: 'edd3a863872a04239eb29ad4bc12fc892b3d4ae57cc7e786a3697816f8e141c2'})
  })

  it.each([[readFileCommand(ENGINE_PATHS.cert), 'cat -- /etc/docker/server.pem']])('%s', (built, expected) => expect(built).toBe(expected))

  it('configureCommand: each step only when asked, the restart last and inside braces (a failed step stops it)', () => {
    const files = [stdinFile({path: ENGINE_PATHS.ca, content: 'CA', mode: 0o644})]
    const all = configureCommand({name: 'node1', files, resetEngineId: true, restart: true})
    expect(all).toContain(writeFilesCommand(files))
    expect(all.indexOf(writeFilesCommand(files))).toBeLessThan(all.indexOf('rm -f /etc/docker/key.json'))
    expect(all.endsWith('&& { systemctl daemon-reload; systemctl enable docker >/dev/null 2>&1; systemctl restart docker; }')).toBe(true)
    const none = configureCommand({name: 'node1', files: [], resetEngineId: false, restart: false})
    expect(none).not.toMatch(/mktemp|key\.json|systemctl restart/)
    expect(none).toContain('mkdir -p /etc/docker /etc/systemd/system/docker.service.d')
  })

  it.runIf(process.getuid?.() === 0)('a real shell runs writeFilesCommand: files with exactly their content and modes whatever the umask; a short stdin fails naming the file and replaces nothing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-write-'))
    try {
      const files = [
        {path: path.join(dir, 'server.pem'), content: 'cert\n', mode: 0o644},
        {path: path.join(dir, "key file's.pem"), content: 'key é', mode: 0o600},
        {path: path.join(dir, 'empty'), content: '', mode: 0o644},
      ]
      const cmd = writeFilesCommand(files.map(stdinFile))
      // What a cut-off session left: an old temporary file goes; a recent one (a writer at work)
      // and a file of another name stay.
      for (const n of ['.belt.Old12345', '.belt.New12345', '.belt.notours']) writeFileSync(path.join(dir, n), 'partial')
      sh(`touch -d '2 hours ago' ${JSON.stringify(path.join(dir, '.belt.Old12345'))} ${JSON.stringify(path.join(dir, '.belt.notours'))}`)
      execFileSync('/bin/sh', ['-c', `umask 022; ${cmd}`], {input: files.map((f) => f.content).join('')})
      expect(sh(`ls -A ${JSON.stringify(dir)}`).split('\n').filter((n) => n.startsWith('.belt.')).sort()).toEqual(['.belt.New12345', '.belt.notours'])
      rmSync(path.join(dir, '.belt.New12345'))
      rmSync(path.join(dir, '.belt.notours'))
      for (const f of files) {
        expect(statSync(f.path).mode & 0o7777).toBe(f.mode)
        expect(statSync(f.path).uid).toBe(0)
        expect(readFileSync(f.path, 'utf8')).toBe(f.content)
      }
      writeFileSync(files[1]!.path, 'old')
      let err: {status?: number; stderr?: Buffer} = {}
      try {
        execFileSync('/bin/sh', ['-c', cmd], {input: 'cert\nkey', stdio: ['pipe', 'pipe', 'pipe']})
      } catch (e) {
        err = e as typeof err
      }
      expect(err.status).toBe(1)
      expect(String(err.stderr)).toContain(`belt: ${files[1]!.path} arrived damaged (not the 6 bytes sent) and was not replaced`)
      expect(readFileSync(files[1]!.path, 'utf8')).toBe('old')
      expect(sh(`ls -A ${JSON.stringify(dir)}`).split('\n').filter((n) => n.startsWith('.belt.'))).toEqual([])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

/** A host that answers the probe like a Debian host with dockerd and records every command with its stdin; SFTP is not expected. */
class FakeHost implements Remote {
  readonly execs: string[] = []
  readonly stdins: string[] = []
  constructor(private readonly answer: (command: string) => ExecResult | undefined = () => undefined) {}
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.execs.push(command)
    this.stdins.push(String(opts.stdin ?? ''))
    const a = this.answer(command)
    if (a) return a
    if (command.includes('--os')) return {code: 0, stdout: '--os\nID=debian\nPRETTY_NAME="Debian 12"\n--dockerd\n/usr/bin/dockerd\n--cloud-init\nno\n--keyjson\nno\n--active\nactive\n--sums\n', stderr: ''}
    return {code: 0, stdout: '', stderr: ''}
  }
  async upload(p: string): Promise<void> {
    throw new Error(`unexpected SFTP upload of ${p}`)
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
  /** The stdin of a first bootstrap: the CA first, the server certificate and key last (the fakes are 'CA', 'CERT', 'KEY'). */
  const firstFiles = (stdin: string) => {
    expect(stdin.startsWith('CA')).toBe(true)
    expect(stdin.endsWith('CERTKEY')).toBe(true)
  }

  it('runs every step through sudo -n: the probe, then one command that writes the files from stdin and restarts the engine', async () => {
    const host = new FakeHost()
    await expect(bootstrapHost(input(host, 'ubuntu'))).rejects.toThrow(/stop before the engine check/)
    expect(host.execs).toHaveLength(2)
    expect(host.execs.every((c) => c.startsWith('sudo -n sh -c '))).toBe(true)
    const stdin = host.stdins[1]!
    firstFiles(stdin)
    const configure = host.execs[1]!
    for (const p of [ENGINE_PATHS.ca, ENGINE_PATHS.daemonJson, ENGINE_PATHS.dropIn, ENGINE_PATHS.cert, ENGINE_PATHS.key]) expect(configure).toContain(p)
    expect(configure).toContain('chmod 0600 "$t" && mv -f "$t" /etc/docker/server-key.pem')
    expect(configure.indexOf('server-key.pem')).toBeLessThan(configure.indexOf('systemctl restart docker'))
    // The key travels on stdin only, never on a command line.
    expect(host.execs.some((c) => c.includes('KEY'))).toBe(false)
  })

  it('as root: no sudo, the same two commands', async () => {
    const host = new FakeHost()
    await expect(bootstrapHost(input(host, 'root'))).rejects.toThrow(/stop before the engine check/)
    expect(host.execs.filter((c) => c.includes('sudo'))).toEqual([])
    expect(host.execs).toHaveLength(2)
    firstFiles(host.stdins[1]!)
    expect(host.execs[1]!.startsWith('(hostnamectl set-hostname node1')).toBe(true)
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
    const configure = host.execs.at(-1)!
    // ca, daemon.json, drop-in: not the cert and key
    expect(configure).toContain(ENGINE_PATHS.daemonJson)
    expect(configure).not.toContain(ENGINE_PATHS.cert)
    expect(configure).not.toContain(ENGINE_PATHS.key)
    expect(host.stdins.at(-1)).not.toContain('CERT')
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
