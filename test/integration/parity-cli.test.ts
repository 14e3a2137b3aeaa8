import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {HostRecord} from '../../src/store/types.js'
import {serveAptRepo, type AptRepo} from '../helpers/apt-repo.js'
import {belt, repoRoot} from '../helpers/cli.js'
import {sleepImageTar} from '../helpers/image.js'

/**
 * docker-machine's commands and flag names through the built CLI, on two real local hosts (a
 * manager and a worker of one swarm): create -d with --engine-env, config/url/version/active read
 * back with the real docker CLI, ls --format/--filter/DOCKER, env --no-proxy, --storage-path and
 * MACHINE_STORAGE_PATH, completion, and upgrade's drain -> restart -> reactivate on the worker.
 */

const run = promisify(execFile)
const SUBNET = '10.227.0.0/16'
const GATEWAY = '10.227.0.1'
const DEB_DIR = path.join(repoRoot, '.belt-test', 'debs')
const PROXY = 'http://10.227.0.1:3128'
// A value with every character systemd's quoting must carry: quotes, backslash, %, $ and spaces.
const NO_PROXY = 'a.example,b "q" \\ 100% $HOME'

let tmp: string
let store: string
let repo: AptRepo | undefined
let dockerConfig: string
const address: Record<string, string> = {}
const role: Record<string, string> = {}
/** Which host became the manager is the formation's choice (the first engine ready). */
let manager: string
let worker: string

const b = (args: string[], env?: NodeJS.ProcessEnv) => belt(args, {store, env})
/** The real docker CLI pointed at a host by `belt config`. */
async function docker(host: string, args: string[]): Promise<string> {
  const cfg = await b(['config', host])
  expect(cfg.code, cfg.stderr).toBe(0)
  const out = await run('docker', [...cfg.stdout.trim().split('\n'), ...args], {env: {PATH: process.env.PATH, DOCKER_CONFIG: dockerConfig}})
  return out.stdout.trim()
}
const inspect = async (name: string): Promise<HostRecord> => JSON.parse((await b(['inspect', name])).stdout) as HostRecord
/** The dockerd pid of a local host (its systemctl shim's pid file). */
const dockerdPid = async (name: string) => (await b(['ssh', name, '--', 'cat', '/var/run/docker-ssd.pid'])).stdout.trim()

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-parity-'))
  store = path.join(tmp, 'store')
  dockerConfig = path.join(tmp, 'docker')
})

afterAll(async () => {
  if (!tmp) return
  await repo?.close()
  // A safety net for a run that stopped half-way; the last test does (and checks) the teardown.
  await belt(['rm', '-y', '--force', 'par*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

describe("docker-machine's commands and names, on real local hosts", () => {
  it('create -d local --engine-env --engine-label --swarm: a manager and a worker', async () => {
    const r = await b([
      'create', '-d', 'local', '--local-subnet', SUBNET, '--swarm', '--managers', '1',
      '--engine-env', `HTTP_PROXY=${PROXY}`, '--engine-env', `NO_PROXY=${NO_PROXY}`, '--engine-label', 'tier=web',
      'par1', 'par2',
    ])
    expect(r.code, r.stderr).toBe(0)
    for (const n of ['par1', 'par2']) {
      const rec = await inspect(n)
      address[n] = rec.machine!.address
      role[n] = rec.swarm!.role!
      expect(rec.engine?.config.env).toEqual([`HTTP_PROXY=${PROXY}`, `NO_PROXY=${NO_PROXY}`])
    }
    expect(Object.values(role).sort()).toEqual(['manager', 'worker'])
    manager = role.par1 === 'manager' ? 'par1' : 'par2'
    worker = manager === 'par1' ? 'par2' : 'par1'
  }, 400_000)

  it('--engine-env reaches the engine exactly (docker info through `docker $(belt config NAME)`)', async () => {
    expect(await docker('par2', ['info', '--format', '{{.HTTPProxy}}|{{.NoProxy}}'])).toBe(`${PROXY}|${NO_PROXY}`)
    const unit = await b(['ssh', 'par2', '--', 'cat', '/etc/systemd/system/docker.service.d/10-belt.conf'])
    expect(unit.stdout).toContain(`Environment="HTTP_PROXY=${PROXY}"\n`)
    expect(unit.stdout).toContain('Environment="NO_PROXY=a.example,b \\"q\\" \\\\ 100%% $HOME"\n')
  })

  it('a bad --engine-env is refused at parsing: one line, exit 2', async () => {
    const r = await b(['create', '-d', 'local', '--local-subnet', SUBNET, '--engine-env', 'NOT-A-NAME=x', 'par3'])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/--engine-env: "NOT-A-NAME" is not an environment variable name/)
    expect((await b(['ls', '-q'])).stdout.split('\n').filter(Boolean)).toEqual(['par1', 'par2'])
  })

  it("MACHINE_DRIVER names the driver when --driver and BELT_DRIVER do not; a Machine-only driver is a usage error", async () => {
    const r = await b(['create', '--local-subnet', SUBNET, 'par3'], {MACHINE_DRIVER: 'virtualbox', BELT_DRIVER: undefined})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: MACHINE_DRIVER=virtualbox: belt has no such driver; choose one of local, /)
    const nb = await b(['create', '--local-subnet', SUBNET, '--no-bootstrap', '--engine-label', 'x=y', 'par3'], {MACHINE_DRIVER: 'local', BELT_DRIVER: undefined})
    expect(nb.code, nb.stderr).toBe(0)
    expect((await inspect('par3')).driver).toBe('local')
    const rm3 = await b(['rm', '-y', '--force', 'par3'])
    expect(rm3.code, rm3.stderr).toBe(0)
  }, 300_000)

  it('url, version NAME and version: the engine as the docker CLI sees it', async () => {
    const url = await b(['url', 'par1'])
    expect(url.stdout).toBe(`tcp://${address.par1}:2376\n`)
    const server = await docker('par1', ['version', '--format', '{{.Server.Version}}'])
    const v = await b(['version', 'par1'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stdout).toBe(`${server}\n`)
    const plain = await b(['version'])
    const flag = await b(['--version'])
    expect(plain.stdout).toBe(flag.stdout)
    expect(plain.stdout).toMatch(/^@belt-cli\/belt\/\d+\.\d+\.\d+ linux-\w+ node-v\d+/)
    const none = await b(['version', 'nope'])
    expect(none.code).toBe(3)
  })

  it('active: the host DOCKER_HOST points at, else "No active host found" and exit 1', async () => {
    const env = await b(['env', '--shell', 'bash', 'par2'])
    const dockerHost = /^export DOCKER_HOST="(.*)"$/m.exec(env.stdout)![1]!
    const a = await b(['active'], {DOCKER_HOST: dockerHost})
    expect(a.code, a.stderr).toBe(0)
    expect(a.stdout).toBe('par2\n')
    for (const dh of ['', 'tcp://10.227.255.254:2376']) {
      const r = await b(['active'], {DOCKER_HOST: dh})
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^Error: No active host found/)
    }
  })

  it('env --no-proxy adds the host to NO_PROXY', async () => {
    const r = await b(['env', '--shell', 'bash', '--no-proxy', 'par1'], {NO_PROXY: 'localhost', no_proxy: undefined})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`export NO_PROXY="localhost,${address.par1}"\n`)
    expect(r.stdout).toContain('# eval "$(belt env --shell bash --no-proxy par1)"')
  })

  it('ls: DOCKER column, --format with Machine placeholders, --filter label=, -f table', async () => {
    const server = await docker('par1', ['version', '--format', '{{.Server.Version}}'])
    const ls = await b(['ls'])
    expect(ls.code, ls.stderr).toBe(0)
    expect(ls.stdout.split('\n')[0]).toMatch(/^NAME\s+DRIVER\s+STATE\s+URL\s+SWARM\s+DOCKER\s+ERRORS$/)
    expect(ls.stdout).toMatch(new RegExp(`^par1\\s+local\\s+Running\\s+tcp://${address.par1}:2376\\s+${role.par1}\\s+v${server.replace(/[.+]/g, '\\$&')}$`, 'm'))
    const f = await b(['ls', '--format', '{{.Name}} {{.Active}} {{.DriverName}} {{.State}} {{.URL}} {{.Swarm}} {{.DockerVersion}}'], {DOCKER_HOST: `tcp://${address.par2}:2376`})
    expect(f.stdout).toBe(`par1 - local Running tcp://${address.par1}:2376 ${role.par1} v${server}\npar2 * local Running tcp://${address.par2}:2376 ${role.par2} v${server}\n`)
    const t = await b(['ls', '-f', 'table {{.Name}}\\t{{.ResponseTime}}', '--filter', 'label=tier=web', '--filter', 'swarm=worker'])
    expect(t.stdout).toMatch(new RegExp(`^NAME\\s+RESPONSE\n${worker}\\s+\\d+ms\n$`))
    expect((await b(['ls', '-q', '--filter', 'label=tier=db'])).stdout).toBe('')
    const bad = await b(['ls', '--format', '{{.Nope}}'])
    expect(bad.code).toBe(2)
  })

  it('ls: an engine that does not answer is Unknown in DOCKER with the reason; the host stays Running', async () => {
    const stop = await b(['ssh', worker, '--', 'systemctl', 'stop', 'docker'])
    expect(stop.code, stop.stderr).toBe(0)
    try {
      const ls = await b(['ls', '--timeout', '5', '--format', '{{.Name}}|{{.State}}|{{.DockerVersion}}|{{.Error}}'])
      expect(ls.code, ls.stderr).toBe(0)
      expect(ls.stdout).toMatch(new RegExp(`^${worker}\\|Running\\|Unknown\\|engine version: .*(ECONNREFUSED|refused)`, 'm'))
      expect(ls.stdout).toMatch(new RegExp(`^${manager}\\|Running\\|v`, 'm'))
    } finally {
      const start = await b(['ssh', worker, '--', 'systemctl', 'start', 'docker'])
      expect(start.code, start.stderr).toBe(0)
    }
  })

  it("--storage-path and MACHINE_STORAGE_PATH name the store, as docker-machine's do", async () => {
    const flag = await belt(['ls', '-q', '--storage-path', store], {store: path.join(tmp, 'other')})
    expect(flag.stdout).toBe('par1\npar2\n')
    const env = await belt(['ip', 'par1'], {store: '', env: {BELT_STORE: undefined, MACHINE_STORAGE_PATH: store}})
    expect(env.code, env.stderr).toBe(0)
    expect(env.stdout).toBe(`${address.par1}\n`)
  })

  it('completion: the kept oclif plugin builds bash and zsh completion from the manifest, new commands and flags included', async () => {
    const cache = path.join(tmp, 'cache')
    const r = await b(['autocomplete', '--refresh-cache'], {XDG_CACHE_HOME: cache})
    expect(r.code, r.stderr).toBe(0)
    const bash = await readFile(path.join(cache, 'belt', 'autocomplete', 'functions', 'bash', 'belt.bash'), 'utf8')
    expect(bash).toMatch(/^ls .*--format/m)
    expect(bash).toMatch(/^create .*--engine-env/m)
    for (const c of ['active', 'url', 'config', 'version', 'upgrade']) expect(bash).toMatch(new RegExp(`^${c} `, 'm'))
    expect(await readdir(path.join(cache, 'belt', 'autocomplete', 'functions', 'zsh'))).toEqual(['_belt'])
    const fish = await b(['completion', 'fish'])
    expect(fish.code, fish.stderr).toBe(0)
    expect(fish.stdout).toContain("complete -c belt -n '__belt_path_is' -a 'upgrade'")
    expect(fish.stdout).toContain("complete -c belt -n '__belt_path_starts ls' -l format -s f -r")
    expect(fish.stdout).toContain("complete -c belt -n '__belt_path_starts upgrade' -a '(belt ls -q 2>/dev/null)'")
  })

  it('upgrade WORKER: drained, engine upgraded through apt and restarted, Ready, active again', {timeout: 300_000}, async () => {
    const debs = existsSync(DEB_DIR) ? (await readdir(DEB_DIR)).filter((f) => f.endsWith('.deb')) : []
    if (debs.length === 0) throw new Error(`no .deb in ${DEB_DIR}: run bash scripts/setup.sh (it downloads it once)`)
    // The host's apt sees only a repository served by this test (tests never reach the internet).
    repo = await serveAptRepo(DEB_DIR, GATEWAY)
    const sources = path.join(tmp, 'sources.list')
    await writeFile(sources, `${repo.sourcesLine}\n`)
    expect((await b(['scp', sources, `${worker}:/etc/apt/sources.list`])).code).toBe(0)
    const setup = await b(['ssh', worker, '--', 'sh', '-c', `rm -f /etc/apt/sources.list.d/* && echo 'Acquire::http::Proxy::${GATEWAY} "DIRECT";' > /etc/apt/apt.conf.d/99belt-test-repo`])
    expect(setup.code, setup.stderr).toBe(0)

    // A service with tasks on both nodes: the drain must move the worker's away before its engine restarts.
    const tar = sleepImageTar(tmp)
    for (const h of [manager, worker]) await docker(h, ['import', tar, 'belt-sleep:1'])
    await docker(manager, ['service', 'create', '--detach', '--name', 'sleeper', '--replicas', '4', '--no-resolve-image', 'belt-sleep:1', '/usr/bin/sleep', '1000000'])
    const running = async () => (await docker(manager, ['service', 'ps', 'sleeper', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}'])).split('\n').filter((l) => / Running /.test(l)).map((l) => l.split(' ')[0])
    for (let i = 0; i < 120 && !((await running()).length === 4 && (await running()).includes(worker)); i++) await new Promise((r) => setTimeout(r, 500))
    expect((await running()).filter((n) => n === worker).length).toBeGreaterThan(0)

    const pidBefore = await dockerdPid(worker)
    const since = Math.floor(Date.now() / 1000) - 1
    const r = await b(['upgrade', worker])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${worker}: `))
    const order = [`drained (through ${manager})`, 'waiting for ', 'upgrading and restarting the engine', 'Ready in the swarm again', 'active again', 'upgraded: engine ']
    const idx = order.map((o) => lines.findIndex((l) => l.startsWith(`${worker}: ${o}`)))
    expect(idx.every((x) => x >= 0), r.stderr).toBe(true)
    expect([...idx].sort((x, y) => x - y)).toEqual(idx)
    expect(r.stderr).toMatch(/^Upgraded 1 of 1 host/m)

    // apt in the host really asked the repository; the engine really restarted.
    expect(repo.requests.some((q) => q.remoteAddress === address[worker] && q.path === '/Packages' && q.status === 200)).toBe(true)
    expect(await dockerdPid(worker)).not.toBe(pidBefore)
    // The swarm saw drain, then active, for the worker's node (docker events on the manager), and it is back.
    const nodeId = (await inspect(worker)).swarm!.nodeId!
    const events = await docker(manager, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000)), '--filter', 'type=node', '--filter', `node=${nodeId}`, '--format', '{{index .Actor.Attributes "availability.new"}}'])
    expect(events.split('\n').filter(Boolean)).toEqual(['drain', 'active'])
    expect(await docker(manager, ['node', 'inspect', nodeId, '--format', '{{.Spec.Availability}} {{.Status.State}}'])).toBe('active ready')
    // The service kept its 4 replicas, all on the manager now (a swarm does not move tasks back on its own).
    expect(await running()).toEqual([manager, manager, manager, manager])
    // The engine's environment survived the restart.
    expect(await docker(worker, ['info', '--format', '{{.HTTPProxy}}'])).toBe(PROXY)
  })

  it('rm -y --force removes both hosts and their namespaces', async () => {
    await repo?.close()
    repo = undefined
    const r = await b(['rm', '-y', '--force', 'par*'])
    expect(r.code, r.stderr).toBe(0)
    expect((await b(['ls', '-q'])).stdout).toBe('')
    const netns = (await run('ip', ['netns', 'list'])).stdout
    expect(netns).not.toMatch(/10-227/)
  })
})
