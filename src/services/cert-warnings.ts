import {X509Certificate} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {certPaths} from '../pki/paths.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'

/** `ls` and `inspect` warn this many days before a certificate expires. */
export const EXPIRY_WARNING_DAYS = 30
const DAY = 86_400_000

function expiry(what: string, notAfter: Date, now: Date, fix: string): string | undefined {
  const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY)
  if (days >= EXPIRY_WARNING_DAYS) return undefined
  return days < 0 ? `${what} expired on ${notAfter.toISOString().slice(0, 10)}: ${fix}` : `${what} expires in ${days} day${days === 1 ? '' : 's'}: ${fix}`
}

/** A warning when the host's engine certificate expires within 30 days, else undefined. */
export function hostCertWarning(r: HostRecord, now = new Date()): string | undefined {
  if (!r.engine?.certNotAfter) return undefined
  return expiry('its server certificate', new Date(r.engine.certNotAfter), now, `belt regenerate-certs ${r.name}`)
}

/** Warnings for the store's CA and client certificate (none when they do not exist yet). */
export async function storeCertWarnings(store: Store, now = new Date()): Promise<string[]> {
  const p = certPaths(store)
  const out: string[] = []
  for (const [file, what, fix] of [
    [p.caCert, 'the CA certificate', "belt regenerate-certs --ca 'PATTERN-OF-ALL-HOSTS'"],
    [p.clientCert, 'the client certificate', 'belt regenerate-certs --client-certs HOST'],
  ] as const) {
    const pem = await readFile(file, 'utf8').catch(() => undefined)
    if (!pem) continue
    let notAfter: Date
    try {
      // Node's own parser is enough for a date: `ls` and `inspect` do not load the X.509 library.
      notAfter = new X509Certificate(pem).validToDate
    } catch (e) {
      out.push(`${file} is unreadable: the certificate is not a readable PEM certificate: ${(e as Error).message}`)
      continue
    }
    const w = expiry(`${what} (${file})`, notAfter, now, fix)
    if (w) out.push(w)
  }
  return out
}
