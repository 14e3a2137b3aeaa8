/**
 * Benchmark: bootstrap N local hosts (default 20) into TLS engines, in process so that SSH
 * handshakes can be counted. Creates the hosts first (not timed here; see create-local), then
 * prints bootstrap wall time, per-host bootstrap time (p50/p90/max), SSH handshakes per host, and
 * certificate issue time per host. Tears everything down. Run as root after `npm run build`:
 *
 *   node dist/bench/bootstrap-local.js [N=20] [concurrency=8]
 */
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {findDriver} from '../drivers/registry.js'
import {issueServerCert} from '../src/pki/x509.js'
import {bootstrapHosts, prepareBootstrap} from '../src/services/bootstrap-hosts.js'
import {createHosts} from '../src/services/create-hosts.js'
import {removeHosts} from '../src/services/remove-hosts.js'
import {sshStats} from '../src/ssh/ssh2-remote.js'
import {Store} from '../src/store/store.js'
import {silentReporter} from '../src/ui/reporter.js'

const n = Number(process.argv[2] ?? 20)
const concurrency = Number(process.argv[3] ?? 8)
const dir = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-boot-'))
const store = new Store(path.join(dir, 'store'))
const entry = findDriver('local')!
const options = {subnet: '10.223.0.0/16'}
const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!

try {
  const created = await createHosts({store, driver: entry, options, persistable: options, selection: {count: n, prefix: 'bench'}, cluster: 'default', concurrency: 8, reporter: silentReporter})
  if (created.some((o) => !o.ok)) throw new Error(`create failed: ${created.filter((o) => !o.ok).map((o) => `${o.name}: ${o.error}`).join('; ')}`)

  const tCa = performance.now()
  const setup = await prepareBootstrap(store)
  const caMs = performance.now() - tCa
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await issueServerCert(setup.ca, {hostName: `x${i}`, machineName: `x${i}`, addresses: ['10.0.0.1']})
  const certMs = (performance.now() - t0) / n

  const hs0 = sshStats.handshakes
  const t1 = performance.now()
  const out = await bootstrapHosts(setup, created.map((o) => o.name), {reporter: silentReporter, concurrency})
  const wall = performance.now() - t1
  const failed = out.filter((o) => !o.ok)
  const per = out.filter((o) => o.ok).map((o) => o.ms!).sort((a, b) => a - b)
  console.log(`hosts: ${n}, bootstrap concurrency: ${concurrency}, cores: ${os.cpus().length}`)
  console.log(`CA + client certificate: ${caMs.toFixed(0)} ms (once per store)`)
  console.log(`server certificate issue: ${certMs.toFixed(1)} ms per host (${setup.ca.keyType})`)
  console.log(`bootstrap wall time: ${(wall / 1000).toFixed(2)} s for ${n} hosts (${failed.length} failed)`)
  console.log(`per-host bootstrap (SSH up -> engine answers over TLS): p50 ${q(per, 0.5)} ms, p90 ${q(per, 0.9)} ms, max ${per.at(-1)} ms`)
  console.log(`SSH handshakes per host: ${((sshStats.handshakes - hs0) / n).toFixed(2)} (docker-machine: ~19)`)
  const again = performance.now()
  const hs1 = sshStats.handshakes
  await bootstrapHosts(setup, created.map((o) => o.name), {reporter: silentReporter, concurrency})
  console.log(`second bootstrap (nothing to change): ${((performance.now() - again) / 1000).toFixed(2)} s, ${((sshStats.handshakes - hs1) / n).toFixed(2)} handshakes per host`)
} finally {
  const {records} = await store.list()
  await removeHosts({store, hosts: records, force: true, concurrency: 16, reporter: silentReporter})
  rmSync(dir, {recursive: true, force: true})
}
