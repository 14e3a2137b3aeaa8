import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {XMLParser, XMLValidator} from 'fast-xml-parser'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {saveRun, type Run, type RunHost} from '../../src/store/runs.js'
import {Store} from '../../src/store/store.js'
import {belt, repoRoot} from '../helpers/cli.js'

// `belt report` as an operator runs it, on a store holding a synthetic Swarm2k-style experiment:
// 300 hosts created, bootstrapped and joined, some failed on the way, some joins timed out.

const T0 = Date.parse('2026-11-23T06:30:00.000Z')
const BIG = '20261123T063000Z-ab12'
const SMALL = '20261122T120000Z-cd34'

/** A seeded `belt create --count N --swarm`: create pool, SSH waits, bootstrap pool, swarm joins. */
function syntheticRun(id: string, n: number, seed: number): Run {
  let s = seed >>> 0
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const between = (a: number, b: number) => a + (b - a) * rnd()
  const iso = (ms: number) => new Date(T0 + Math.round(ms)).toISOString()
  const next = (slots: number[], ready: number): [number, number] => {
    const i = slots.indexOf(Math.min(...slots))
    return [i, Math.max(slots[i]!, ready)]
  }
  const createSlots = Array.from({length: 50}, () => 0)
  const bootSlots = Array.from({length: 40}, () => 0)
  const hosts: RunHost[] = []
  for (let i = 1; i <= n; i++) {
    const h: RunHost = {name: `node${i}`, times: {}, ok: true, role: i <= 3 ? 'manager' : 'worker'}
    hosts.push(h)
    const [ci, start] = next(createSlots, 0)
    h.times.createRequested = iso(start)
    const r = rnd()
    const addr = start + between(25e3, 70e3)
    createSlots[ci] = addr
    if (r < 0.015) {
      Object.assign(h, {ok: false, failedPhase: 'create', error: 'droplet limit exceeded'})
      continue
    }
    h.times.addressKnown = iso(addr)
    if (r < 0.025) {
      Object.assign(h, {ok: false, failedPhase: 'ssh', error: 'ssh: connect ECONNREFUSED'})
      continue
    }
    const ssh = addr + between(4e3, 30e3)
    h.times.sshUp = iso(ssh)
    const [bi, bStart] = next(bootSlots, ssh)
    bootSlots[bi] = bStart + between(40e3, 110e3)
    if (r < 0.04) {
      Object.assign(h, {ok: false, failedPhase: 'engine', error: 'apt-get: Could not get lock'})
      continue
    }
    h.times.engineReady = iso(bootSlots[bi]!)
  }
  let t = Math.max(...bootSlots) + 2e3
  for (const h of hosts.filter((x) => x.times.engineReady)) {
    t += h.role === 'manager' ? between(2e3, 5e3) : between(50, 400)
    if (rnd() < 0.03) {
      h.joinTimedOut = true
      h.times.joined = iso(t + between(20e3, 30e3))
    } else h.times.joined = iso(t)
  }
  return {
    schemaVersion: 1,
    id,
    command: `belt create --driver digitalocean --count ${n} --swarm --engine-label 'exp=<swarm2k>&"x"'`,
    driver: 'digitalocean',
    startedAt: iso(0),
    finishedAt: iso(t + 32e3),
    settings: {concurrency: 50},
    hosts,
  }
}

let tmp: string
let store: string
let big: Run

beforeAll(async () => {
  expect(existsSync(path.join(repoRoot, 'dist/src/commands/report.js')), 'run `npm run build` first').toBe(true)
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-report-'))
  store = path.join(tmp, 'store')
  big = syntheticRun(BIG, 300, 7)
  await saveRun(new Store(store), big)
  await saveRun(new Store(store), {...syntheticRun(SMALL, 12, 3), command: 'belt swarm init'})
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** Validates with a real XML parser and counts the host rows. */
function svgHostRows(svg: string): number {
  expect(XMLValidator.validate(svg)).toBe(true)
  const doc = new XMLParser({ignoreAttributes: false, attributeNamePrefix: ''}).parse(svg) as {svg: {g: {class?: string; g?: unknown}[]}}
  const gantt = doc.svg.g.find((g) => g.class === 'gantt')!
  const rows = Array.isArray(gantt.g) ? gantt.g : [gantt.g]
  return rows.filter((g) => (g as {class?: string}).class === 'host').length
}

describe('belt report', () => {
  it('prints the figures of the newest run and writes its timeline next to it', async () => {
    const r = await belt(['report'], {store})
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe(`Run ${BIG}: ${big.command}`)
    const header = lines.findIndex((l) => /^PHASE\s+COUNT\s+P50\s+P90\s+MAX$/.test(l))
    expect(header, r.stdout).toBeGreaterThan(0)
    expect(lines.slice(header + 1, header + 6).map((l) => l.split(/\s+/)[0])).toEqual(['create', 'ssh', 'engine', 'join', 'total'])
    expect(r.stdout).toMatch(/^Failures: \d+$/m)
    expect(r.stdout).toMatch(/^Join timeouts: \d+ /m)

    const file = path.join(store, 'runs', `${BIG}.svg`)
    expect(r.stderr.trim()).toBe(`Timeline of 300 hosts written to ${file}`)
    expect(svgHostRows(await readFile(file, 'utf8'))).toBe(300)
  })

  it('--json returns the summary, and where the SVG went', async () => {
    const out = path.join(tmp, 'big.svg')
    const r = await belt(['report', BIG, '--json', '--out', out, '--sort', 'joined'], {store})
    expect(r.code, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    expect(s).toMatchObject({id: BIG, hosts: 300, managers: 3, svg: out})
    expect(s.ok + s.failed).toBe(300)
    expect(s.failed).toBeGreaterThan(0)
    expect(s.phases.map((p: {phase: string}) => p.phase)).toEqual(['create', 'ssh', 'engine', 'join', 'total'])
    for (const p of s.phases) expect(p.p50).toBeLessThanOrEqual(p.p90)
    expect(s.failures.map((g: {phase: string}) => g.phase)).toEqual(['create', 'ssh', 'engine'])
    expect(s.joinTimeouts.count).toBe(s.joinTimeouts.hosts.length)
    expect(s.throughput.milestone).toBe('joined')
    expect(svgHostRows(await readFile(out, 'utf8'))).toBe(300)
  })

  it('--list lists the runs, oldest first', async () => {
    const r = await belt(['report', '--list'], {store})
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^ID\s+HOSTS\s+FAILED\s+WALL\s+COMMAND$/)
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      [SMALL, '12'],
      [BIG, '300'],
    ])
    expect(lines[2]).toContain(big.command)

    const j = await belt(['report', '--list', '--json'], {store})
    expect(j.code, j.stderr).toBe(0)
    expect(JSON.parse(j.stdout).map((e: {id: string; hosts: number}) => [e.id, e.hosts])).toEqual([
      [SMALL, 12],
      [BIG, 300],
    ])
  })

  it('a run by id', async () => {
    const r = await belt(['report', SMALL], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n')[0]).toBe(`Run ${SMALL}: belt swarm init`)
    expect(svgHostRows(await readFile(path.join(store, 'runs', `${SMALL}.svg`), 'utf8'))).toBe(12)
  })

  it.each([
    {what: 'an unknown run', args: ['report', 'nosuch'], store: () => store, pattern: /^Error: no run nosuch in .*runs\. List them with: belt report --list\.$/},
    {what: 'no run recorded yet', args: ['report'], store: () => path.join(tmp, 'empty'), pattern: /^Error: no run recorded in .*runs yet\. /},
  ])('$what: exit 3, one line', async ({args, store: s, pattern}) => {
    const r = await belt(args, {store: s()})
    expect(r.code, r.stderr).toBe(3)
    const lines = r.stderr.trim().split('\n')
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(pattern)
    expect(r.stdout).toBe('')
  })

  it('an --out it cannot write: exit 5, one line', async () => {
    const r = await belt(['report', '--out', path.join(tmp, 'no', 'such', 'dir', 'x.svg')], {store})
    expect(r.code, r.stderr).toBe(5)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/^Error: cannot write the timeline to .*x\.svg: .*ENOENT.*Choose another file with --out\.$/m)
  })

  it('documents itself', async () => {
    const r = await belt(['report', '--help'], {store})
    expect(r.code, r.stderr).toBe(0)
    for (const s of ['--list', '--out', '--sort', '--json', 'EXAMPLES', 'belt report --list']) expect(r.stdout).toContain(s)
  })
})
