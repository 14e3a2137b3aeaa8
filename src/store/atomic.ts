import {promises as fs} from 'node:fs'
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
  const fh = await fs.open(tmp, 'wx', mode)
  try {
    await fh.writeFile(content)
    await fh.chmod(mode) // the umask may have narrowed or (never) widened the mode given to open
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await fs.rename(tmp, file)
  } catch (e) {
    await fs.rm(tmp, {force: true})
    throw e
  }
  await fsyncDir(dir)
}

/** Makes a rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
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
