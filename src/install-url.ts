/**
 * `--engine-install-url` names a script that runs as root on every host it installs: it must come
 * over https, except from a loopback or private-network address (a mirror or a test server on the
 * hosts' own network, which plain http cannot leave).
 */
import net from 'node:net'

/** 127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1, fc00::/7 and `localhost`. */
export function isLoopbackOrPrivate(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (net.isIPv4(h)) {
    const [a, b] = h.split('.').map(Number) as [number, number]
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)
  }
  if (net.isIPv6(h)) return h === '::1' || /^f[cd][0-9a-f]{2}:/.test(h)
  return false
}

/** Why `url` cannot be an engine install URL, or undefined when it can. One phrase, for a usage error. */
export function installUrlProblem(url: string): string | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return `'${url}' is not a URL`
  }
  if (u.protocol === 'https:') return undefined
  if (u.protocol === 'http:' && isLoopbackOrPrivate(u.hostname)) return undefined
  if (u.protocol === 'http:')
    return `${url} is plain http and the script runs as root on every host: use https:// (http:// only from a loopback or private-network address)`
  return `${url} is not an https:// URL`
}
