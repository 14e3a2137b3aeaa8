/**
 * End to end on a real host: `belt emulator digitalocean` backed by the local driver (one droplet =
 * one network namespace with its own sshd and dockerd, on this test's subnet 10.228.0.0/16),
 * `belt create --swarm --open-port 8080`, an image loaded without a registry, a swarm service
 * published on 8080, and a plain HTTP request to the droplet's address. The emulator does not filter
 * traffic by its firewall (the hosts' bridge reaches every port), so what the published rule is
 * worth is checked in the firewall itself; this test checks that the whole path works together.
 * The machine's kernel has no IPVS, so the service publishes in host mode (see README, Images).
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, repoRoot} from '../helpers/cli.js'
import {startEmulator, type RunningEmulator} from '../helpers/emulator.js'

const run = promisify(execFile)
const TOKEN = 'ports-service-test-token'
const tmp = mkdtempSync(path.join(os.tmpdir(), 'belt-ports-svc-'))
const store = path.join(tmp, 'store')
let emulator: RunningEmulator
let url: string
const env = () => ({DIGITALOCEAN_ACCESS_TOKEN: TOKEN, DIGITALOCEAN_API_URL: url})

beforeAll(async () => {
  emulator = await startEmulator('digitalocean', ['--local-subnet', '10.228.0.0/16', '--boot-delay', '200'], path.join(tmp, 'emulator-store'))
  url = emulator.url
}, 60_000)

afterAll(async () => {
  await belt(['rm', '-y', '--force', '*'], {store, env: env()}).catch(() => undefined)
  await emulator?.stop()
  rmSync(tmp, {recursive: true, force: true})
}, 120_000)

describe('a service published with --open-port', () => {
  it('answers on the droplet address, and the firewall holds the rule', async () => {
    const created = await belt(['create', '--driver', 'digitalocean', '--cluster', 'svc', '--count', '1', '--prefix', 'svc', '--swarm', '--open-port', '8080'], {store, env: env()})
    expect(created.code, created.stderr).toBe(0)
    const ls = await belt(['ports', 'ls', '--cluster', 'svc', '--json'], {store, env: env()})
    expect(JSON.parse(ls.stdout)[0].rules.filter((r: {role: string}) => r.role === 'published')).toEqual([{protocol: 'tcp', ports: '8080', sources: ['0.0.0.0/0', '::/0'], role: 'published'}])

    const archive = path.join(tmp, 'busybox.tar')
    await run('bash', [path.join(repoRoot, 'scripts/busybox-image.sh'), archive, 'belt/busybox:latest'])
    const loaded = await belt(['image', 'load', archive, 'svc1'], {store, env: env()})
    expect(loaded.code, loaded.stderr).toBe(0)

    const envOut = await belt(['env', 'svc1'], {store, env: env()})
    const dockerEnv: Record<string, string> = {}
    for (const m of envOut.stdout.matchAll(/export (\w+)="([^"]*)"/g)) dockerEnv[m[1]!] = m[2]!
    expect(dockerEnv.DOCKER_HOST).toMatch(/^tcp:\/\/10\.228\./)
    await run('docker', ['service', 'create', '--detach=false', '--quiet', '--name', 'hello', '--mode', 'global', '-p', 'published=8080,target=8080,mode=host', 'belt/busybox:latest', 'httpd', '-f', '-p', '8080'], {
      env: {...process.env, ...dockerEnv},
      timeout: 180_000,
    })
    const address = (await belt(['ip', 'svc1'], {store, env: env()})).stdout.trim()
    const res = await fetch(`http://${address}:8080/`, {signal: AbortSignal.timeout(10_000)})
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('belt busybox httpd')
  }, 420_000)
})
