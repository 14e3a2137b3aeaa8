/**
 * Preloaded into a `belt` process by `bench/cpu.ts --steps` (`node --import`): counts the protocol
 * steps the process takes, from outside Belt's code, by wrapping what it calls. At exit it writes
 * the counts as JSON to the file named by BELT_STEP_COUNTS:
 * - sshHandshakes, sshCommands: ssh2 connections that became ready, and exec channels opened;
 * - tlsConnections, engineRequests: TLS connections and HTTPS requests (the engines' port 2376);
 * - apiRequests: plain HTTP requests (the DigitalOcean emulator on loopback);
 * - recordWrites: renames into the store's `hosts/` directory (each record write ends with one).
 */
import fs, {writeFileSync} from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import {createRequire} from 'node:module'
import tls from 'node:tls'

const counts = {sshHandshakes: 0, sshCommands: 0, tlsConnections: 0, engineRequests: 0, apiRequests: 0, recordWrites: 0}
type Fn = (...args: never[]) => unknown

function wrap<T extends object>(obj: T, name: keyof T & string, before: (self: unknown, args: unknown[]) => void): void {
  const original = obj[name] as unknown as Fn
  ;(obj as Record<string, unknown>)[name] = function (this: unknown, ...args: never[]) {
    before(this, args)
    return original.apply(this, args)
  }
}

// ssh2's client, resolved from Belt's package like Belt resolves it: the same module instance.
const Client = createRequire(import.meta.url)('ssh2/lib/client.js') as {prototype: Record<string, unknown>}
wrap(Client.prototype, 'connect', (self) => (self as {once(e: string, f: () => void): void}).once('ready', () => counts.sshHandshakes++))
wrap(Client.prototype, 'exec', () => counts.sshCommands++)
wrap(tls, 'connect', () => counts.tlsConnections++)
wrap(https, 'request', () => counts.engineRequests++)
wrap(http, 'request', () => counts.apiRequests++)
wrap(fs.promises, 'rename', (_self, args) => {
  if (/\/hosts\/[^/]+\.json$/.test(String(args[1]))) counts.recordWrites++
})

process.on('exit', () => {
  const file = process.env.BELT_STEP_COUNTS
  if (file) writeFileSync(file, JSON.stringify(counts))
})
