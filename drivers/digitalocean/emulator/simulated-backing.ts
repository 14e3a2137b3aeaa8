/**
 * A backing driver for the emulator that makes no real host: each "machine" is a loopback address
 * 127.B.x.y with a tiny TCP listener on port 22 that answers with an SSH banner and hangs up. So the
 * droplet has a unique address and the driver's "port 22 accepts" wait is a real TCP connection,
 * but nothing can log in: use the `local` backing for SSH bootstrap and swarm tests.
 *
 * The whole 127.0.0.0/8 block is local on Linux, so binding 127.B.x.y:22 needs no address set-up,
 * only the privilege to bind a port below 1024 (root or CAP_NET_BIND_SERVICE). An address already
 * bound by someone else is skipped. State lives in this object (it is a simulation, not a driver
 * Belt's store would keep hosts of).
 */
import net from 'node:net'
import {environmentError} from '../../../src/errors.js'
import type {Backing, DriverContext, DriverOptions, HostSpec, Machine, MachineState} from '../../driver.js'

export interface SimulatedBackingOptions {
  /** Second octet of the addresses handed out (127.<octet>.x.y); default 77. */
  octet?: number
  /** Listen on port 22 of each address (default true). */
  listen?: boolean
}

interface SimHost {
  address: string
  name: string
  server?: net.Server
}

const BANNER = 'SSH-2.0-BeltSimulatedHost\r\n'

function listen(address: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined)
      sock.end(BANNER)
    })
    server.once('error', reject)
    server.listen({host: address, port: 22, exclusive: true}, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}

const close = (s?: net.Server) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()))

export class SimulatedBacking implements Backing {
  readonly name = 'simulated'
  readonly description = 'loopback addresses with a banner on port 22, for emulator tests and rehearsals'
  readonly options = [] as const
  private readonly hosts = new Map<string, SimHost>()
  private next = 1
  private readonly octet: number
  private readonly doListen: boolean

  constructor(opts: SimulatedBackingOptions = {}) {
    this.octet = opts.octet ?? 77
    this.doListen = opts.listen ?? true
    if (!Number.isInteger(this.octet) || this.octet < 1 || this.octet > 254) throw new RangeError(`octet must be 1..254, got ${this.octet}`)
  }

  /** Hosts that exist now. */
  get size(): number {
    return this.hosts.size
  }

  async preflight(_options: DriverOptions, _ctx: DriverContext): Promise<void> {}

  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    for (let tries = 0; tries < 65_000; tries++) {
      const i = this.next++
      if (this.next > 65_023) this.next = 1
      const address = `127.${this.octet}.${(i >> 8) & 255}.${(i & 255) || 1}`
      if ([...this.hosts.values()].some((h) => h.address === address)) continue
      let server: net.Server | undefined
      if (this.doListen) {
        try {
          server = await listen(address)
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if (code === 'EADDRINUSE') continue
          if (code === 'EACCES') throw environmentError('the simulated backing binds port 22 on loopback addresses: run as root', 'E_SIM_PORT', undefined, e)
          throw e
        }
      }
      const id = `sim-${i}`
      this.hosts.set(id, {address, name: spec.name, server})
      await ctx.journal({kind: 'simulated-host', id, action: 'created'})
      return {id, address, ssh: {user: 'root', port: 22}, data: {name: spec.name}}
    }
    throw new Error('the simulated backing ran out of loopback addresses')
  }

  async state(m: Machine): Promise<MachineState> {
    const h = this.hosts.get(m.id)
    if (!h) return 'missing'
    return h.server || !this.doListen ? 'running' : 'stopped'
  }

  async remove(m: Machine, _options: DriverOptions, ctx: DriverContext): Promise<void> {
    const h = this.hosts.get(m.id)
    if (!h) return
    this.hosts.delete(m.id)
    await close(h.server)
    await ctx.journal({kind: 'simulated-host', id: m.id, action: 'deleted'})
  }

  async stop(m: Machine): Promise<void> {
    const h = this.hosts.get(m.id)
    if (!h) throw new Error(`simulated host ${m.id} does not exist`)
    await close(h.server)
    h.server = undefined
  }

  async kill(m: Machine): Promise<void> {
    return this.stop(m)
  }

  async start(m: Machine): Promise<Machine> {
    const h = this.hosts.get(m.id)
    if (!h) throw new Error(`simulated host ${m.id} does not exist`)
    if (!h.server && this.doListen) h.server = await listen(h.address)
    return m
  }

  async restart(m: Machine): Promise<Machine> {
    await this.stop(m)
    return this.start(m)
  }

  /** Closes every listener (the emulator calls remove for each droplet first). */
  async removeCluster(): Promise<void> {
    for (const [id, h] of this.hosts) {
      this.hosts.delete(id)
      await close(h.server)
    }
  }
}

export function createSimulatedBacking(opts?: SimulatedBackingOptions): SimulatedBacking {
  return new SimulatedBacking(opts)
}
