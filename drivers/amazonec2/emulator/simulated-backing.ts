import net from 'node:net'
import type {Backing, DriverContext, DriverOptions, HostSpec, Machine, MachineState} from '../../driver.js'

export interface SimulatedBackingOptions {
  /**
   * First two octets of the loopback addresses handed out (`127.N`); default a random N in
   * 64..191 so that two emulators in parallel rarely meet (an address in use is skipped anyway).
   */
  readonly secondOctet?: number
  /** Port of the fake SSH listener; 22 (needs root, as binding any port below 1024). */
  readonly port?: number
  /** Extra time each create takes (ms). */
  readonly createDelayMs?: number
  /** Host names whose create fails, to test launch failures. */
  readonly failNames?: ReadonlySet<string>
}

interface SimHost {
  readonly name: string
  readonly address: string
  server?: net.Server
  readonly sockets: Set<net.Socket>
  state: MachineState
}

/** A backing "driver" for the EC2 emulator's tests and benchmarks: a TCP listener per host on a loopback address. */
export interface SimulatedBacking extends Backing {
  /** Hosts whose listener is open now. */
  readonly listening: number
  /** Closes every listener and forgets every host. */
  close(): Promise<void>
}

/**
 * Each host is a loopback address 127.N.x.y with a tiny TCP listener on port 22 that greets like an
 * SSH server and hangs up: enough for "port 22 accepts" to be real, without sshd. Stop and kill
 * close the listener, start opens it again on the same address; remove closes it and frees the
 * address. Nothing leaves the loopback interface.
 */
export function createSimulatedBacking(opts: SimulatedBackingOptions = {}): SimulatedBacking {
  const second = opts.secondOctet ?? 64 + Math.floor(Math.random() * 128)
  const port = opts.port ?? 22
  const hosts = new Map<string, SimHost>()
  let next = 2 // 127.N.0.2 first

  const listen = (h: SimHost): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const server = net.createServer((sock) => {
        h.sockets.add(sock)
        sock.on('close', () => h.sockets.delete(sock))
        sock.on('error', () => undefined)
        sock.end('SSH-2.0-BeltSimulatedBacking\r\n')
      })
      server.once('error', reject)
      server.listen({host: h.address, port, exclusive: true}, () => {
        server.off('error', reject)
        resolve(server)
      })
    })

  const unlisten = async (h: SimHost): Promise<void> => {
    const server = h.server
    h.server = undefined
    if (!server) return
    for (const s of h.sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  const machine = (h: SimHost): Machine => ({id: `sim-${h.address}`, address: h.address, privateAddress: h.address, ssh: {user: 'root', port}, data: {address: h.address}})
  const find = (m: Machine): SimHost | undefined => hosts.get(String(m.data.address ?? m.address))

  const backing: SimulatedBacking = {
    name: 'simulated',
    description: 'loopback addresses with a TCP listener on port 22, for emulator tests',
    options: [],
    get listening() {
      return [...hosts.values()].filter((h) => h.server).length
    },

    async preflight(): Promise<void> {},

    async create(spec: HostSpec, _ctx: DriverContext): Promise<Machine> {
      if (opts.createDelayMs) await new Promise((r) => setTimeout(r, opts.createDelayMs))
      if (opts.failNames?.has(spec.name)) throw new Error(`simulated failure creating ${spec.name}`)
      // The next free address; one in use by another process is skipped.
      for (let tries = 0; tries < 1000; tries++) {
        const n = next++
        if (n >= 254 * 256) throw new Error('simulated backing: out of loopback addresses')
        const address = `127.${second}.${Math.floor(n / 254)}.${(n % 254) + 1}`
        if (hosts.has(address)) continue
        const h: SimHost = {name: spec.name, address, sockets: new Set(), state: 'running'}
        try {
          h.server = await listen(h)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') continue
          throw e
        }
        hosts.set(address, h)
        return machine(h)
      }
      throw new Error('simulated backing: no free loopback address found')
    },

    async state(m: Machine): Promise<MachineState> {
      return find(m)?.state ?? 'missing'
    },

    async remove(m: Machine): Promise<void> {
      const h = find(m)
      if (!h) return
      hosts.delete(h.address)
      await unlisten(h)
    },

    async stop(m: Machine): Promise<void> {
      const h = find(m)
      if (!h) throw new Error(`simulated backing: no host ${m.address}`)
      await unlisten(h)
      h.state = 'stopped'
    },

    async kill(m: Machine, o: DriverOptions, c: DriverContext): Promise<void> {
      await backing.stop!(m, o, c)
    },

    async start(m: Machine): Promise<Machine> {
      const h = find(m)
      if (!h) throw new Error(`simulated backing: no host ${m.address}`)
      if (!h.server) h.server = await listen(h)
      h.state = 'running'
      return machine(h)
    },

    async restart(m: Machine): Promise<Machine> {
      const h = find(m)
      if (!h) throw new Error(`simulated backing: no host ${m.address}`)
      await unlisten(h)
      h.server = await listen(h)
      return machine(h)
    },

    async close(): Promise<void> {
      const all = [...hosts.values()]
      hosts.clear()
      await Promise.all(all.map(unlisten))
    },
  }
  return backing
}
