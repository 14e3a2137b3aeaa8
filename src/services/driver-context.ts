import path from 'node:path'
import type {DriverContext, DriverOption, DriverOptions, JournalEntry} from '../../drivers/driver.js'
import {findDriver, flagName, type DriverEntry, type DriverLookup} from '../../drivers/registry.js'
import {usageError, type UserError} from '../errors.js'
import {ensurePrivateDir} from '../store/atomic.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {Reporter} from '../ui/reporter.js'

/**
 * The DriverContext for one driver and store. `host` scopes journal entries and log lines to a host;
 * journal entries go both to the store's journal and to the host record's `resources`.
 */
export async function driverContext(
  store: Store,
  driver: string,
  reporter: Reporter,
  opts: {host?: string; signal?: AbortSignal; /** For preflight, which creates nothing: stateDir is not created. */ noDirs?: boolean} = {},
): Promise<DriverContext> {
  const stateDir = store.driverDir(driver)
  if (!opts.noDirs) {
    await ensurePrivateDir(path.dirname(stateDir))
    await ensurePrivateDir(stateDir)
  }
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
          if (entry.action === 'created') {
            if (!r.resources.some((x) => x.kind === entry.kind && x.id === entry.id)) r.resources.push({kind: entry.kind, id: entry.id, at: new Date().toISOString()})
          }
          else r.resources = r.resources.filter((x) => !(x.kind === entry.kind && x.id === entry.id))
        })
      }
    },
  }
}

/**
 * Option values for a driver: the flag (`--<driver>-<name>`, already merged with its env var by the
 * parser), else the environment, else `persisted`, else the declared default. Secrets are never in
 * `persisted`; they come from the flag or the environment every time.
 *
 * `persisted` is given when resolving for an EXISTING host (its record's values): options marked
 * {@link DriverOption.pinned} then take the recorded value (else the default) and never a flag or the
 * environment. Callers refuse a disagreeing flag or variable first, with {@link refuseMovedHosts}
 * or {@link hostDriverOptions}. Without `persisted` (a new host) every option follows the order above.
 */
export function resolveDriverOptions(
  entry: DriverEntry,
  given: Readonly<Record<string, string | undefined>>,
  persisted?: Readonly<Record<string, string>>,
  env: NodeJS.ProcessEnv = process.env,
): {options: DriverOptions; persistable: Record<string, string>; missing: string[]} {
  const options: Record<string, string | undefined> = {}
  const persistable: Record<string, string> = {}
  const missing: string[] = []
  for (const o of entry.options) {
    const v =
      persisted && isPinned(o)
        ? (persisted[o.name] ?? o.default)
        : (given[o.name] ?? (o.env ? env[o.env] || undefined : undefined) ?? o.envAliases?.map((n) => env[n] || undefined).find((x) => x !== undefined) ?? persisted?.[o.name] ?? o.default)
    options[o.name] = v
    if (v === undefined && o.required) missing.push(o.name)
    if (v !== undefined && !o.secret) persistable[o.name] = v
  }
  return {options, persistable, missing}
}

const isPinned = (o: DriverOption): boolean => Boolean(o.pinned) && !o.secret

/**
 * What a host's record says about a pinned option: the value it was created with, else the field
 * of the same name in its machine data (the amazonec2 driver records the region it resolved there),
 * else the default. Undefined means "created without it".
 */
function recordedValue(o: DriverOption, r: Pick<HostRecord, 'driverOptions' | 'machine'>): string | undefined {
  const data = r.machine?.data?.[o.name]
  return r.driverOptions?.[o.name] ?? (typeof data === 'string' ? data : undefined) ?? o.default
}

/** Values that mean the same place: surrounding blanks and trailing slashes of URLs aside. */
const samePlace = (a: string, b: string): boolean => a.trim().replace(/\/+$/, '') === b.trim().replace(/\/+$/, '')

/** A URL's user information is masked in messages (it may hold a password). */
const shown = (v: string): string => v.replace(/\/\/[^/@\s]*@/, '//***@')

/** A pinned option of one host that a flag or environment variable disagrees with. */
export interface PinConflict {
  host: string
  driver: string
  option: string
  /** The recorded value; undefined when the host was created without one. */
  recorded?: string
  /** `--<driver>-<option>` or the environment variable's name. */
  source: string
  value: string
  fromFlag: boolean
}

/**
 * The first pinned option of `r` whose flag (`given`, for `belt create` resuming a host) or
 * environment variable is set to another value than the record's.
 */
export function pinConflict(
  entry: DriverEntry,
  r: Pick<HostRecord, 'name' | 'driver' | 'driverOptions' | 'machine'>,
  env: NodeJS.ProcessEnv = process.env,
  given: Readonly<Record<string, string | undefined>> = {},
): PinConflict | undefined {
  for (const o of entry.options) {
    if (!isPinned(o)) continue
    const flag = given[o.name] || undefined
    const fromEnv = o.env ? env[o.env] || undefined : undefined
    const value = flag ?? fromEnv
    if (value === undefined) continue
    const recorded = recordedValue(o, r)
    if (recorded !== undefined && samePlace(recorded, value)) continue
    return {host: r.name, driver: entry.name, option: o.name, recorded, source: flag !== undefined ? `--${flagName(entry.name, o.name)}` : o.env!, value, fromFlag: flag !== undefined}
  }
  return undefined
}

/** The one-line refusal for a conflict (exit 2), counting the other hosts in the same case. */
export function pinConflictError(c: PinConflict, others = 0): UserError {
  const flag = `--${flagName(c.driver, c.option)}`
  const who = others > 0 ? `${c.host} (and ${others} other host${others === 1 ? '' : 's'})` : c.host
  const was = c.recorded === undefined ? `was created without ${flag}` : `was created with ${flag} ${shown(c.recorded)}`
  return usageError(
    `${who} ${was}, but ${c.source} is ${shown(c.value)}: a host keeps the ${c.option} it was created with`,
    'E_PINNED_OPTION',
    `${c.fromFlag ? `drop ${c.source}` : `unset ${c.source}`} (belt uses the recorded value for existing hosts)`,
  )
}

/**
 * Refuses, before any API call, to act on hosts that a flag or environment variable would send to
 * another place than the one they were created in: one usage error (exit 2) naming the first host,
 * its recorded value, the variable or flag, and the fix. Records of unknown drivers are skipped
 * (they fail later with their own error). `given` holds `--<driver>-<option>` values of `belt create`.
 */
export function refuseMovedHosts(
  records: readonly Pick<HostRecord, 'name' | 'driver' | 'driverOptions' | 'machine'>[],
  opts: {env?: NodeJS.ProcessEnv; drivers?: DriverLookup; given?: {driver: string; values: Readonly<Record<string, string | undefined>>}} = {},
): void {
  const conflicts: PinConflict[] = []
  for (const r of records) {
    const entry = (opts.drivers ?? findDriver)(r.driver)
    if (!entry) continue
    const c = pinConflict(entry, r, opts.env, opts.given?.driver === r.driver ? opts.given.values : {})
    if (c) conflicts.push(c)
  }
  const first = conflicts[0]
  if (first) throw pinConflictError(first, conflicts.filter((c) => c.source === first.source).length - 1)
}

/**
 * Option values for an existing host: pinned options from its record (refused with a usage error
 * when the environment disagrees), the others as {@link resolveDriverOptions} orders them.
 */
export function hostDriverOptions(
  entry: DriverEntry,
  r: Pick<HostRecord, 'name' | 'driver' | 'driverOptions' | 'machine'>,
  env: NodeJS.ProcessEnv = process.env,
): DriverOptions {
  const c = pinConflict(entry, r, env)
  if (c) throw pinConflictError(c)
  const recorded: Record<string, string> = {...r.driverOptions}
  for (const o of entry.options) {
    const v = isPinned(o) ? recordedValue(o, r) : undefined
    if (v !== undefined) recorded[o.name] = v
  }
  return resolveDriverOptions(entry, {}, recorded, env).options
}
