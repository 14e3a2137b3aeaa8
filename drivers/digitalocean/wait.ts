import {tcpAccepts} from '../tcp.js'
import {realSleep, type Sleep} from './rate-gate.js'

/** One TCP connection attempt: true when `host:port` accepts within `timeoutMs`. */
export type TcpProbe = (host: string, port: number, timeoutMs: number) => Promise<boolean>

export const tcpProbe: TcpProbe = tcpAccepts

/**
 * Resolves when `host:port` accepts a TCP connection; rejects after `timeoutMs` (bounded), or when
 * `signal` aborts.
 */
export async function waitForTcp(
  host: string,
  port: number,
  opts: {timeoutMs: number; intervalMs?: number; probe?: TcpProbe; sleep?: Sleep; now?: () => number; signal?: AbortSignal},
): Promise<void> {
  const now = opts.now ?? Date.now
  const probe = opts.probe ?? tcpProbe
  const sleep = opts.sleep ?? realSleep
  const deadline = now() + opts.timeoutMs
  for (;;) {
    opts.signal?.throwIfAborted()
    if (await probe(host, port, Math.min(5000, Math.max(1, deadline - now())))) return
    if (now() >= deadline) throw new Error(`${host}:${port} did not accept SSH connections within ${Math.round(opts.timeoutMs / 1000)} s`)
    await sleep(Math.min(opts.intervalMs ?? 2000, Math.max(0, deadline - now())), opts.signal)
  }
}
