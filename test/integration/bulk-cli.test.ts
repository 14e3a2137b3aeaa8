/**
 * The bulk paths through the built CLI against a DigitalOcean emulator (in this process, 127.0.0.1,
 * simulated backing: a banner on port 22 of a loopback address, which needs root like the other
 * emulator tests): `belt ls` reads 12 droplets with one tag list and no GET per droplet; with the API
 * gone, `ls` shows Unknown with the reason (never Error) within `--timeout`, and `status` exits 5;
 * `belt rm -y '*'` deletes the cluster with ONE delete by tag and its records after the list
 * confirms it.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {memoryContext} from '../../drivers/digitalocean/emulator/context.js'
import {startEmulator, type EmulatorHandle, type Exchange} from '../../drivers/digitalocean/emulator/server.js'
import {createSimulatedBacking} from '../../drivers/digitalocean/emulator/simulated-backing.js'
import {belt} from '../helpers/cli.js'

const TOKEN = 'dop_v1_bulk_cli_test_token'
let tmp: string
let store: string
let emu: EmulatorHandle
const exchanges: Exchange[] = []

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-bulk-cli-'))
  store = path.join(tmp, 'store')
  emu = await startEmulator({
    backing: createSimulatedBacking({octet: 84}),
    backingContext: memoryContext(),
    bootDelayMs: 100,
    actionDelayMs: 20,
    rateLimit: {perHour: 1_000_000, perMinute: 100_000},
    onExchange: (ex) => exchanges.push(ex),
  })
})

afterAll(async () => {
  await belt(['rm', '-y', '--force', '*'], {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN, DIGITALOCEAN_API_URL: ''}}).catch(() => undefined)
  await emu?.close()
  await rm(tmp, {recursive: true, force: true})
})

const run = (args: string[]) => belt(args, {store, env: {DIGITALOCEAN_ACCESS_TOKEN: TOKEN, DIGITALOCEAN_API_URL: ''}})
const since = (from: number, method: string, p: string | RegExp) => exchanges.slice(from).filter((x) => x.method === method && (typeof p === 'string' ? x.path === p : p.test(x.path)))

describe('bulk state and removal through the CLI', () => {
  it('create --count 12: readiness by tag lists; ls reads all with one list and no GET per droplet', async () => {
    const c = await run(['create', '--driver', 'digitalocean', '--digitalocean-api-url', emu.url, '--count', '12', '--prefix', 'bulk', '--no-bootstrap'])
    expect(c.code, c.stderr).toBe(0)
    expect(since(0, 'GET', /^\/v2\/droplets\/\d+$/)).toEqual([])
    const from = exchanges.length
    const ls = await run(['ls', '--json'])
    expect(ls.code, ls.stderr).toBe(0)
    const rows = JSON.parse(ls.stdout) as Array<{name: string; state: string; errors: string[]}>
    expect(rows).toHaveLength(12)
    expect(rows.every((r) => r.state === 'Running' && r.errors.length === 0)).toBe(true)
    expect(since(from, 'GET', /^\/v2\/droplets/).map((x) => `${x.path}?tag_name=${x.query.tag_name}`)).toEqual(['/v2/droplets?tag_name=belt-cluster-default'])
    const st = await run(['status', 'bulk3'])
    expect(st.code, st.stderr).toBe(0)
    expect(st.stdout.trim()).toBe('Running')
  }, 120_000)

  it('an API that does not answer: ls shows Unknown with the reason within --timeout, status exits 5', async () => {
    // A listener that accepts and never answers stands for a hung API: point the records at it.
    const net = await import('node:net')
    const sockets: import('node:net').Socket[] = []
    const hung = net.createServer((s) => void sockets.push(s))
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()))
    const port = (hung.address() as import('node:net').AddressInfo).port
    const {readdir, readFile, writeFile} = await import('node:fs/promises')
    const dir = path.join(store, 'hosts')
    const originals = new Map<string, string>()
    for (const f of await readdir(dir)) {
      if (!f.endsWith('.json')) continue
      const text = await readFile(path.join(dir, f), 'utf8')
      originals.set(f, text)
      await writeFile(path.join(dir, f), text.split(emu.url).join(`http://127.0.0.1:${port}`))
    }
    try {
      const ls = await run(['ls', '--json', '--timeout', '2'])
      expect(ls.code, ls.stderr).toBe(0)
      const rows = JSON.parse(ls.stdout) as Array<{state: string; errors: string[]}>
      expect(rows.map((r) => r.state)).toEqual(rows.map(() => 'Unknown'))
      expect(rows[0]!.errors.join()).toMatch(/not read within 2 s|timed out|aborted/i)
      const st = await run(['status', 'bulk1'])
      expect(st.code).toBe(5)
    } finally {
      for (const [f, text] of originals) await writeFile(path.join(dir, f), text)
      for (const s of sockets) s.destroy()
      hung.close()
    }
  }, 120_000)

  it("rm -y '*' deletes the whole cluster with ONE delete by tag, then the records and the cluster's key and firewall", async () => {
    const from = exchanges.length
    const r = await run(['rm', '-y', '*'])
    expect(r.code, r.stderr).toBe(0)
    expect(since(from, 'DELETE', /^\/v2\/droplets\/\d+$/)).toEqual([])
    expect(since(from, 'DELETE', '/v2/droplets').map((x) => x.query.tag_name)).toEqual(['belt-cluster-default'])
    expect(emu.droplets()).toEqual([])
    expect(emu.firewalls()).toEqual([])
    const ls = await run(['ls', '--json'])
    expect(JSON.parse(ls.stdout)).toEqual([])
  }, 120_000)
})
