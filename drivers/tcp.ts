import net from 'node:net'

/**
 * One TCP connection attempt: true when `host:port` accepts within `timeoutMs`, false on refusal,
 * timeout or any other error. Shared by the drivers' "SSH port open" waits and the conformance suite.
 */
export function tcpAccepts(host: string, port: number, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({host, port})
    const done = (ok: boolean) => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(timeoutMs, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}
