import path from 'node:path'
import type {DriverContext, DriverOptions, JournalEntry} from '../../drivers/driver.js'
import type {DriverEntry} from '../../drivers/registry.js'
import {ensurePrivateDir} from '../store/atomic.js'
import type {Store} from '../store/store.js'
import type {Reporter} from '../ui/reporter.js'

/**
 * The DriverContext for one driver and store. `host` scopes journal entries and log lines to a host;
 * journal entries go both to the store's journal and to the host record's `resources`.
 */
export async function driverContext(
  store: Store,
  driver: string,
  reporter: Reporter,
  opts: {host?: string; signal?: AbortSignal} = {},
): Promise<DriverContext> {
  const stateDir = store.driverDir(driver)
  await ensurePrivateDir(path.dirname(stateDir))
  await ensurePrivateDir(stateDir)
  return {
    stateDir,
    signal: opts.signal,
    withLock: (name, fn) => store.locks.with(`${driver}-${name}`, fn),
    log: (message) => (opts.host ? reporter.host(opts.host, message) : reporter.info(message)),
    journal: async (entry: JournalEntry) => {
      const host = entry.host ?? opts.host
      await store.journal({...entry, host, driver})
      if (host && (await store.tryGet(host).catch(() => undefined))) {
        await store.update(host, (r) => {
          if (entry.action === 'created') r.resources.push({kind: entry.kind, id: entry.id, at: new Date().toISOString()})
          else r.resources = r.resources.filter((x) => !(x.kind === entry.kind && x.id === entry.id))
        })
      }
    },
  }
}

/**
 * Option values for a driver: the flag (`--<driver>-<name>`, already merged with its env var by the
 * parser), else the value the host was created with, else the declared default. Secrets are never
 * in `persisted`; they come from the flag or the environment every time.
 */
export function resolveDriverOptions(
  entry: DriverEntry,
  given: Readonly<Record<string, string | undefined>>,
  persisted: Readonly<Record<string, string>> = {},
  env: NodeJS.ProcessEnv = process.env,
): {options: DriverOptions; persistable: Record<string, string>; missing: string[]} {
  const options: Record<string, string | undefined> = {}
  const persistable: Record<string, string> = {}
  const missing: string[] = []
  for (const o of entry.options) {
    const v = given[o.name] ?? (o.env ? env[o.env] || undefined : undefined) ?? persisted[o.name] ?? o.default
    options[o.name] = v
    if (v === undefined && o.required) missing.push(o.name)
    if (v !== undefined && !o.secret) persistable[o.name] = v
  }
  return {options, persistable, missing}
}
