/**
 * Benchmark: certificate work for a batch, per key type. Prints the time to create a CA (in a
 * fresh store, files written and fsynced as `belt create` does), then to issue N server certificates
 * one after another and through the batch pool (what `belt create --count N` does), in total and
 * per certificate. After `npm run build`:
 *
 *   node dist/bench/certs.js [N=300] [concurrency=4]
 *
 * concurrency 4 matches libuv's default thread pool, where Node's WebCrypto generates keys.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ensureCa, issueServerCert, KEY_TYPES, type Ca} from '../src/pki/ca.js'
import {mapSettled} from '../src/scheduler/pool.js'
import {Store} from '../src/store/store.js'

const n = Number(process.argv[2] ?? 300)
const concurrency = Number(process.argv[3] ?? 4)
const tmp = mkdtempSync(path.join(os.tmpdir(), 'belt-bench-certs-'))

const ms = (t0: number) => performance.now() - t0
const fmt = (total: number) => `${(total / 1000).toFixed(2)} s total, ${(total / n).toFixed(2)} ms per cert`
const host = (i: number) => ({hostName: `ip-10-0-${i >> 8}-${i & 255}`, machineName: `node${i + 1}`, addresses: [`203.0.113.${i & 255}`, `10.0.${i >> 8}.${i & 255}`]})

async function issueAll(ca: Ca, c: number): Promise<number> {
  const t0 = performance.now()
  const results = await mapSettled(
    Array.from({length: n}, (_, i) => i),
    (i) => issueServerCert(ca, host(i)),
    {concurrency: c},
  )
  const failed = results.filter((r) => !r.ok)
  if (failed.length) throw new Error(`${failed.length} of ${n} certificates failed`, {cause: failed[0]?.ok === false ? failed[0].error : undefined})
  return ms(t0)
}

try {
  console.log(`server certificates: ${n}, concurrency: ${concurrency}, cores: ${os.cpus().length}, node ${process.version}`)
  for (const keyType of KEY_TYPES) {
    const t0 = performance.now()
    const ca = await ensureCa(new Store(path.join(tmp, keyType)), {keyType})
    const caMs = ms(t0)
    const sequential = await issueAll(ca, 1)
    const pooled = await issueAll(ca, concurrency)
    console.log(`${keyType.padEnd(10)}  CA: ${caMs.toFixed(1)} ms | ${n} server certs one at a time: ${fmt(sequential)} | with concurrency ${concurrency}: ${fmt(pooled)}`)
  }
} finally {
  rmSync(tmp, {recursive: true, force: true})
}
