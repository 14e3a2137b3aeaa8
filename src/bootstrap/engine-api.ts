import https from 'node:https'
import tls from 'node:tls'

/** The client side of the engine's mutual TLS: the store's CA and client certificate. */
export interface ClientTls {
  ca: string
  cert: string
  key: string
}

/** What belt keeps of `GET /info` and `GET /version`. */
export interface EngineInfo {
  id: string
  name: string
  serverVersion: string
  apiVersion: string
  labels: string[]
  swarm: {nodeId: string; localNodeState: string; controlAvailable: boolean; clusterId?: string}
}

/**
 * One keep-alive agent per engine and client certificate: a batch polls hundreds of engines, and a
 * new TLS handshake per call costs CPU on the same machine the swarm leader needs. Idle sockets
 * are unref'd so they never keep the process alive.
 */
const agents = new Map<string, https.Agent>()
function agentFor(address: string, port: number, client: ClientTls): https.Agent {
  const key = `${address}:${port}:${client.cert.length}:${client.cert.slice(-64)}`
  let a = agents.get(key)
  if (!a) {
    a = new https.Agent({keepAlive: true, maxSockets: 4, maxFreeSockets: 1, secureContext: secureContextFor(client), timeout: 60_000})
    a.on('free', (socket) => socket.unref())
    agents.set(key, a)
  }
  return a
}

/**
 * One TLS context per client certificate: given the PEM strings, every new connection would parse
 * the CA, the certificate and the private key again (a few ms each); a batch connects to hundreds
 * of engines with the same client pair.
 */
const contexts = new Map<string, tls.SecureContext>()
function secureContextFor(client: ClientTls): tls.SecureContext {
  const key = `${client.ca}\0${client.cert}\0${client.key}`
  let c = contexts.get(key)
  if (!c) {
    c = tls.createSecureContext({ca: client.ca, cert: client.cert, key: client.key})
    contexts.set(key, c)
  }
  return c
}

/** An Engine API error: the status and the daemon's own message. */
export class EngineApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    readonly daemonMessage: string,
  ) {
    super(`engine API ${path} answered ${status}: ${daemonMessage.slice(0, 300)}`)
    this.name = 'EngineApiError'
  }
}

/**
 * One Docker Engine API call over mutual TLS: JSON in, JSON (or nothing) out. Rejects with an
 * {@link EngineApiError} carrying the daemon's message for a non-2xx status, and with the socket
 * error on TLS or network failures, or after `timeoutMs`.
 */
export async function engineRequest<T = unknown>(
  address: string,
  port: number,
  client: ClientTls,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  return (await engineExchange<T>(address, port, client, method, path, body, timeoutMs)).json
}

/** {@link engineRequest} with the response's headers. */
function engineExchange<T>(
  address: string,
  port: number,
  client: ClientTls,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<{json: T; headers: NodeJS.Dict<string | string[]>}> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const req = https.request(
      {
        host: address,
        port,
        path,
        method,
        timeout: timeoutMs, // the client's TLS context comes with the agent
        agent: agentFor(address, port, client),
        headers: payload ? {'content-type': 'application/json', 'content-length': payload.length} : {},
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          let json: unknown
          try {
            json = text.trim() ? JSON.parse(text) : undefined
          } catch {
            json = text
          }
          if (status >= 300) {
            const msg = typeof json === 'object' && json && 'message' in json ? String((json as {message: unknown}).message) : text.trim()
            return reject(new EngineApiError(status, path, msg))
          }
          resolve({json: json as T, headers: res.headers})
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`engine API ${method} ${path} on ${address} did not answer within ${Math.round(timeoutMs / 1000)} s`)))
    req.on('error', reject)
    req.on('socket', (socket) => socket.ref())
    req.end(payload)
  })
}


interface RawInfo {
  ID: string
  Name: string
  ServerVersion: string
  Labels: string[] | null
  Swarm: {NodeID: string; LocalNodeState: string; ControlAvailable: boolean; Cluster?: {ID: string}}
}

/** `GET /info` (and its Api-Version header), reduced to what belt records. */
export async function engineInfo(address: string, port: number, tls: ClientTls): Promise<EngineInfo> {
  const {json: info, headers} = await engineExchange<RawInfo>(address, port, tls, 'GET', '/info', undefined, 10_000)
  // Every answer of the engine names its API version in a header; /version only when it is missing.
  const header = headers['api-version']
  const apiVersion = typeof header === 'string' && /^\d+\.\d+$/.test(header) ? header : (await engineRequest<{ApiVersion: string}>(address, port, tls, 'GET', '/version', undefined, 10_000)).ApiVersion
  return {
    id: info.ID,
    name: info.Name,
    serverVersion: info.ServerVersion,
    apiVersion,
    labels: info.Labels ?? [],
    swarm: {
      nodeId: info.Swarm.NodeID,
      localNodeState: info.Swarm.LocalNodeState,
      controlAvailable: info.Swarm.ControlAvailable,
      clusterId: info.Swarm.Cluster?.ID,
    },
  }
}

/**
 * Polls {@link engineInfo} until the engine answers over TLS or `timeoutMs` passes; rejects with the
 * last error then (never success after the retries ran out).
 */
export async function waitForEngine(address: string, port: number, tls: ClientTls, timeoutMs: number, signal?: AbortSignal): Promise<EngineInfo> {
  const deadline = Date.now() + timeoutMs
  let delay = 200
  let last: unknown
  for (;;) {
    signal?.throwIfAborted()
    try {
      return await engineInfo(address, port, tls)
    } catch (e) {
      last = e
    }
    if (Date.now() + delay > deadline)
      throw new Error(`the engine at ${address}:${port} did not answer over TLS within ${Math.round(timeoutMs / 1000)} s: ${(last as Error)?.message ?? last}`, {cause: last})
    await new Promise((r) => setTimeout(r, delay))
    delay = Math.min(2000, Math.round(delay * 1.5))
  }
}
