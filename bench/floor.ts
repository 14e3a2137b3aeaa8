/**
 * The CPU floor of one host in `belt create --swarm`: what each protocol step that every host needs
 * costs Belt's process, measured one at a time against ONE real local host (its own sshd and
 * dockerd with mutual TLS), with the project's own code paths:
 *
 * - an SSH handshake with the cluster key and the pinned host keys (ssh2), then closing it;
 * - one command on an open connection, with 6 KB on its stdin (the configure step sends the files);
 * - a new mutual-TLS connection to the engine and one `GET /info` on it (a fresh keep-alive agent,
 *   as Belt makes one per engine);
 * - one more `GET /info` on a kept-alive connection;
 * - one record update in the store (lock, read, write to a temp file, fsync, rename);
 * - one server certificate (key pair and signature).
 *
 * It prints each step's CPU (user + system of this process, all threads, median of 5 rounds) and
 * the sum for the steps one host of `create --swarm` takes (the counts are the pipeline's per host,
 * printed beside them). Quiet machine needed; run as root after `npm run build`:
 *
 *   node dist/bench/floor.js [--rounds 5] [--each 40] [--subnet 10.232.0.0/16]
 */
import https from 'node:https'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {parseArgs} from 'node:util'
import {findDriver} from '../drivers/registry.js'
import {issueServerCert} from '../src/pki/x509.js'
import {bootstrapHosts, prepareBootstrap} from '../src/services/bootstrap-hosts.js'
import {createHosts} from '../src/services/create-hosts.js'
import {openHost} from '../src/services/host-access.js'
import {removeHosts} from '../src/services/remove-hosts.js'
import {Store} from '../src/store/store.js'
import {silentReporter} from '../src/ui/reporter.js'

const {values: opt} = parseArgs({
  options: {
    rounds: {type: 'string', default: '5'},
    each: {type: 'string', default: '40'},
    subnet: {type: 'string', default: '10.232.0.0/16'},
  },
})
const rounds = Number(opt.rounds)
const each = Number(opt.each)
if (process.getuid?.() !== 0) throw new Error('the local host needs root')

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** CPU ms per call of `step`: two warm-up calls, then `rounds` rounds of `each` calls; the median round. */
async function measure(step: () => Promise<unknown>): Promise<number> {
  await step()
  await step()
  const per: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = cpuMs()
    for (let i = 0; i < each; i++) await step()
    per.push((cpuMs() - t0) / each)
  }
  return median(per)
}

function get(agent: https.Agent, address: string, port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({host: address, port, path: p, agent}, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${p}: ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end()
  })
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-floor-'))
const store = new Store(path.join(dir, 'store'))
const options = {subnet: opt.subnet!}
try {
  const created = await createHosts({store, driver: findDriver('local')!, options, persistable: options, selection: {count: 1, prefix: 'floor'}, cluster: 'default', concurrency: 1, reporter: silentReporter})
  if (!created[0]?.ok) throw new Error(`create failed: ${created[0]?.error}`)
  const name = created[0].name
  const setup = await prepareBootstrap(store)
  const boot = await bootstrapHosts(setup, [name], {reporter: silentReporter, concurrency: 1})
  if (!boot[0]?.ok) throw new Error(`bootstrap failed: ${boot[0]?.error}`)
  const record = await store.get(name)
  const address = record.machine!.address
  const port = Number(new URL(record.engine!.url.replace(/^tcp:/, 'https:')).port)
  const context = tls.createSecureContext({ca: setup.client.ca, cert: setup.client.cert, key: setup.client.key})
  const stdin = Buffer.alloc(6 * 1024, 0x61)

  const handshake = await measure(async () => (await openHost(store, record)).close())
  const remote = await openHost(store, record)
  const command = await measure(() => remote.exec('cat >/dev/null', {stdin}))
  await remote.close()
  const tlsConnect = await measure(async () => {
    const agent = new https.Agent({keepAlive: true, maxSockets: 4, maxFreeSockets: 1, secureContext: context})
    await get(agent, address, port, '/info')
    agent.destroy()
  })
  const kept = new https.Agent({keepAlive: true, maxSockets: 1, secureContext: context})
  const request = await measure(() => get(kept, address, port, '/info'))
  kept.destroy()
  const update = await measure(() => store.update(name, () => undefined))
  const cert = await measure(() => issueServerCert(setup.ca, {hostName: name, machineName: name, addresses: [address]}))

  // Per host in `create --swarm` today, as `node dist/bench/cpu.js --count 50 --steps` counts them in
  // the belt process: one SSH connection with two commands (probe, configure); one TLS connection
  // to the engine, and 3.2 requests (GET /info when it is ready, POST /swarm/join, GET /info for its
  // node id, and a share of the leader's node lists); eight record writes (reserve, creating, the
  // droplet id, created, bootstrapping, the host key pinned, bootstrapped, joined); one server
  // certificate.
  const rows: [string, number, number][] = [
    ['SSH handshake + close (ssh2)', handshake, 1],
    ['SSH command, 6 KB stdin', command, 2],
    ['TLS connection + GET /info', tlsConnect, 1],
    ['more requests on it', request, 2.2],
    ['store record update', update, 8],
    ['server certificate', cert, 1],
  ]
  console.log(`CPU of Belt's process per step, against one real local host (median of ${rounds} rounds of ${each}); ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  let sum = 0
  for (const [what, ms, n] of rows) {
    sum += ms * n
    console.log(`  ${what.padEnd(30)} ${ms.toFixed(2).padStart(6)} ms  x${n} per host = ${(ms * n).toFixed(1).padStart(5)} ms`)
  }
  console.log(`  floor per host: ${sum.toFixed(1)} ms (SSH ${(handshake + 2 * command).toFixed(1)}, TLS and HTTP ${(tlsConnect + 2.2 * request).toFixed(1)}, store ${(8 * update).toFixed(1)})`)
} finally {
  const {records} = await store.list()
  await removeHosts({store, hosts: records, force: true, concurrency: 4, reporter: silentReporter})
  rmSync(dir, {recursive: true, force: true})
}
