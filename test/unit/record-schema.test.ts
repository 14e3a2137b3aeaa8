import {describe, expect, it} from 'vitest'
import {recordProblem} from '../../src/store/record-schema.js'
import {recordProblem as zodProblem} from '../fixtures/record-zod-schema.js'

// The record check on the read path is hand-written (start-up: zod was a third of `belt ip`); the zod
// schema it replaced is the reference. Every record below must get the same answer from both: valid,
// or the same first problem (field and message) and the same count of further problems.

const at = '2026-01-01T00:00:00.000Z'
/** Every field of a record present, optional ones included. */
const full = {
  schemaVersion: 1,
  name: 'node1',
  cluster: 'default',
  driver: 'digitalocean',
  driverOptions: {region: 'nyc3'},
  phase: 'joined',
  machine: {id: '42', address: '203.0.113.7', privateAddress: '10.0.0.7', ssh: {user: 'root', port: 22}, hostKeys: ['ssh-ed25519 AAAA'], data: {tag: 'x', n: 1}},
  hostKeys: ['ssh-ed25519 AAAA'],
  resources: [{kind: 'droplet', id: '42', at}],
  owner: {pid: 123, since: at},
  error: {phase: 'bootstrap', message: 'boom', at},
  times: {createRequested: at, addressKnown: at, sshUp: at, engineReady: at, joined: at},
  engine: {
    url: 'tcp://203.0.113.7:2376',
    id: 'E',
    name: 'node1',
    serverVersion: '27.0.1',
    labels: ['provider=digitalocean'],
    config: {labels: ['a=b'], opts: ['debug=true'], insecureRegistries: ['r:5000'], registryMirrors: ['https://m'], storageDriver: 'overlay2', version: '27', installUrl: 'https://get.docker.com', installProxy: 'http://p:3142'},
    certNotAfter: at,
    certFingerprint: 'ab',
    installed: true,
  },
  swarm: {clusterId: 'c', nodeId: 'n', role: 'manager', advertiseAddr: '10.0.0.7'},
  createdAt: at,
  updatedAt: at,
  futureField: {kept: true},
}
const minimal = {schemaVersion: 1, name: 'node1', cluster: 'default', driver: 'local', driverOptions: {}, phase: 'reserved', resources: [], times: {}, createdAt: at, updatedAt: at}

/** Values of every JSON type and the edges the schema has (empty string, port range, safe integers, a bad label). */
const VALUES: unknown[] = [null, true, 0, 1, -1, 1.5, 65_536, 2 ** 60, -(2 ** 60), JSON.parse('1e400'), '', 'x', 'Node1', 'a'.repeat(64), 'manager', 'created', [], ['x'], [1], [{}], {}, {a: 1}, {a: 'b'}]

type Json = Record<string, unknown> | unknown[]
/** Paths of every node of a JSON value, the root excluded. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== 'object' || v === null) return []
  const keys = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v)
  return keys.flatMap((k) => [[...prefix, k], ...paths((v as Record<string | number, unknown>)[k], [...prefix, k])])
}
/** A copy of `base` with the node at `path` set to `value` (deleted when value is DELETE). */
const DELETE = Symbol('delete')
function mutate(base: object, path: (string | number)[], value: unknown): Json {
  const copy = structuredClone(base) as Json
  let node = copy as Record<string | number, unknown>
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>
  const last = path.at(-1)!
  if (value === DELETE) {
    if (Array.isArray(node)) node.splice(last as number, 1)
    else delete node[last]
  } else node[last] = value
  return copy
}

/** mulberry32: the same pairs of mutations on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

describe('the hand-written record check agrees with the zod schema', () => {
  it('valid records: every field present, and only the required ones', () => {
    expect(recordProblem(full)).toBeUndefined()
    expect(recordProblem(minimal)).toBeUndefined()
    expect(zodProblem(full)).toBeUndefined()
  })

  it('not an object at all', () => {
    for (const v of VALUES) expect(recordProblem(v), JSON.stringify(v)).toBe(zodProblem(v))
  })

  for (const [name, base] of [['full', full], ['minimal', minimal]] as const) {
    it(`one field of the ${name} record deleted or replaced by every kind of value`, () => {
      let bad = 0
      for (const p of paths(base)) {
        for (const v of [DELETE, ...VALUES]) {
          const r = mutate(base, p, v)
          const want = zodProblem(r)
          expect(recordProblem(r), `${p.join('.')} = ${v === DELETE ? 'deleted' : JSON.stringify(v)}`).toBe(want)
          if (want) bad++
        }
      }
      expect(bad).toBeGreaterThan(100) // the mutations do break records
    })
  }

  it('several fields broken at once: same first problem and count', () => {
    const random = prng(7)
    const all = paths(full)
    for (let i = 0; i < 2000; i++) {
      let r: object = full
      for (let j = 0; j < 1 + Math.floor(random() * 4); j++) {
        const p = all[Math.floor(random() * all.length)]!
        try {
          const v = random() < 0.2 ? DELETE : VALUES[Math.floor(random() * VALUES.length)]
          r = mutate(r, p, v)
        } catch {
          // the path went away with an earlier mutation
        }
      }
      expect(recordProblem(r), JSON.stringify(r)).toBe(zodProblem(r))
    }
  })
})
