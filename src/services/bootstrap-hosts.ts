import {readFileSync} from 'node:fs'
import path from 'node:path'
import type {Driver} from '../../drivers/driver.js'
import {findDriver, type DriverLookup} from '../../drivers/registry.js'
import {bootstrapHost, type EngineTemplates} from '../bootstrap/bootstrap.js'
import {emptyEngineConfig, type EngineConfig} from '../bootstrap/commands.js'
import {ExitCode, UserError, oneLine} from '../errors.js'
import {ensureCa, ensureClientCert, type ClientBundle} from '../pki/ca.js'
import {certValidity, checkServerCert, issueServerCert, type Ca} from '../pki/x509.js'
import {isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import type {Store} from '../store/store.js'
import type {EngineRecord} from '../store/types.js'
import {packageRoot} from '../templates.js'
import {seconds, type Reporter} from '../ui/reporter.js'
import type {HostOutcome} from './create-hosts.js'
import {openHost} from './host-access.js'

/** How long a host may take to answer SSH before its bootstrap fails (cloud VMs boot slowly). */
export const SSH_WAIT_MS = 180_000

/** What every host of a bootstrap batch shares: made once, before the first host. */
export interface BootstrapSetup {
  store: Store
  ca: Ca
  client: ClientBundle
  templates: EngineTemplates
  drivers: DriverLookup
}

/** The CA (created once per store, race-safe), the client certificate and the templates. */
export async function prepareBootstrap(store: Store, drivers: DriverLookup = findDriver): Promise<BootstrapSetup> {
  await store.init()
  const ca = await ensureCa(store)
  const client = await ensureClientCert(store, ca)
  const dir = path.join(packageRoot(), 'templates', 'engine')
  const templates: EngineTemplates = {
    dropIn: readFileSync(path.join(dir, '10-belt.conf'), 'utf8'),
    installDebian: readFileSync(path.join(dir, 'install-debian.sh'), 'utf8'),
    installScript: readFileSync(path.join(dir, 'install-script.sh'), 'utf8'),
  }
  return {store, ca, client, templates, drivers}
}

export interface BootstrapOptions {
  /** `--engine-*` settings; undefined: what the host was bootstrapped with before, else defaults. */
  engine?: EngineConfig
  /** New server certificate and engine restart even when nothing changed (regenerate-certs). */
  renewCert?: boolean
  reporter: Reporter
  signal?: AbortSignal
}

/**
 * Bootstraps one created host over ONE SSH connection and records the result. Persists
 * 'bootstrapping' before and 'bootstrapped' (or 'error' with the reason) after. Never throws for
 * a host failure: the outcome says it.
 */
export async function bootstrapOne(setup: BootstrapSetup, name: string, o: BootstrapOptions): Promise<HostOutcome> {
  const {store} = setup
  const t0 = Date.now()
  let record = await store.get(name)
  let sshUp: string | undefined
  o.reporter.phase?.(name, 'bootstrap', 'start')
  try {
    if (!record.machine)
      throw new UserError(`${name} has no machine yet (its state is ${record.phase})`, {code: 'E_NOT_CREATED', exit: ExitCode.usage})
    const machine = record.machine
    const engine = o.engine ?? record.engine?.config ?? emptyEngineConfig()
    const firstBootstrap = record.engine === undefined
    record = await store.update(name, (r) => {
      r.phase = 'bootstrapping'
      r.owner = {pid: process.pid, since: new Date().toISOString()}
      r.error = undefined
    })
    const entry = setup.drivers(record.driver)
    const driver: Driver | undefined = entry ? await entry.load() : undefined
    const userFlag = driver?.options.some((opt) => opt.name === 'ssh-user') ? `--${driver.name}-ssh-user` : undefined
    // Every step is idempotent, so a connection that drops mid-way (a network blip, sshd
    // restarted) is simply opened again and the bootstrap run again, a bounded number of times.
    let result!: Awaited<ReturnType<typeof bootstrapHost>>
    for (let attempt = 1; ; attempt++) {
      try {
        const remote = await openHost(store, record, {waitMs: SSH_WAIT_MS, signal: o.signal, userFlag})
        // Recorded with the outcome (bootstrapped or failed), not in a write of its own.
        sshUp ??= new Date().toISOString()
        try {
          const addresses = [machine.address, ...(machine.privateAddress ? [machine.privateAddress] : [])]
          result = await bootstrapHost({
            remote,
            name,
            driver: record.driver,
            machine,
            engine,
            templates: setup.templates,
            caPem: setup.ca.certPem,
            clientTls: {ca: setup.client.ca, cert: setup.client.cert, key: setup.client.key},
            keepServerCert: (pem) => !o.renewCert && checkServerCert(pem, setup.ca.certPem, {addresses, names: [name]}).ok,
            issueServerCert: () => issueServerCert(setup.ca, {hostName: name, machineName: name, addresses}),
            resetEngineId: firstBootstrap,
            forceRestart: o.renewCert,
            daemonExtra: driver?.engineConfig?.(machine),
            userFlag,
            log: (m) => o.reporter.host(name, m),
            signal: o.signal,
          })
        } finally {
          await remote.close()
        }
        break
      } catch (e) {
        if (attempt >= SSH_DROP_ATTEMPTS || o.signal?.aborted || !isConnectionDrop(e)) throw e
        o.reporter.host(name, `SSH connection dropped (${oneLine(e)}); connecting again (attempt ${attempt + 1} of ${SSH_DROP_ATTEMPTS})`)
      }
    }
    const certPem = result.serverCertPem
    const info = certPem ? certValidity(certPem) : undefined
    await store.update(name, (r) => {
      const rec: EngineRecord = {
        url: result.url,
        id: result.engine.id,
        name: result.engine.name,
        serverVersion: result.engine.serverVersion,
        labels: result.engine.labels,
        config: {...engine},
        certNotAfter: info ? info.notAfter.toISOString() : r.engine?.certNotAfter,
        certFingerprint: info ? info.fingerprint : r.engine?.certFingerprint,
        installed: result.installed || r.engine?.installed,
      }
      r.engine = rec
      r.phase = 'bootstrapped'
      r.owner = undefined
      r.times.sshUp ??= sshUp
      r.times.engineReady = new Date().toISOString()
    })
    const what = [result.installed ? 'engine installed' : undefined, result.restarted ? (result.certRenewed ? 'new certificate' : 'configured') : 'unchanged'].filter(Boolean).join(', ')
    o.reporter.host(name, `engine ${result.engine.serverVersion} ready at ${result.url} (${what}, ${seconds(Date.now() - t0)})`)
    o.reporter.phase?.(name, 'bootstrap', 'done')
    return {name, ok: true, phase: 'bootstrapped', address: machine.address, ms: Date.now() - t0}
  } catch (e) {
    const message = oneLine(e)
    // Interrupted: the host stays `created` (every step is idempotent: the next run starts over).
    const interrupted = isInterruption(e)
    await store
      .update(name, (r) => {
        r.phase = interrupted ? 'created' : 'error'
        r.owner = undefined
        r.error = interrupted ? undefined : {phase: 'bootstrapping', message, at: new Date().toISOString()}
        if (sshUp) r.times.sshUp ??= sshUp
      })
      .catch(() => undefined)
    o.reporter.host(name, interrupted ? 'bootstrap interrupted; the same command takes it on again' : `bootstrap failed: ${message}`)
    o.reporter.phase?.(name, 'bootstrap', 'fail', interrupted ? 'interrupted' : message)
    return {name, ok: false, phase: interrupted ? 'created' : 'error', address: record.machine?.address, error: message, ...(interrupted ? {interrupted: true} : {})}
  }
}

/** Bootstrap attempts when the SSH connection drops mid-way (the steps are idempotent). */
export const SSH_DROP_ATTEMPTS = 3

/** True for an error that says the SSH connection or its channel went away, not that a step failed. */
export function isConnectionDrop(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e)
  // ssh(1)'s convention, kept by the remote layer: 255 is "no exit status came back" (the connection broke).
  return /unexpected SFTP session termination|Not connected|Connection lost|ECONNRESET|EPIPE|socket hang up|Keepalive timeout|No response from server|channel (open )?fail|connection (was )?closed|exited 255\b/i.test(m)
}

/** Bootstraps hosts through a bounded pool; every host's outcome is returned. */
export async function bootstrapHosts(
  setup: BootstrapSetup,
  names: readonly string[],
  o: BootstrapOptions & {concurrency: number},
): Promise<HostOutcome[]> {
  const settled = await mapSettled(names, (n) => bootstrapOne(setup, n, o), {concurrency: o.concurrency, signal: o.signal})
  return settled.map((s) => (s.ok ? s.value : {name: s.item, ok: false, phase: 'error', error: oneLine(s.error), ...(isInterruption(s.error) ? {interrupted: true} : {})}))
}
