/**
 * The conformance suite every driver's tests run (after unjs/unstorage's `testDriver`).
 *
 *   describeDriverConformance({ name: 'local', makeDriver, options, context, listResources, ... })
 *
 * It checks the contract in drivers/driver.ts against the real thing (real namespaces, the
 * emulators), never against mocks.
 */
import {tcpAccepts} from '../tcp.js'
import {afterAll, describe, expect, it} from 'vitest'
import type {ClusterSpec, Driver, DriverContext, DriverOptions, JournalEntry, Machine, PortRule} from '../driver.js'

export interface ConformanceHarness {
  /** Label for the describe block. */
  readonly name: string
  /** A new driver object each call: the suite checks statelessness by mixing instances. */
  makeDriver(): Driver | Promise<Driver>
  readonly options: DriverOptions
  readonly context: DriverContext
  readonly cluster: ClusterSpec
  /** Names of every resource of this driver that exists now (netns, droplets, ...), sorted. */
  listResources(): Promise<string[]>
  /** Host names the suite may use; each is created and removed by the suite. */
  readonly hostNames: readonly [string, string]
  /** A Machine for a resource that does not exist (for `state` -> 'missing'). */
  missingMachine(): Machine
  /** Option values that must never appear in a Machine (secrets). */
  readonly secrets?: readonly string[]
}

/** Resolves when `host:port` accepts a TCP connection, rejects after `timeoutMs`. */
export async function tcpReachable(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await tcpAccepts(host, port, 2000)
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${host}:${port} did not accept a connection within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

export function describeDriverConformance(h: ConformanceHarness): void {
  describe(`driver conformance: ${h.name}`, () => {
    const created: Machine[] = []
    let before: string[] = []

    afterAll(async () => {
      // Tear down whatever a failed test left, through the driver itself.
      const d = await h.makeDriver()
      for (const m of created) await d.remove(m, h.options, h.context).catch(() => undefined)
      await d.removeCluster?.(h.cluster.name, h.options, h.context).catch(() => undefined)
    })

    it('declares its options with descriptions', async () => {
      const d = await h.makeDriver()
      expect(d.name).toMatch(/^[a-z0-9]+$/)
      expect(d.description.length).toBeGreaterThan(10)
      for (const o of d.options) {
        expect(o.name).toMatch(/^[a-z][a-z0-9-]*$/)
        expect(o.description.length).toBeGreaterThan(5)
      }
    })

    it('preflight creates nothing', async () => {
      before = await h.listResources()
      const d = await h.makeDriver()
      await d.preflight(h.options, h.context)
      expect(await h.listResources()).toEqual(before)
    })

    it("state of a host that does not exist is 'missing'", async () => {
      const d = await h.makeDriver()
      expect(await d.state(h.missingMachine(), h.options, h.context)).toBe('missing')
    })

    it('removing a host that does not exist succeeds', async () => {
      const d = await h.makeDriver()
      await expect(d.remove(h.missingMachine(), h.options, h.context)).resolves.toBeUndefined()
    })

    it('create returns a reachable, serialisable machine with no secret in it', async () => {
      const d = await h.makeDriver()
      const [a, b] = h.hostNames
      const ms = await Promise.all([a, b].map((name) => d.create({name, cluster: h.cluster, options: h.options}, h.context)))
      created.push(...ms)
      const [ma, mb] = ms as [Machine, Machine]
      expect(ma.address).not.toBe(mb.address)
      expect(ma.id).not.toBe(mb.id)
      for (const m of ms) {
        await tcpReachable(m.address, m.ssh.port)
        const json = JSON.stringify(m)
        expect(JSON.parse(json)).toEqual(m)
        for (const s of h.secrets ?? []) expect(json).not.toContain(s)
      }
    })

    it("a fresh driver object sees the hosts as 'running' (drivers are stateless)", async () => {
      expect(created).toHaveLength(2)
      const d = await h.makeDriver()
      for (const m of created) expect(await d.state(m, h.options, h.context)).toBe('running')
    })

    it('optional states() reads many hosts at once and agrees with state(), missing ones included', async () => {
      const d = await h.makeDriver()
      if (!d.states) return
      expect(created).toHaveLength(2)
      const machines = [created[0]!, h.missingMachine(), created[1]!]
      expect(await d.states(machines, h.options, h.context)).toEqual(['running', 'missing', 'running'])
      expect(await d.states([], h.options, h.context)).toEqual([])
    })

    it('optional power capabilities change the state they claim to', async () => {
      const d = await h.makeDriver()
      const m = created[0]
      expect(m).toBeDefined()
      if (d.stop && d.start) {
        await d.stop(m!, h.options, h.context)
        expect(await d.state(m!, h.options, h.context)).toBe('stopped')
        const started = await d.start(m!, h.options, h.context)
        created[0] = started
        expect(await d.state(started, h.options, h.context)).toBe('running')
        await tcpReachable(started.address, started.ssh.port)
      }
      if (d.kill && d.start) {
        await d.kill(created[0]!, h.options, h.context)
        expect(await d.state(created[0]!, h.options, h.context)).toBe('stopped')
        created[0] = await d.start(created[0]!, h.options, h.context)
        expect(await d.state(created[0]!, h.options, h.context)).toBe('running')
      }
    })

    it('optional ports: setPorts and listPorts come together, publish and withdraw idempotently, and keep Belt\'s own rules', async () => {
      const d = await h.makeDriver()
      expect(Boolean(d.setPorts)).toBe(Boolean(d.listPorts))
      if (!d.setPorts || !d.listPorts) return
      const cluster = h.cluster.name
      const published = (rules: readonly PortRule[]) => rules.filter((r) => r.role === 'published').map((r) => `${r.ports}/${r.protocol}`).sort()
      const before = await d.listPorts(cluster, h.options, h.context)
      const own = before.filter((r) => r.role !== 'published')
      const opened = await d.setPorts(cluster, {open: [{protocol: 'tcp', port: 8080}, {protocol: 'udp', port: 5353}], close: []}, h.options, h.context)
      expect(published(opened)).toEqual([...new Set([...published(before), '8080/tcp', '5353/udp'])].sort())
      // Twice is once; a fresh driver object reads what the first one wrote.
      await d.setPorts(cluster, {open: [{protocol: 'tcp', port: 8080}], close: []}, h.options, h.context)
      expect(published(await (await h.makeDriver()).listPorts!(cluster, h.options, h.context))).toEqual(published(opened))
      const closed = await d.setPorts(cluster, {open: [], close: [{protocol: 'tcp', port: 8080}, {protocol: 'udp', port: 5353}, {protocol: 'tcp', port: 9}]}, h.options, h.context)
      expect(published(closed)).toEqual(published(before))
      // The hosts exist (created above), so the firewall did before: Belt's own rules are as they were.
      expect(own.some((r) => r.role === 'admin') && own.some((r) => r.role === 'cluster')).toBe(true)
      expect(closed.filter((r) => r.role !== 'published')).toEqual(own)
    })

    it('an interrupted create is finished without a second resource, and its leftovers are removable', async () => {
      // What an interrupted run left: the first create's resources, journaled for the host.
      const journaled: JournalEntry[] = []
      const ctx: DriverContext = {...h.context, journal: async (e) => (journaled.push(e), h.context.journal(e))}
      const name = `${h.hostNames[0]}r`
      const start = await h.listResources()
      const d = await h.makeDriver()
      const first = await d.create({name, cluster: h.cluster, options: h.options}, ctx)
      created.push(first)
      const made = (await h.listResources()).filter((x) => !start.includes(x))
      expect(made.length).toBeGreaterThan(0)
      const leftovers = journaled.filter((e) => e.action === 'created').map(({kind, id}) => ({kind, id}))
      expect(leftovers.length).toBeGreaterThan(0)
      // The same host created again with those leftovers: adopted or replaced, never doubled.
      const again = await (await h.makeDriver()).create({name, cluster: h.cluster, options: h.options, leftovers}, ctx)
      created.splice(created.indexOf(first), 1, again)
      expect((await h.listResources()).filter((x) => !start.includes(x))).toHaveLength(made.length)
      await tcpReachable(again.address, again.ssh.port)
      // A host left with no Machine: removeLeftovers by the journaled ids...
      const ids = journaled.filter((e) => e.action === 'created' && !journaled.some((x) => x.action === 'deleted' && x.id === e.id)).map(({kind, id}) => ({kind, id}))
      await (await h.makeDriver()).removeLeftovers({name, cluster: h.cluster.name}, ids, h.options, ctx)
      created.splice(created.indexOf(again), 1)
      expect(await h.listResources()).toEqual(start)
      // ...and it is idempotent, also when no id was ever learned (found by name: nothing left).
      await (await h.makeDriver()).removeLeftovers({name, cluster: h.cluster.name}, [], h.options, ctx)
      expect(await h.listResources()).toEqual(start)
    })

    it("remove is idempotent and leaves the host 'missing' (removeMany too, when the driver has it)", async () => {
      const d = await h.makeDriver()
      // With removeMany, the second host goes through it, with a host that does not exist.
      const one = d.removeMany ? created.slice(0, 1) : created
      for (const m of one) {
        await d.remove(m, h.options, h.context)
        await d.remove(m, h.options, h.context)
        expect(await d.state(m, h.options, h.context)).toBe('missing')
      }
      if (d.removeMany) {
        const rest = [...created.slice(1), h.missingMachine()]
        expect(await d.removeMany(rest, h.options, h.context)).toEqual(rest.map(() => undefined))
        expect(await d.removeMany(rest, h.options, h.context)).toEqual(rest.map(() => undefined))
        for (const m of rest) expect(await d.state(m, h.options, h.context)).toBe('missing')
        if (d.states) expect(await d.states(rest, h.options, h.context)).toEqual(rest.map(() => 'missing'))
      }
      created.length = 0
      await d.removeCluster?.(h.cluster.name, h.options, h.context)
      expect(await h.listResources()).toEqual(before)
    })
  })
}
