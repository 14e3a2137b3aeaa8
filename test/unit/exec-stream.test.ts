import net from 'node:net'
import ssh2 from 'ssh2'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {streamExec} from '../../src/services/exec-hosts.js'
import {generateSshKeyPair} from '../../src/ssh/keys.js'
import {connect, type SshRemote} from '../../src/ssh/ssh2-remote.js'

/**
 * An in-process SSH server whose exec requests follow a script by command name: what it writes, in
 * which chunks, and how it ends (exit status, signal, or the connection cut mid-command).
 */
let server: ssh2.Server
let port: number
const serverClients = new Set<ssh2.Connection>()

beforeAll(async () => {
  const hostKey = generateSshKeyPair('host').privateKey
  server = new ssh2.Server({hostKeys: [hostKey]}, (client) => {
    serverClients.add(client)
    client.on('close', () => serverClients.delete(client))
    client.on('error', () => undefined)
    client.on('authentication', (ctx) => ctx.accept())
    client.on('session', (accept) => {
      const session = accept()
      session.on('exec', (acceptExec, _reject, info) => {
        const ch = acceptExec()
        if (info.command === 'cat') {
          // Answers only once its stdin ends: a client that kept stdin open would wait for ever.
          let input = ''
          ch.on('data', (d: Buffer) => (input += d))
          ch.on('end', () => {
            ch.write(`stdin had ${input.length} bytes\n`)
            ch.exit(0)
            ch.end()
          })
        } else if (info.command === 'chunks') {
          ch.write('li')
          ch.write('ne1\nline')
          ch.stderr.write('warn\n')
          ch.write('2\n')
          ch.exit(3)
          ch.end()
        } else if (info.command === 'killed') {
          ch.write('before\n')
          ch.exit('KILL', false, '')
          ch.end()
        } else if (info.command === 'cut') {
          ch.write('partial\n')
          setImmediate(() => client.end())
        }
      })
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as net.AddressInfo).port
})
afterAll(async () => {
  for (const c of serverClients) c.end()
  await new Promise((r) => server.close(r))
})

const open = (): Promise<SshRemote> =>
  connect({host: '127.0.0.1', port, username: 'root', privateKey: generateSshKeyPair('belt').privateKey, hostName: 'node1', knownHostKeys: []})

function collector() {
  const out: string[] = []
  const err: string[] = []
  return {sink: {stdout: (c: Buffer) => out.push(c.toString()), stderr: (c: Buffer) => err.push(c.toString())}, out, err}
}

describe('streamExec over a real SSH connection', () => {
  it('streams stdout and stderr as they come, closes stdin at once, and resolves with the exit status', async () => {
    const remote = await open()
    try {
      const c = collector()
      expect(await streamExec(remote, 'chunks', c.sink)).toBe(3)
      expect(c.out.join('')).toBe('line1\nline2\n')
      expect(c.out.length).toBeGreaterThan(1)
      expect(c.err.join('')).toBe('warn\n')
      const cat = collector()
      expect(await streamExec(remote, 'cat', cat.sink)).toBe(0)
      expect(cat.out.join('')).toBe('stdin had 0 bytes\n')
    } finally {
      await remote.close()
    }
  })

  it('a command killed by a signal ends 128+N, as ssh reports it', async () => {
    const remote = await open()
    try {
      const c = collector()
      expect(await streamExec(remote, 'killed', c.sink)).toBe(137)
      expect(c.out.join('')).toBe('before\n')
    } finally {
      await remote.close()
    }
  })

  it('a connection cut mid-command settles 255 (no exit status) instead of hanging', async () => {
    const remote = await open()
    const c = collector()
    expect(await streamExec(remote, 'cut', c.sink)).toBe(255)
    expect(c.out.join('')).toBe('partial\n')
    await remote.close()
  })
})
