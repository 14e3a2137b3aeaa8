import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {SFTPWrapper, Stats} from 'ssh2'
import {usageError} from '../errors.js'
import type {SshRemote} from './ssh2-remote.js'

/**
 * `HOST:PATH`, `PATTERN:PATH` (`'node*':/tmp/`, `node[1:3]:/tmp/`: `pattern` is set) or a local path.
 * A colon after a slash is part of a local path (`./a:b`).
 */
export function parseScpTarget(arg: string): {host?: string; path: string; pattern?: boolean} {
  const m = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?):(.*)$/.exec(arg)
  if (m) return {host: m[1], path: m[3] === '' ? '.' : m[3]!}
  const g = /^((?:[a-z0-9*?-]|\[[0-9:]*\])+):(.*)$/.exec(arg)
  if (g && /[*?[]/.test(g[1]!)) return {host: g[1], path: g[2] === '' ? '.' : g[2]!, pattern: true}
  return {path: arg}
}

const promisify =
  <T>(fn: (cb: (e: Error | null | undefined, v: T) => void) => void) =>
  () =>
    new Promise<T>((res, rej) => fn((e, v) => (e ? rej(e) : res(v))))

async function rstat(sftp: SFTPWrapper, p: string): Promise<Stats | undefined> {
  try {
    return await promisify<Stats>((cb) => sftp.stat(p, cb))()
  } catch (e) {
    if ((e as {code?: unknown}).code === 2) return undefined
    throw e
  }
}

/**
 * Copies a local file (or, with `recursive`, a directory) to the host, keeping modes. A destination
 * that is an existing directory receives the source under its own name, as scp does.
 */
export async function copyToRemote(remote: SshRemote, local: string, remotePath: string, o: {recursive?: boolean} = {}): Promise<void> {
  const sftp = await remote.sftp()
  await checkLocalSource(local, o)
  const dst = (await rstat(sftp, remotePath))?.isDirectory() ? path.posix.join(remotePath, path.basename(local)) : remotePath
  await putTree(sftp, local, dst)
}

/** Rejects (usage error) a local source that does not exist, or a directory without `recursive`. */
export async function checkLocalSource(local: string, o: {recursive?: boolean} = {}): Promise<void> {
  const st = await fs.stat(local).catch(() => undefined)
  if (!st) throw usageError(`${local}: no such file or directory`, 'E_SCP_SOURCE')
  if (st.isDirectory() && !o.recursive) throw usageError(`${local} is a directory`, 'E_SCP_DIRECTORY', 'pass -r to copy directories')
}

async function putTree(sftp: SFTPWrapper, local: string, dst: string): Promise<void> {
  const st = await fs.stat(local)
  const mode = st.mode & 0o7777
  if (st.isDirectory()) {
    if (!(await rstat(sftp, dst))) await promisify<void>((cb) => sftp.mkdir(dst, {mode}, (e) => cb(e, undefined)))()
    for (const name of await fs.readdir(local)) await putTree(sftp, path.join(local, name), path.posix.join(dst, name))
    return
  }
  await promisify<void>((cb) => sftp.fastPut(local, dst, {mode}, (e) => cb(e, undefined)))()
  await promisify<void>((cb) => sftp.chmod(dst, mode, (e) => cb(e, undefined)))()
}

/** Copies a remote file (or, with `recursive`, a directory) to this machine, keeping modes. */
export async function copyFromRemote(remote: SshRemote, remotePath: string, local: string, o: {recursive?: boolean} = {}): Promise<void> {
  const sftp = await remote.sftp()
  const st = await rstat(sftp, remotePath)
  if (!st) throw usageError(`${remote.hostName}:${remotePath}: no such file or directory`, 'E_SCP_SOURCE')
  if (st.isDirectory() && !o.recursive) throw usageError(`${remote.hostName}:${remotePath} is a directory`, 'E_SCP_DIRECTORY', 'pass -r to copy directories')
  const lst = await fs.stat(local).catch(() => undefined)
  const dst = lst?.isDirectory() ? path.join(local, path.posix.basename(remotePath)) : local
  await getTree(sftp, remotePath, dst)
}

async function getTree(sftp: SFTPWrapper, src: string, dst: string): Promise<void> {
  const st = (await rstat(sftp, src))!
  const mode = st.mode & 0o7777
  if (st.isDirectory()) {
    await fs.mkdir(dst, {recursive: true, mode})
    const list = await promisify<{filename: string}[]>((cb) => sftp.readdir(src, cb))()
    for (const e of list) await getTree(sftp, path.posix.join(src, e.filename), path.join(dst, e.filename))
    return
  }
  await promisify<void>((cb) => sftp.fastGet(src, dst, (e) => cb(e, undefined)))()
  await fs.chmod(dst, mode)
}
