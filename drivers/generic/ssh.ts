import {createRequire} from 'node:module'
import type {Client as SshClient, ClientChannel, ConnectConfig} from 'ssh2'
import type {GenericHost} from './inventory.js'

/** ssh2's client class alone, as src/ssh does: the package's index loads its server and agents too. */
const Client = createRequire(import.meta.url)('ssh2/lib/client.js') as typeof SshClient

/** One SSH hop: the bastion (when there is one), then the host through a forwarded channel. */
export interface Hop {
  readonly role: 'proxy' | 'host'
  readonly user: string
  readonly host: string
  readonly port: number
}

/**
 * How the driver (and every later connection, through the Machine) reaches a host: the bastion
 * first, then the host's address and port as a channel the bastion forwards (ssh -J), both with
 * the same key. Pure, so the plan is unit-tested.
 */
export function connectionPlan(h: GenericHost): Hop[] {
  const host: Hop = {role: 'host', user: h.user, host: h.address, port: h.port}
  return h.proxy ? [{role: 'proxy', user: h.proxy.user, host: h.proxy.host, port: h.proxy.port}, host] : [host]
}

/** `type base64` of a raw SSH public key blob (its first field is the type). */
export function blobToLine(blob: Buffer): string {
  const n = blob.readUInt32BE(0)
  return `${blob.subarray(4, 4 + n).toString('ascii')} ${blob.toString('base64')}`
}

const where = (hop: Hop) => `${hop.user}@${hop.host}:${hop.port}${hop.role === 'proxy' ? ' (the SSH proxy)' : ''}`

/** Errors worth another attempt: nothing listens yet, a cut handshake, a hop that cannot reach. */
export function isTransient(e: unknown): boolean {
  const code = (e as {code?: string}).code
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(code)) return true
  const msg = e instanceof Error ? e.message : String(e)
  return (e as {level?: string}).level === 'client-timeout' || /handshake|closed before it was ready/i.test(msg)
}

/** An authentication failure: the key or user is wrong (never retried). */
export class AuthRefused extends Error {}

function hopConnect(hop: Hop, privateKey: string, sock: ClientChannel | undefined, timeoutMs: number): Promise<{client: SshClient; key: string}> {
  return new Promise((resolve, reject) => {
    const client = new Client()
    let key = ''
    let done = false
    const fail = (e: unknown) => {
      if (done) return
      done = true
      client.end()
      reject(e)
    }
    client.once('ready', () => {
      done = true
      resolve({client, key})
    })
    client.on('error', (e: Error & {level?: string}) => {
      if (e.level === 'client-authentication') fail(new AuthRefused(`${where(hop)} refused the key`))
      else fail(Object.assign(new Error(`${where(hop)}: ${e.message}`), {code: (e as {code?: string}).code, level: e.level}))
    })
    client.on('close', () => fail(new Error(`${where(hop)}: the connection closed before it was ready`)))
    const config: ConnectConfig = {
      host: hop.host,
      port: hop.port,
      username: hop.user,
      privateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (blob: Buffer) => {
        key = blobToLine(blob)
        return true
      },
      ...(sock ? {sock: sock as unknown as ConnectConfig['sock']} : {}),
    }
    client.connect(config)
  })
}

/** A connection along a plan: the host's client, the keys each hop presented, and close(). */
export interface PlannedConnection {
  readonly client: SshClient
  /** The host key each hop presented (`type base64`), by role. */
  readonly keys: {readonly proxy?: string; readonly host?: string}
  /** Runs a command (bounded by the connection's timeout). */
  exec(command: string): Promise<{code: number; stdout: string; stderr: string}>
  close(): void
}

/**
 * Connects along `plan` (at most two hops). `upTo: 'forward'` stops after the bastion opened a TCP
 * channel to the host (a reachability check that logs in to the bastion only).
 */
export async function connectPlan(plan: readonly Hop[], privateKey: string, timeoutMs = 15_000, upTo: 'login' | 'forward' = 'login'): Promise<PlannedConnection> {
  const clients: SshClient[] = []
  const keys: {proxy?: string; host?: string} = {}
  const close = () => {
    for (const c of clients.reverse()) c.end()
  }
  try {
    let sock: ClientChannel | undefined
    for (const hop of plan) {
      if (hop.role === 'host' && upTo === 'forward') {
        const via = clients.at(-1)
        if (!via) throw new Error('a reachability check through a forward needs a proxy')
        const ch = await forward(via, hop, timeoutMs)
        ch.close()
        break
      }
      const prev = clients.at(-1)
      if (prev) sock = await forward(prev, hop, timeoutMs)
      const {client, key} = await hopConnect(hop, privateKey, sock, timeoutMs)
      clients.push(client)
      keys[hop.role] = key
    }
  } catch (e) {
    close()
    throw e
  }
  const client = clients.at(-1)!
  return {
    client,
    keys,
    close,
    exec: (command) => {
      const ran = new Promise<{code: number; stdout: string; stderr: string}>((resolve, reject) =>
        client.exec(command, (err, ch) => {
          if (err) return reject(err)
          let stdout = ''
          let stderr = ''
          let code = 255
          ch.on('data', (d: Buffer) => (stdout += d.toString()))
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
          ch.on('exit', (c: number | null) => (code = c ?? 255))
          ch.on('close', () => resolve({code, stdout, stderr}))
          ch.end()
        }),
      )
      return bounded(ran, timeoutMs, `a command on ${plan.at(-1)!.host}`)
    },
  }
}

/** `p`, or a rejection (code ETIMEDOUT: worth another attempt) after `ms`. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`), {code: 'ETIMEDOUT'})), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(t))
}

function forward(via: SshClient, hop: Hop, timeoutMs: number): Promise<ClientChannel> {
  return bounded(
    new Promise((resolve, reject) =>
      via.forwardOut('127.0.0.1', 0, hop.host, hop.port, (err, ch) =>
        err ? reject(Object.assign(new Error(`the SSH proxy could not reach ${hop.host}:${hop.port}: ${err.message}`), {code: 'ECONNREFUSED'})) : resolve(ch),
      ),
    ),
    timeoutMs,
    `the SSH proxy's connection to ${hop.host}:${hop.port}`,
  )
}
