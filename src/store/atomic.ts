import {closeSync, fchmodSync, fsync, openSync, promises as fs, writeFileSync} from 'node:fs'
import path from 'node:path'

let tmpCounter = 0

/**
 * Writes `content` to `file` atomically: a temp file in the same directory (created with `mode`, so
 * a private key is never readable by others even for an instant), fsync, rename over the target,
 * fsync the directory. A crash leaves either the old file or the new one, never a mix and never
 * nothing (unlike docker-machine's save, which deleted the old file before renaming).
 */
export async function writeFileAtomic(file: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const dir = path.dirname(file)
  // pid, time and a counter make the name unique among writers, a crashed one's leftovers included
  // ('wx' refuses a clash anyway); not node:crypto, which costs tens of milliseconds of start-up to load.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}${(tmpCounter++).toString(36)}.tmp`)
  // Opening and writing a small file touch only the page cache: done synchronously they cost a few
  // microseconds each, where every await on fs/promises is a trip through the thread pool (a batch
  // writes each host's record several times). The fsyncs and the rename, which wait for the disk
  // or its journal, stay asynchronous.
  const fd = openSync(tmp, 'wx', mode)
  try {
    writeFileSync(fd, content)
    fchmodSync(fd, mode) // the umask may have narrowed or (never) widened the mode given to open
    await fsyncFd(fd)
  } finally {
    closeSync(fd)
  }
  try {
    // Asynchronously: a rename over a file waits for the file system's journal, which the other
    // hosts' fsyncs keep busy.
    await fs.rename(tmp, file)
  } catch (e) {
    await fs.rm(tmp, {force: true})
    throw e
  }
  await fsyncDir(dir)
}

const fsyncFd = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())))

async function fsyncDirOnce(dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

/** Per directory: the fsync under way, and the one queued behind it. */
const dirSyncs = new Map<string, {running?: Promise<void>; queued?: Promise<void>}>()

/**
 * Makes a rename or unlink in `dir` durable. Calls that come together share fsyncs (group commit):
 * a call made while one runs (which may have started before the caller's rename) waits for the
 * next one, which starts when the running one ends and serves every call queued by then. So 50
 * hosts writing their records at once cost a few directory fsyncs, not 50, and each caller still
 * returns only after an fsync that began after its rename.
 */
export function fsyncDir(dir: string): Promise<void> {
  let st = dirSyncs.get(dir)
  if (!st) dirSyncs.set(dir, (st = {}))
  const s = st
  const start = (): Promise<void> => {
    const p = fsyncDirOnce(dir).finally(() => {
      if (s.running === p) s.running = undefined
      if (!s.running && !s.queued) dirSyncs.delete(dir)
    })
    s.running = p
    return p
  }
  if (s.queued) return s.queued
  if (!s.running) return start()
  const q = s.running
    .catch(() => undefined)
    .then(() => {
      s.queued = undefined
      return start()
    })
  s.queued = q
  return q
}

/**
 * Creates `dir` and its missing parents with `mode` (forced, since `mkdir` leaves it to the umask).
 * A directory that already existed keeps its mode: Belt never chmods a directory it did not create
 * (`--store /tmp` must not change /tmp).
 */
export async function ensurePrivateDir(dir: string, mode = 0o700): Promise<void> {
  const first = await fs.mkdir(dir, {recursive: true, mode})
  if (first === undefined) return
  // mkdir returned the first directory it created; it and everything below it down to `dir` are new.
  const created: string[] = []
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    created.push(d)
    if (d === path.resolve(first) || d === path.dirname(d)) break
  }
  for (const d of created.reverse()) await fs.chmod(d, mode)
}
