/**
 * The client's HTTP transport: Node's http/https with keep-alive, shaped like `fetch` so that a
 * fetch (or a test's fake) can stand in. Not `fetch` itself: undici parses HTTP with llhttp
 * compiled to WebAssembly, and V8 compiles its hot functions again with TurboFan in the
 * background, about 0.2 s of CPU in every `belt create` that talks to the API (measured with `perf
 * record`), where node:http's parser is native code. The answer's body is read whole (the API's
 * answers are small JSON documents).
 */
import http from 'node:http'
import https from 'node:https'

/** What the client reads of an answer. A fetch `Response` has all of it. */
export interface HttpAnswer {
  readonly status: number
  readonly statusText: string
  readonly headers: {get(name: string): string | null}
  readonly body?: {cancel(): Promise<void>} | null
  text(): Promise<string>
  json(): Promise<unknown>
}

export interface HttpInit {
  method: string
  headers: Record<string, string>
  body?: string
  /** Aborts the request; the promise rejects with the signal's reason (a TimeoutError for AbortSignal.timeout). */
  signal?: AbortSignal
}

/** `fetch`'s shape, as far as the client uses it. */
export type HttpFetch = (url: URL, init: HttpInit) => Promise<HttpAnswer>

// Idle keep-alive sockets are unref'd by Node's agent, so they never keep the process alive.
const agents = {'http:': new http.Agent({keepAlive: true}), 'https:': new https.Agent({keepAlive: true})}

/** One request over node:http(s); rejects on network errors, and with the signal's reason when aborted. */
export const nodeFetch: HttpFetch = (url, init) =>
  new Promise<HttpAnswer>((resolve, reject) => {
    const signal = init.signal
    if (signal?.aborted) return reject(signal.reason)
    const protocol = url.protocol === 'http:' ? 'http:' : 'https:'
    const send = protocol === 'http:' ? http.request : https.request
    const payload = init.body === undefined ? undefined : Buffer.from(init.body)
    const headers: Record<string, string | number> = {...init.headers}
    if (payload) headers['content-length'] = payload.length
    let settled = false
    const req = send(url, {method: init.method, headers, agent: agents[protocol]}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('error', fail)
      res.on('end', () => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        const text = Buffer.concat(chunks).toString('utf8')
        const status = res.statusCode ?? 0
        resolve({
          status,
          statusText: res.statusMessage ?? '',
          headers: {
            get(name: string): string | null {
              const v = res.headers[name.toLowerCase()]
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
            },
          },
          body: {cancel: async () => undefined},
          text: async () => text,
          json: async () => JSON.parse(text) as unknown,
        })
      })
    })
    function fail(e: unknown): void {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      reject(e)
    }
    function onAbort(): void {
      const reason: unknown = signal!.reason
      fail(reason)
      req.destroy(reason instanceof Error ? reason : new Error(String(reason)))
    }
    signal?.addEventListener('abort', onAbort, {once: true})
    req.on('error', fail)
    req.end(payload)
  })
