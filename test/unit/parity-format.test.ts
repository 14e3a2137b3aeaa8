import {execFile} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'
import {dropIn, engineEnvProblem, systemdEnvironment, upgradeScript, emptyEngineConfig} from '../../src/bootstrap/commands.js'
import {parseFilters, type HostView} from '../../src/services/list-hosts.js'
import {activeHost, configArgs, engineVersions, noProxyVariable, normalizeDockerHost} from '../../src/services/machine-info.js'
import {Store} from '../../src/store/store.js'
import type {HostRecord} from '../../src/store/types.js'
import {parseLsFormat, renderLsFormat} from '../../src/ui/ls-format.js'
import {UserError} from '../../src/errors.js'
import {repoRoot} from '../helpers/cli.js'

const run = promisify(execFile)

const view = (name: string, o: Partial<HostView> = {}): HostView => ({name, driver: 'local', cluster: 'default', state: 'Running', phase: 'bootstrapped', labels: [], active: false, errors: [], ...o})
const rec = (name: string, url?: string): HostRecord =>
  ({name, cluster: 'default', driver: 'local', phase: url ? 'bootstrapped' : 'created', ...(url ? {engine: {url, config: emptyEngineConfig()}} : {})}) as unknown as HostRecord

describe('ls --format', () => {
  const hosts = [
    view('node1', {url: 'tcp://10.0.0.2:2376', active: true, dockerVersion: '20.10.24', responseMs: 7, swarm: 'manager'}),
    view('node10', {state: 'Stopped', dockerVersion: ''}),
    view('n3', {state: 'Unknown', dockerVersion: 'Unknown', errors: ['engine version: ECONNREFUSED']}),
  ]
  it("prints Machine's placeholders line by line, with spaces inside braces and \\t escapes", () => {
    const f = parseLsFormat('{{.Name}}\\t{{ .Active }} {{.DriverName}} {{.State}} {{.URL}} {{.Swarm}} {{.DockerVersion}} {{.ResponseTime}} {{.Error}}')
    expect(renderLsFormat(f, hosts)).toBe(
      'node1\t* local Running tcp://10.0.0.2:2376 manager v20.10.24 7ms \n' + 'node10\t- local Stopped     \n' + 'n3\t- local Unknown   Unknown  engine version: ECONNREFUSED\n',
    )
    expect([...f.fields].sort()).toEqual(['Active', 'DockerVersion', 'DriverName', 'Error', 'Name', 'ResponseTime', 'State', 'Swarm', 'URL'])
  })
  it('table: aligned columns under the headers; a bare "table" is the default columns', () => {
    expect(renderLsFormat(parseLsFormat('table {{.Name}}\\t{{.DockerVersion}}'), hosts)).toBe('NAME     DOCKER\nnode1    v20.10.24\nnode10\nn3       Unknown\n')
    expect(renderLsFormat(parseLsFormat('table'), hosts).split('\n')[0]).toMatch(/^NAME\s+ACTIVE\s+DRIVER\s+STATE\s+URL\s+SWARM\s+DOCKER\s+ERRORS$/)
  })
  it('an unknown placeholder or template syntax is a usage error naming the fields', () => {
    for (const bad of ['{{.Nope}}', '{{json .}}', '{{.Name', 'x }} y']) {
      const e = (() => {
        try {
          parseLsFormat(bad)
        } catch (err) {
          return err
        }
      })()
      expect(e, bad).toBeInstanceOf(UserError)
      expect((e as UserError).exit).toBe(2)
    }
    expect(() => parseLsFormat('{{.Nope}}')).toThrow(/unknown placeholder \{\{\.Nope\}\}/)
  })
})

describe('ls --filter', () => {
  const hosts = [
    view('web1', {labels: ['provider=local', 'tier=web'], swarm: 'manager'}),
    view('web2', {labels: ['provider=local', 'tier=web'], state: 'Stopped', swarm: 'worker'}),
    view('db1', {labels: ['provider=local', 'tier=db', 'ssd'], driver: 'digitalocean'}),
  ]
  const names = (filters: string[]) => hosts.filter((h) => parseFilters(filters).every((f) => f(h))).map((h) => h.name)
  it('label=KEY and label=KEY=VALUE, as docker-machine', () => {
    expect(names(['label=tier=web'])).toEqual(['web1', 'web2'])
    expect(names(['label=tier'])).toEqual(['web1', 'web2', 'db1'])
    expect(names(['label=ssd'])).toEqual(['db1'])
    expect(names(['label=tier=we'])).toEqual([])
  })
  it('several values of one key match any; different keys all apply', () => {
    expect(names(['state=running', 'state=stopped'])).toEqual(['web1', 'web2', 'db1'])
    expect(names(['state=running', 'label=tier=web'])).toEqual(['web1'])
    expect(names(['swarm=worker'])).toEqual(['web2'])
    expect(names(['driver=local', 'name=web*'])).toEqual(['web1', 'web2'])
  })
  it('an unknown key is a usage error', () => {
    expect(() => parseFilters(['colour=red'])).toThrow(/unknown filter 'colour=red'/)
    expect(() => parseFilters(['label='])).toThrow(/empty label filter/)
  })
})

describe('active, config, env --no-proxy', () => {
  it('DOCKER_HOST matches a record whatever its case, default port or trailing slash', () => {
    const records = [rec('a', 'tcp://10.0.0.2:2376'), rec('b', 'tcp://10.0.0.3:2376'), rec('c')]
    expect(activeHost(records, 'tcp://10.0.0.3:2376')?.name).toBe('b')
    expect(activeHost(records, 'TCP://10.0.0.3/')?.name).toBe('b')
    expect(activeHost(records, 'tcp://10.0.0.3:2375')).toBeUndefined()
    expect(activeHost(records, 'unix:///var/run/docker.sock')).toBeUndefined()
    expect(activeHost(records, undefined)).toBeUndefined()
    expect(normalizeDockerHost('tcp://[fd00::1]:2376')).toBe('tcp://fd00::1:2376')
  })
  it("config prints docker's TLS flags with the store's client certificate, and refuses a path the shell would split", () => {
    const store = new Store('/var/lib/belt')
    expect(configArgs(rec('a', 'tcp://10.0.0.2:2376'), store)).toEqual([
      '--tlsverify',
      '--tlscacert=/var/lib/belt/certs/ca.pem',
      '--tlscert=/var/lib/belt/certs/cert.pem',
      '--tlskey=/var/lib/belt/certs/key.pem',
      '-H=tcp://10.0.0.2:2376',
    ])
    expect(() => configArgs(rec('a', 'tcp://10.0.0.2:2376'), new Store('/my belt'))).toThrow(/characters the shell would split/)
    expect(() => configArgs(rec('c'), store)).toThrow(/c has no engine yet/)
  })
  it('--no-proxy adds the address once to the variable the environment uses', () => {
    expect(noProxyVariable({}, '10.0.0.2')).toEqual(['NO_PROXY', '10.0.0.2'])
    expect(noProxyVariable({NO_PROXY: 'localhost, .corp'}, '10.0.0.2')).toEqual(['NO_PROXY', 'localhost,.corp,10.0.0.2'])
    expect(noProxyVariable({no_proxy: 'localhost,10.0.0.2'}, '10.0.0.2')).toEqual(['no_proxy', 'localhost,10.0.0.2'])
  })
})

describe('DOCKER column: engineVersions', () => {
  it('asks running bootstrapped hosts only, through a bounded window; an engine that fails or hangs is Unknown with the reason, within the bound', async () => {
    const records = [rec('up1', 'tcp://10.0.0.1:2376'), rec('down', 'tcp://10.0.0.2:2376'), rec('raw'), rec('hang', 'tcp://10.0.0.4:2376'), rec('bad', 'tcp://10.0.0.5:2376'), rec('up2', 'tcp://10.0.0.6:2376')]
    const asked: string[] = []
    let inFlight = 0
    let peak = 0
    const out = await engineVersions(records, [true, false, true, true, true, true], {
      timeoutMs: 300,
      concurrency: 2,
      tls: async () => ({ca: 'ca', cert: 'c', key: 'k'}),
      read: async (r) => {
        asked.push(r.name)
        peak = Math.max(peak, ++inFlight)
        try {
          if (r.name === 'hang') return await new Promise<never>(() => {})
          if (r.name === 'bad') throw new Error('connect ECONNREFUSED 10.0.0.5:2376')
          return {version: '20.10.24', ms: 3}
        } finally {
          inFlight--
        }
      },
    })
    expect(asked.sort()).toEqual(['bad', 'hang', 'up1', 'up2'])
    expect(peak).toBeLessThanOrEqual(2)
    expect(out).toEqual([
      {version: '20.10.24', ms: 3},
      {version: ''},
      {version: ''},
      {version: 'Unknown', error: 'engine version not read within 0.30 s'},
      {version: 'Unknown', error: 'engine version: connect ECONNREFUSED 10.0.0.5:2376'},
      {version: '20.10.24', ms: 3},
    ])
  })
  it('no client certificate: every engine Unknown with that reason, none called', async () => {
    const out = await engineVersions([rec('a', 'tcp://10.0.0.1:2376')], [true], {
      timeoutMs: 1000,
      tls: async () => {
        throw new Error('the store has no client certificate')
      },
      read: async () => {
        throw new Error('must not be called')
      },
    })
    expect(out).toEqual([{version: 'Unknown', error: 'the store has no client certificate'}])
  })
})

describe('--engine-env', () => {
  it('refuses what systemd cannot take: no KEY, a bad name, control characters', () => {
    expect(engineEnvProblem('HTTP_PROXY=http://10.0.0.1:3128')).toBeUndefined()
    expect(engineEnvProblem('EMPTY=')).toBeUndefined()
    expect(engineEnvProblem('novalue')).toMatch(/expected KEY=VALUE/)
    expect(engineEnvProblem('=x')).toMatch(/expected KEY=VALUE/)
    expect(engineEnvProblem('1X=y')).toMatch(/not an environment variable name/)
    expect(engineEnvProblem('A-B=y')).toMatch(/not an environment variable name/)
    expect(engineEnvProblem('A=x\ny')).toMatch(/control character/)
    expect(() => systemdEnvironment('A=x\n[Service]')).toThrow(/--engine-env/)
  })
  it('quotes for systemd: one Environment= line per variable, " and \\ escaped, % doubled, $ kept', () => {
    expect(systemdEnvironment('A=b "q" \\ 100% $HOME')).toBe('Environment="A=b \\"q\\" \\\\ 100%% $HOME"')
    const unit = dropIn('/usr/bin/dockerd', '[Service]\nExecStart=\nExecStart={{DOCKERD}} -H tcp://0.0.0.0:{{PORT}}\n', ['HTTP_PROXY=http://10.0.0.1:3128', 'NO_PROXY=a,b'])
    expect(unit).toBe('[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376\nEnvironment="HTTP_PROXY=http://10.0.0.1:3128"\nEnvironment="NO_PROXY=a,b"\n')
    expect(dropIn('/usr/bin/dockerd', 'ExecStart={{DOCKERD}} {{PORT}}\n')).toBe('ExecStart=/usr/bin/dockerd 2376\n')
  })
  it("the local hosts' systemctl shim reads the values back exactly as given", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'belt-parity-env-'))
    try {
      const values = ['HTTP_PROXY=http://10.0.0.1:3128', 'A=b "q" \\ 100% $HOME `x` \'y\'', 'SPACES=  a  b  ', 'EMPTY=']
      const conf = path.join(dir, '10-belt.conf')
      await writeFile(conf, dropIn('/usr/bin/dockerd', '[Service]\nExecStart=\nExecStart={{DOCKERD}} {{PORT}}\n', values))
      const shim = await readFile(path.join(repoRoot, 'templates', 'local', 'systemctl'), 'utf8')
      const fn = /^docker_env\(\) \{[\s\S]*?^\}$/m.exec(shim)![0].replace('/etc/systemd/system/docker.service.d/*.conf', conf)
      const out = await run('bash', ['-c', `${fn}\ndocker_env`])
      expect(out.stdout.split('\0').slice(0, -1)).toEqual(values)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('upgrade script', () => {
  it('upgrades only the engine packages apt installed, then restarts the engine; an install URL runs its script again', async () => {
    const apt = upgradeScript({...emptyEngineConfig(), installProxy: 'http://10.0.0.1:3142'}, {script: ''})
    expect(apt).toMatch(/apt-get -o Acquire::http::Proxy='?http:\/\/10\.0\.0\.1:3142'? -o DPkg::Lock::Timeout=300 install -y -q --only-upgrade .* \$pkgs\n/)
    expect(apt).toMatch(/systemctl restart docker\n$/)
    await run('sh', ['-n', '-c', apt])
    const template = await readFile(path.join(repoRoot, 'templates', 'engine', 'install-script.sh'), 'utf8')
    const script = upgradeScript({...emptyEngineConfig(), installUrl: 'https://get.docker.com'}, {script: template})
    expect(script).toMatch(/^url='?https:\/\/get\.docker\.com'?$/m)
    expect(script).toMatch(/sh "\$installer"\nsystemctl daemon-reload; .*systemctl restart docker\n$/)
    await run('sh', ['-n', '-c', script])
  })
})
