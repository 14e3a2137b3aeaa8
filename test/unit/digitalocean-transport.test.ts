import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {nodeFetch} from '../../drivers/digitalocean/transport.js'

// The DigitalOcean client's transport against a real HTTP server on loopback.
interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
  socket: number
}

let server: http.Server
let base: URL
const seen: Seen[] = []
const sockets = new Map<unknown, number>()

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      if (!sockets.has(req.socket)) sockets.set(req.socket, sockets.size + 1)
      seen.push({method: req.method!, url: req.url!, headers: req.headers, body, socket: sockets.get(req.socket)!})
      if (req.url === '/slow') return // never answers: the caller's signal ends it
      if (req.url === '/empty') {
        res.writeHead(204)
        return res.end()
      }
      res.setHeader('ratelimit-remaining', '4999')
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(req.url === '/missing' ? 404 : 200, req.url === '/missing' ? 'Not Found' : 'OK', {'content-type': 'application/json'})
      res.end(JSON.stringify({echo: body, url: req.url}))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
})

describe('nodeFetch', () => {
  it('sends the method, headers and body, and reads status, headers and body back', async () => {
    const res = await nodeFetch(new URL('v2/droplets?tag_name=x', base), {method: 'POST', headers: {authorization: 'Bearer t', 'content-type': 'application/json'}, body: '{"names":["é"]}'})
    expect(res.status).toBe(200)
    expect(res.statusText).toBe('OK')
    expect(res.headers.get('RateLimit-Remaining')).toBe('4999')
    expect(res.headers.get('set-cookie')).toBe('a=1, b=2')
    expect(res.headers.get('retry-after')).toBeNull()
    expect(await res.json()).toEqual({echo: '{"names":["é"]}', url: '/v2/droplets?tag_name=x'})
    const s = seen.at(-1)!
    expect(s.method).toBe('POST')
    expect(s.headers.authorization).toBe('Bearer t')
    // The byte length, not the string's: é is two bytes.
    expect(s.headers['content-length']).toBe(String(Buffer.byteLength('{"names":["é"]}')))
  })

  it('gives error statuses and empty bodies as answers, not rejections', async () => {
    const missing = await nodeFetch(new URL('missing', base), {method: 'GET', headers: {}})
    expect([missing.status, missing.statusText]).toEqual([404, 'Not Found'])
    const empty = await nodeFetch(new URL('empty', base), {method: 'DELETE', headers: {}})
    expect(empty.status).toBe(204)
    expect(await empty.text()).toBe('')
    await expect(empty.body!.cancel()).resolves.toBeUndefined()
  })

  it('keeps the connection for the next request', async () => {
    await nodeFetch(new URL('a', base), {method: 'GET', headers: {}})
    await nodeFetch(new URL('b', base), {method: 'GET', headers: {}})
    const [a, b] = seen.slice(-2)
    expect(a!.socket).toBe(b!.socket)
  })

  it("rejects with the signal's reason when it times out, and with the reason given when aborted", async () => {
    const timedOut = await nodeFetch(new URL('slow', base), {method: 'GET', headers: {}, signal: AbortSignal.timeout(50)}).catch((e: unknown) => e)
    expect(timedOut).toBeInstanceOf(DOMException)
    expect((timedOut as DOMException).name).toBe('TimeoutError')
    const ac = new AbortController()
    const p = nodeFetch(new URL('slow', base), {method: 'GET', headers: {}, signal: ac.signal})
    const reason = new Error('interrupted')
    setTimeout(() => ac.abort(reason), 20)
    await expect(p).rejects.toBe(reason)
    await expect(nodeFetch(new URL('a', base), {method: 'GET', headers: {}, signal: AbortSignal.abort(reason)})).rejects.toBe(reason)
  })

  it('rejects with the network error when nothing listens', async () => {
    const closed = http.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((r) => closed.close(() => r()))
    await expect(nodeFetch(new URL(`http://127.0.0.1:${port}/`), {method: 'GET', headers: {}})).rejects.toMatchObject({code: 'ECONNREFUSED'})
  })
})
