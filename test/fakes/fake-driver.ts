import type {Driver, DriverContext, DriverOptions, HostSpec, Machine, MachineState} from '../../drivers/driver.js'
import type {DriverEntry} from '../../drivers/registry.js'

/**
 * An in-memory driver for service unit tests. It fails loudly on calls the contract forbids
 * (create of a name that exists, state/remove of an id it never issued) and records every call.
 */
export class FakeDriver implements Driver {
  readonly name = 'fake'
  readonly description = 'in-memory fake driver for unit tests'
  readonly options = [{name: 'token', description: 'a secret for tests', env: 'FAKE_TOKEN', secret: true}, {name: 'size', description: 'a plain option', default: 's1'}] as const
  readonly hosts = new Map<string, {state: MachineState; name: string}>()
  readonly calls: string[] = []
  inFlight = 0
  peakInFlight = 0
  /** Names whose create rejects. */
  failCreate = new Set<string>()
  /** Names whose remove rejects. */
  failRemove = new Set<string>()
  /** Set to make every call reject: the test expects no call at all. */
  forbidCalls = false
  private seq = 0

  private check(call: string) {
    this.calls.push(call)
    if (this.forbidCalls) throw new Error(`unexpected call ${call}`)
  }

  async preflight(options: DriverOptions, _ctx: DriverContext): Promise<void> {
    this.check('preflight')
    if (options.token === 'bad') throw new Error('token rejected')
  }

  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    this.check(`create:${spec.name}`)
    for (const h of this.hosts.values()) if (h.name === spec.name) throw new Error(`fake: ${spec.name} created twice`)
    if (!spec.cluster.sshPublicKey.startsWith('ssh-ed25519 ')) throw new Error('fake: no cluster key given')
    this.inFlight++
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight)
    try {
      await new Promise((r) => setTimeout(r, 5))
      const id = `fake-${++this.seq}`
      await ctx.journal({kind: 'fake-vm', id, action: 'created'})
      if (this.failCreate.has(spec.name)) {
        await ctx.journal({kind: 'fake-vm', id, action: 'deleted'})
        throw new Error(`quota exceeded for ${spec.name}`)
      }
      this.hosts.set(id, {state: 'running', name: spec.name})
      return {id, address: `192.0.2.${this.seq}`, ssh: {user: 'root', port: 22}, hostKeys: [`ssh-ed25519 AAAAfake${this.seq}`], data: {size: spec.options.size}}
    } finally {
      this.inFlight--
    }
  }

  async state(m: Machine): Promise<MachineState> {
    this.check(`state:${m.id}`)
    return this.hosts.get(m.id)?.state ?? 'missing'
  }

  async remove(m: Machine): Promise<void> {
    this.check(`remove:${m.id}`)
    const h = this.hosts.get(m.id)
    if (h && this.failRemove.has(h.name)) throw new Error(`fake: cannot remove ${h.name}`)
    this.hosts.delete(m.id)
  }

  /** Removes hosts of this name (the fake's "find by name") and the ids given. */
  async removeLeftovers(host: {name: string}, leftovers: readonly {kind: string; id: string}[]): Promise<void> {
    this.check(`removeLeftovers:${host.name}`)
    for (const r of leftovers) this.hosts.delete(r.id)
    for (const [id, h] of this.hosts) if (h.name === host.name) this.hosts.delete(id)
  }

  async stop(m: Machine): Promise<void> {
    this.check(`stop:${m.id}`)
    const h = this.hosts.get(m.id)
    if (!h) throw new Error(`fake: stop of unknown ${m.id}`)
    h.state = 'stopped'
  }

  async start(m: Machine): Promise<Machine> {
    this.check(`start:${m.id}`)
    const h = this.hosts.get(m.id)
    if (!h) throw new Error(`fake: start of unknown ${m.id}`)
    h.state = 'running'
    return {...m, data: {...m.data, boots: Number(m.data.boots ?? 0) + 1}}
  }

  clustersRemoved: string[] = []
  async removeCluster(cluster: string): Promise<void> {
    this.check(`removeCluster:${cluster}`)
    this.clustersRemoved.push(cluster)
  }
}

/** A registry entry and lookup serving one FakeDriver instance. */
export function fakeRegistry(driver: FakeDriver): {entry: DriverEntry; lookup: (n: string) => DriverEntry | undefined} {
  const entry: DriverEntry = {name: 'fake', description: driver.description, options: driver.options, createConcurrency: 4, bootstrapConcurrency: 4, load: async () => driver}
  return {entry, lookup: (n) => (n === 'fake' ? entry : undefined)}
}

/**
 * A FakeDriver with the bulk capabilities (`states`, `removeMany`). Its per-host `state` and
 * `remove` fail: a caller that should go through the bulk path and does not is caught.
 */
export class FakeBulkDriver extends FakeDriver {
  /** Make `states` reject (the cloud cannot be read) or never answer. */
  statesMode: 'ok' | 'reject' | 'hang' = 'ok'
  /** Ids whose state cannot be read (an Error in their place). */
  unreadable = new Set<string>()

  override async state(m: Machine): Promise<MachineState> {
    throw new Error(`fake bulk: unexpected per-host state:${m.id}`)
  }

  override async remove(m: Machine): Promise<void> {
    throw new Error(`fake bulk: unexpected per-host remove:${m.id}`)
  }

  async states(machines: readonly Machine[], _options: DriverOptions, ctx: DriverContext): Promise<Array<MachineState | Error>> {
    this.calls.push(`states:${machines.map((m) => m.id).join(',')}`)
    if (this.statesMode === 'reject') throw new Error('fake bulk: API unreachable')
    if (this.statesMode === 'hang')
      return new Promise((_, reject) => ctx.signal?.addEventListener('abort', () => reject(ctx.signal!.reason), {once: true}))
    return machines.map((m) => (this.unreadable.has(m.id) ? new Error(`fake bulk: no answer for ${m.id}`) : (this.hosts.get(m.id)?.state ?? 'missing')))
  }

  async removeMany(machines: readonly Machine[]): Promise<Array<Error | undefined>> {
    this.calls.push(`removeMany:${machines.map((m) => m.id).join(',')}`)
    return machines.map((m) => {
      const h = this.hosts.get(m.id)
      if (h && this.failRemove.has(h.name)) return new Error(`fake: cannot remove ${h.name}`)
      this.hosts.delete(m.id)
      return undefined
    })
  }
}
