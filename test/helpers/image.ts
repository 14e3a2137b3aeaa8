import {execFileSync} from 'node:child_process'
import {copyFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/**
 * A tarball for `docker import` holding /usr/bin/sleep and the libraries it links: a runnable
 * image made from this machine's own binaries, since no registry can be reached.
 */
export function sleepImageTar(dir: string): string {
  const root = mkdtempSync(path.join(dir, 'img-'))
  const files = ['/usr/bin/sleep', ...execFileSync('ldd', ['/usr/bin/sleep'], {encoding: 'utf8'}).match(/\/\S+/g)!]
  for (const f of files) {
    mkdirSync(path.join(root, path.dirname(f)), {recursive: true})
    copyFileSync(f, path.join(root, f)) // follows symlinks
    chmodSync(path.join(root, f), 0o755)
  }
  const tar = path.join(dir, 'sleep.tar')
  execFileSync('tar', ['-C', root, '-cf', tar, '.'])
  rmSync(root, {recursive: true, force: true})
  return tar
}

export const tmpBase = os.tmpdir()
