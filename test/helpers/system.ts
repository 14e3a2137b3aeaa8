import {execFile} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** What Belt may leave behind on this machine: compared before and after a test. */
export interface SystemSnapshot {
  netns: string[]
  links: string[]
  mounts: string[]
  processes: string[]
  /** Machine-wide settings Belt may change while hosts exist (the ARP table limits). */
  sysctls: string[]
}

/** Network namespaces, root-namespace links, mount points, and sshd/tini/unshare/dockerd processes. */
export async function systemSnapshot(): Promise<SystemSnapshot> {
  const netns = (await run('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean)
    .sort()
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter(Boolean)
    .sort()
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter(Boolean)
    .sort()
  const ps = await run('ps', ['-eo', 'pid=,comm=']).catch(() => ({stdout: ''}))
  const processes = ps.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /\s(sshd|tini|unshare|dockerd|containerd)$/.test(l))
    .sort()
  const sysctls = await Promise.all(
    ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map(async (k) => `${k}=${(await readFile(`/proc/sys/net/ipv4/neigh/default/${k}`, 'utf8')).trim()}`),
  )
  return {netns, links, mounts, processes, sysctls}
}
