import {promises as fs, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ExitCode, UserError, environmentError, notFoundError, usageError} from '../errors.js'
import {labelProblem} from '../names.js'
import {writeFileAtomic, ensurePrivateDir} from './atomic.js'
import {Locks} from './lock.js'
import {recordProblem} from './record-schema.js'
import {SCHEMA_VERSION, type HostRecord} from './types.js'

/** `--store`, else `BELT_STORE`, else `~/.belt`. */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BELT_STORE || path.join(os.homedir(), '.belt')
}

/** A record file that could not be read; reported by name, never fatal for the others. */
export interface CorruptRecord {
  name: string
  file: string
  problem: string
}

/** Lines appended to `<store>/journal.jsonl`: every cloud resource id, as soon as it is known. */
export interface JournalLine {
  at: string
  kind: string
  id: string
  host?: string
  driver: string
  action: 'created' | 'deleted'
}

const RECORD_FILE = /^([a-z0-9-]+)\.json$/

/**
 * The host inventory. One JSON file per host under `hosts/`, each written atomically; changes to a
 * record happen under that record's lock; taking names happens under the store-wide `names` lock,
 * so several `belt` processes at once never lose or corrupt a record or take a name twice.
 */
export class Store {
  readonly locks: Locks

  constructor(readonly dir: string) {
    this.locks = new Locks(path.join(dir, 'locks'))
  }

  get hostsDir(): string {
    return path.join(this.dir, 'hosts')
  }
  get certsDir(): string {
    return path.join(this.dir, 'certs')
  }
  /** `keys/<cluster>`; the cluster name must be a DNS label (a usage error otherwise). */
  keysDir(cluster: string): string {
    const problem = labelProblem(cluster, 'cluster name')
    if (problem) throw usageError(problem, 'E_CLUSTER_INVALID')
    return this.child(path.join(this.dir, 'keys'), cluster)
  }
  driverDir(driver: string): string {
    return this.child(path.join(this.dir, 'drivers'), driver)
  }
  /** `hosts/<name>.json`; the name must be a DNS label (a usage error otherwise). */
  recordFile(name: string): string {
    const problem = labelProblem(name)
    if (problem) throw usageError(problem, 'E_NAME_INVALID', 'run `belt ls` to see the hosts')
    return this.child(this.hostsDir, `${name}.json`)
  }

  /**
   * Every path derived from a name goes through here: `entry` must be one plain directory entry of
   * `parent`, and the result strictly inside the store, so that no name (`../..`, `/etc`, `a/b`)
   * makes Belt read, write or chmod anything outside it.
   */
  private child(parent: string, entry: string): string {
    const p = path.join(parent, entry)
    const rel = path.relative(path.resolve(this.dir), path.resolve(p))
    if (!entry || entry === '.' || entry === '..' || /[/\\\0]/.test(entry) || rel === '' || rel.startsWith('..') || path.isAbsolute(rel))
      throw usageError(`'${entry}' would name a path outside ${parent}`, 'E_PATH_OUTSIDE_STORE', 'use names made of lower-case letters, digits and -')
    return p
  }

  /** Creates the directory tree with private modes. Idempotent. */
  async init(): Promise<void> {
    try {
      await ensurePrivateDir(this.dir)
      await ensurePrivateDir(this.hostsDir)
    } catch (e) {
      throw environmentError(
        `cannot use the store directory ${this.dir}: ${(e as Error).message}`,
        'E_STORE_UNUSABLE',
        'pass --store DIR (or set BELT_STORE) to a directory you can write',
        e,
      )
    }
  }

  /** Reads one record. Throws a not-found UserError when absent, a UserError naming the file when corrupt. */
  async get(name: string): Promise<HostRecord> {
    const r = await this.tryGet(name)
    if (!r) throw notFoundError(`no host named ${name} in ${this.dir}`, 'E_HOST_NOT_FOUND', 'run `belt ls` to see the hosts')
    return r
  }

  /** Reads one record, or undefined when there is none. */
  async tryGet(name: string): Promise<HostRecord | undefined> {
    const file = this.recordFile(name)
    let text: string
    try {
      // Synchronously, as list() reads: a small file in the page cache, not four thread-pool trips.
      text = readFileSync(file, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
    return parseRecord(file, name, text)
  }

  /** Every record, sorted by name (natural order), plus the files that could not be read. */
  async list(): Promise<{records: HostRecord[]; corrupt: CorruptRecord[]}> {
    let entries: string[]
    try {
      entries = await fs.readdir(this.hostsDir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {records: [], corrupt: []}
      throw e
    }
    const records: HostRecord[] = []
    const corrupt: CorruptRecord[] = []
    await Promise.all(
      entries.map(async (f) => {
        const m = RECORD_FILE.exec(f)
        if (!m) return
        const name = m[1]!
        const file = path.join(this.hostsDir, f)
        try {
          // Read synchronously: 1,000 small files take ~15 ms this way and ~150 ms through the
          // thread pool's async reads (`belt ls` of 1,000 hosts reads them all).
          let text: string
          try {
            text = readFileSync(this.recordFile(name), 'utf8')
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
            throw e
          }
          records.push(await parseRecord(file, name, text))
        } catch (e) {
          corrupt.push({name, file, problem: e instanceof UserError ? e.message : String(e)})
        }
      }),
    )
    records.sort((a, b) => naturalCompare(a.name, b.name))
    corrupt.sort((a, b) => naturalCompare(a.name, b.name))
    return {records, corrupt}
  }

  /**
   * Takes names for new hosts atomically across processes. `choose` sees the names that exist now
   * (including corrupt records, which still own their name) and returns the records to write; it
   * may throw a UserError to refuse. Records it returns that already exist are overwritten only
   * when `choose` says so by returning them (resuming an unfinished batch).
   */
  async reserve(choose: (existing: ReadonlyMap<string, HostRecord | undefined>) => HostRecord[] | Promise<HostRecord[]>): Promise<HostRecord[]> {
    await this.init()
    return this.locks.with('names', async () => {
      const {records, corrupt} = await this.list()
      const existing = new Map<string, HostRecord | undefined>(records.map((r) => [r.name, r]))
      for (const c of corrupt) existing.set(c.name, undefined)
      const chosen = await choose(existing)
      // Side by side (each write is its own temp file, fsync and rename): 300 in a row took seconds.
      const queue = [...chosen]
      await Promise.all(Array.from({length: Math.min(32, queue.length)}, async () => {
        for (let r = queue.shift(); r; r = queue.shift()) await this.write(r)
      }))
      return chosen
    })
  }

  /**
   * Changes one record under its lock: reads the latest version, applies `mutate`, writes it
   * atomically. Returns the new record.
   */
  async update(name: string, mutate: (r: HostRecord) => void | HostRecord): Promise<HostRecord> {
    return this.locks.with(`host-${name}`, async () => {
      const current = await this.get(name)
      const next = mutate(current) ?? current
      next.updatedAt = new Date().toISOString()
      await this.write(next)
      return next
    })
  }

  /** Deletes one record (idempotent). */
  async delete(name: string): Promise<void> {
    await this.locks.with(`host-${name}`, async () => {
      await fs.rm(this.recordFile(name), {force: true})
    })
  }

  /**
   * Appends a resource line to the journal and resolves once it is on disk (fsynced). Lines that
   * come while a write is under way go together in the next one (group commit: one O_APPEND write,
   * atomic on Linux, and one fsync for all of them): 300 hosts' lines at once cost a few fsyncs,
   * not 300. Lines are written in the order of the calls. A failed write rejects every line it carried.
   */
  journal(line: Omit<JournalLine, 'at'>): Promise<void> {
    const text = JSON.stringify({at: new Date().toISOString(), ...line}) + '\n'
    return new Promise((resolve, reject) => {
      this.journalQueue.push({text, resolve, reject})
      this.journalWriting ??= this.writeJournal()
    })
  }

  private readonly journalQueue: {text: string; resolve: () => void; reject: (e: unknown) => void}[] = []
  private journalWriting?: Promise<void>

  private async writeJournal(): Promise<void> {
    try {
      while (this.journalQueue.length > 0) {
        const batch = this.journalQueue.splice(0)
        try {
          await this.init()
          const fh = await fs.open(path.join(this.dir, 'journal.jsonl'), 'a', 0o600)
          try {
            await fh.write(batch.map((b) => b.text).join(''))
            await fh.sync()
          } finally {
            await fh.close()
          }
          for (const b of batch) b.resolve()
        } catch (e) {
          for (const b of batch) b.reject(e)
        }
      }
    } finally {
      this.journalWriting = undefined
    }
  }

  private async write(r: HostRecord): Promise<void> {
    await writeFileAtomic(this.recordFile(r.name), JSON.stringify(r, null, 2) + '\n', 0o600)
  }
}

/**
 * Parses, migrates and validates a record file (against the schema of record-schema.ts); every
 * problem becomes a UserError (exit 5) naming the file and the field.
 */
export async function parseRecord(file: string, name: string, text: string): Promise<HostRecord> {
  const bad = (why: string) =>
    new UserError(`host record ${file} is unreadable: ${why}`, {
      code: 'E_RECORD_CORRUPT',
      exit: ExitCode.environment,
      hint: `repair the file, or move it out of ${path.dirname(file)} to forget host ${name} (its cloud resources are listed in journal.jsonl)`,
    })
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (e) {
    throw bad((e as Error).message)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not a JSON object')
  const r = data as Partial<HostRecord>
  if (typeof r.schemaVersion !== 'number') throw bad('no schemaVersion')
  if (r.schemaVersion > SCHEMA_VERSION)
    throw new UserError(`host record ${file} has schema version ${r.schemaVersion}, newer than this belt understands (${SCHEMA_VERSION})`, {
      code: 'E_RECORD_TOO_NEW',
      exit: ExitCode.environment,
      hint: 'upgrade belt',
    })
  if (r.name !== name) throw bad(`its name field is ${JSON.stringify(r.name)}, not ${JSON.stringify(name)}`)
  const migrated = migrate(r as HostRecord)
  const problem = recordProblem(migrated)
  if (problem) throw bad(problem)
  return migrated
}

/** Upgrades older record shapes in memory; the next write saves the new shape. */
function migrate(r: HostRecord): HostRecord {
  // Version 1 is the first; future versions add steps here (v1 -> v2 -> ...).
  r.resources ??= []
  r.times ??= {}
  r.driverOptions ??= {}
  return r
}

/**
 * One collator for every comparison (`localeCompare` with options builds one per call: 50 ms for
 * 1,000 names), made on first use: building it costs tens of milliseconds of start-up.
 */
let natural: Intl.Collator | undefined

const LABEL_CHARS = /^[a-z0-9-]*$/

/**
 * `node2` < `node10`, as `Intl.Collator('en', {numeric: true})` orders them. DNS labels (host and
 * cluster names, nearly every call) are compared without ICU: runs of digits by value, other
 * characters by code unit (`-` < digits < letters, as the collator has them);
 * test/unit/store.test.ts holds the two to the same order. Anything else goes to the collator.
 */
export function naturalCompare(a: string, b: string): number {
  if (!LABEL_CHARS.test(a) || !LABEL_CHARS.test(b)) return (natural ??= new Intl.Collator('en', {numeric: true})).compare(a, b)
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    if (isDigit(a, i) && isDigit(b, j)) {
      let k = i
      let l = j
      while (k < a.length && isDigit(a, k)) k++
      while (l < b.length && isDigit(b, l)) l++
      const u = a.slice(i, k).replace(/^0+/, '')
      const v = b.slice(j, l).replace(/^0+/, '')
      if (u !== v) return u.length !== v.length ? Math.sign(u.length - v.length) : u < v ? -1 : 1
      i = k // `01` and `1` are equal, as for the collator
      j = l
      continue
    }
    if (a[i] !== b[j]) return a[i]! < b[j]! ? -1 : 1
    i++
    j++
  }
  return Math.sign(a.length - i - (b.length - j))
}
const isDigit = (s: string, i: number) => s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57

/** A new record for a reserved name. */
export function newRecord(fields: {name: string; cluster: string; driver: string; driverOptions: Record<string, string>}): HostRecord {
  const now = new Date().toISOString()
  return {
    schemaVersion: SCHEMA_VERSION,
    ...fields,
    phase: 'reserved',
    resources: [],
    times: {},
    createdAt: now,
    updatedAt: now,
  }
}
