import {XMLParser, XMLValidator} from 'fast-xml-parser'
import {describe, expect, it} from 'vitest'
import {escapeXml, formatDuration, hostIntervals, percentile, renderRunList, renderSummaryText, renderTimelineSvg, runListEntry, runWindow, summarizeRun, type Interval} from '../../src/services/report.js'
import type {Run, RunHost} from '../../src/store/runs.js'
import type {PhaseTimes} from '../../src/store/types.js'

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const T0 = Date.parse('2026-11-23T06:30:00.000Z')
/** ISO time `s` seconds after T0. */
const at = (s: number) => new Date(T0 + Math.round(s * 1000)).toISOString()
/** Phase times from seconds after T0, in milestone order; `undefined` leaves one out. */
const times = (createRequested?: number, addressKnown?: number, sshUp?: number, engineReady?: number, joined?: number): PhaseTimes => {
  const t: PhaseTimes = {}
  if (createRequested !== undefined) t.createRequested = at(createRequested)
  if (addressKnown !== undefined) t.addressKnown = at(addressKnown)
  if (sshUp !== undefined) t.sshUp = at(sshUp)
  if (engineReady !== undefined) t.engineReady = at(engineReady)
  if (joined !== undefined) t.joined = at(joined)
  return t
}
const host = (name: string, t: PhaseTimes, extra: Partial<RunHost> = {}): RunHost => ({name, times: t, ok: true, ...extra})
const run = (hosts: RunHost[], extra: Partial<Run> = {}): Run => ({
  schemaVersion: 1,
  id: '20261123T063000Z-ab12',
  command: 'belt create --driver local --count 3 --swarm',
  driver: 'local',
  startedAt: at(0),
  finishedAt: at(100),
  settings: {concurrency: 10},
  hosts,
  ...extra,
})

/**
 * A seeded `belt create --count N --swarm` run: a create pool of 50, SSH waits, a bootstrap pool of
 * 40, then swarm joins (3 managers one at a time, workers through a window of 30). About 1% of
 * hosts fail in create, 1% in ssh, 2% in engine; 3% of joins time out (and are verified after).
 */
function syntheticRun(n: number, seed = 42): Run {
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
  const take = (slots: number[], ready: number): [number, number] => {
    let i = 0
    for (let j = 1; j < slots.length; j++) if (slots[j]! < slots[i]!) i = j
    return [i, Math.max(slots[i]!, ready)]
  }
  const createSlots = Array.from({length: 50}, () => 0)
  const bootSlots = Array.from({length: 40}, () => 0)
  const hosts: RunHost[] = []
  const ready = new Map<RunHost, number>()
  for (let i = 1; i <= n; i++) {
    const h: RunHost = {name: `node${i}`, times: {}, ok: true, role: i <= 3 ? 'manager' : 'worker'}
    hosts.push(h)
    const [ci, cStart] = take(createSlots, 0)
    h.times.createRequested = iso(cStart)
    const r = rnd()
    if (r < 0.012) {
      createSlots[ci] = cStart + between(30e3, 90e3)
      Object.assign(h, {ok: false, failedPhase: 'create', error: 'droplet limit exceeded: 422 Unprocessable Entity'})
      continue
    }
    const addr = cStart + between(25e3, 70e3)
    createSlots[ci] = addr
    h.times.addressKnown = iso(addr)
    if (r < 0.022) {
      Object.assign(h, {ok: false, failedPhase: 'ssh', error: 'ssh: connect ECONNREFUSED after 12 attempts'})
      continue
    }
    const ssh = addr + between(4e3, 30e3)
    h.times.sshUp = iso(ssh)
    const [bi, bStart] = take(bootSlots, ssh)
    const done = bStart + between(40e3, 110e3) + (rnd() < 0.05 ? between(60e3, 120e3) : 0)
    bootSlots[bi] = done
    if (r < 0.04) {
      Object.assign(h, {ok: false, failedPhase: 'engine', error: 'apt-get: Could not get lock /var/lib/dpkg/lock-frontend'})
      continue
    }
    h.times.engineReady = iso(done)
    ready.set(h, done)
  }
  let t = Math.max(...ready.values()) + 2e3
  const joinSlots = Array.from({length: 30}, () => 0)
  for (const [h] of ready) {
    if (h.role === 'manager') {
      t += between(2e3, 5e3)
      h.times.joined = iso(t)
      joinSlots.fill(t)
      continue
    }
    const [ji, jStart] = take(joinSlots, t)
    const r = rnd()
    let end = jStart + between(2e3, 12e3)
    if (r < 0.03) {
      end = jStart + between(20e3, 40e3)
      h.joinTimedOut = true
    }
    joinSlots[ji] = end
    if (r > 0.993) {
      Object.assign(h, {ok: false, failedPhase: 'join', error: 'Error response from daemon: rpc error: code = Unavailable'})
      continue
    }
    h.times.joined = iso(end)
  }
  let last = 0
  for (const h of hosts) for (const v of Object.values(h.times)) last = Math.max(last, Date.parse(v))
  return {
    schemaVersion: 1,
    id: '20261123T063000Z-ab12',
    command: `belt create --driver digitalocean --count ${n} --swarm --engine-label 'exp=swarm<2k>&"more"'`,
    driver: 'digitalocean',
    startedAt: iso(0),
    finishedAt: new Date(last + 1500).toISOString(),
    settings: {concurrency: 50, managers: 3},
    hosts,
  }
}

// ---------------------------------------------------------------------------------------------
// XML helpers: a real parser, not regular expressions
// ---------------------------------------------------------------------------------------------

type XmlNode = Record<string, unknown> & {':@'?: Record<string, string>}

function parseSvg(svg: string): XmlNode[] {
  const valid = XMLValidator.validate(svg)
  if (valid !== true) throw new Error(`invalid XML: ${JSON.stringify(valid.err)}`)
  return new XMLParser({ignoreAttributes: false, attributeNamePrefix: '', preserveOrder: true, processEntities: true}).parse(svg) as XmlNode[]
}
const tagOf = (n: XmlNode) => Object.keys(n).find((k) => k !== ':@')!
const childrenOf = (n: XmlNode) => (Array.isArray(n[tagOf(n)]) ? (n[tagOf(n)] as XmlNode[]) : [])
/** Every element, depth first. */
function* walk(nodes: XmlNode[]): Generator<XmlNode> {
  for (const n of nodes) {
    yield n
    yield* walk(childrenOf(n))
  }
}
const elements = (nodes: XmlNode[], tag: string, cls?: string) => [...walk(nodes)].filter((n) => tagOf(n) === tag && (cls === undefined || n[':@']?.class === cls))
/** The text content of an element, entities decoded. */
const textOf = (n: XmlNode): string => [...walk([n])].filter((x) => tagOf(x) === '#text').map((x) => String(x['#text'])).join('')

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

describe('percentile (nearest rank: the value at rank ceil(p/100 * n))', () => {
  const oneToTen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  const oneToHundred = Array.from({length: 100}, (_, i) => i + 1)
  it.each([
    {values: [], p: 50, want: undefined},
    {values: [7], p: 0, want: 7},
    {values: [7], p: 50, want: 7},
    {values: [7], p: 100, want: 7},
    {values: [1, 2], p: 50, want: 1},
    {values: [1, 2], p: 51, want: 2},
    {values: [3, 1, 2], p: 50, want: 2},
    {values: oneToTen, p: 0, want: 1},
    {values: oneToTen, p: 10, want: 1},
    {values: oneToTen, p: 11, want: 2},
    {values: oneToTen, p: 50, want: 5},
    {values: oneToTen, p: 90, want: 9},
    {values: oneToTen, p: 91, want: 10},
    {values: oneToTen, p: 100, want: 10},
    {values: [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], p: 90, want: 9},
    // 0.07 * 100 is 7.000000000000001 in floating point: a naive ceil would give rank 8.
    {values: oneToHundred, p: 7, want: 7},
    {values: oneToHundred, p: 90, want: 90},
    {values: [5, 5, 5, 100], p: 50, want: 5},
    {values: [5, 5, 5, 100], p: 90, want: 100},
    {values: [2.5, 0.5, 1.5], p: 50, want: 1.5},
  ])('p$p of $values is $want', ({values, p, want}) => {
    expect(percentile(values, p)).toBe(want)
  })

  it('does not reorder its input', () => {
    const v = [3, 1, 2]
    percentile(v, 50)
    expect(v).toEqual([3, 1, 2])
  })

  it.each([-1, 100.5, Number.NaN])('refuses p = %s', (p) => {
    expect(() => percentile([1], p)).toThrow(RangeError)
  })
})

describe('hostIntervals', () => {
  const seconds = (iv: Interval[]) => iv.map((i) => [i.phase, (i.start - T0) / 1000, (i.end - T0) / 1000])
  it.each([
    {what: 'a full way through', t: times(10, 40, 55, 120, 130), want: [['create', 10, 40], ['ssh', 40, 55], ['engine', 55, 120], ['join', 120, 130]]},
    {what: 'failed in ssh: only create', t: times(10, 40), want: [['create', 10, 40]]},
    {what: 'failed in create: nothing', t: times(10), want: []},
    {what: 'no timestamp at all', t: times(), want: []},
    {what: 'swarm init alone: join from the run start', t: times(undefined, undefined, undefined, undefined, 30), want: [['join', 0, 30]]},
    {what: 'a bootstrap batch: ssh from the run start', t: times(undefined, undefined, 5, 50), want: [['ssh', 0, 5], ['engine', 5, 50]]},
    {what: 'a gap (no sshUp): ssh and engine left out, not guessed', t: times(10, 40, undefined, 120, 130), want: [['create', 10, 40], ['join', 120, 130]]},
    {what: 'joined without engineReady after a create: left out', t: times(10, 40, 55, undefined, 130), want: [['create', 10, 40], ['ssh', 40, 55]]},
    {what: 'a clock step (end before start): left out', t: times(10, 5, 20), want: [['ssh', 5, 20]]},
    {what: 'zero-length phases are kept', t: times(10, 10, 10), want: [['create', 10, 10], ['ssh', 10, 10]]},
  ])('$what', ({t, want}) => {
    expect(seconds(hostIntervals(host('h', t), T0))).toEqual(want)
  })

  it('treats an unparsable timestamp as missing', () => {
    expect(seconds(hostIntervals(host('h', {createRequested: at(1), addressKnown: 'yesterday', joined: at(9)}), T0))).toEqual([])
    expect(seconds(hostIntervals(host('h', {addressKnown: 'not a time', sshUp: at(3)}), T0))).toEqual([['ssh', 0, 3]])
  })
})

describe('runWindow', () => {
  it.each([
    {what: 'startedAt to finishedAt', r: run([host('a', times(1, 2))]), want: [0, 100]},
    {what: 'widened by a host timestamp outside it', r: run([host('a', times(-2, 150))]), want: [-2, 150]},
    {what: 'no hosts', r: run([]), want: [0, 100]},
    {what: 'unparsable run times fall back to the hosts', r: run([host('a', times(3, 9))], {startedAt: 'x', finishedAt: ''}), want: [3, 9]},
  ])('$what', ({r, want}) => {
    const w = runWindow(r)
    expect([(w.start - T0) / 1000, (w.end - T0) / 1000]).toEqual(want)
  })
})

describe('summarizeRun', () => {
  const r = run(
    [
      host('node1', times(0, 10, 12, 30, 40), {role: 'manager'}),
      host('node2', times(0, 20, 24, 40, 60), {role: 'worker', joinTimedOut: true}),
      host('node10', times(0, 30, 36, 50, 70), {role: 'worker'}),
      host('node3', times(0, 15), {ok: false, failedPhase: 'ssh', error: 'ECONNREFUSED'}),
      host('node4', times(0), {ok: false, failedPhase: 'create', error: 'quota'}),
      host('node12', times(0, 12, 14), {ok: false, error: 'apt-get failed'}), // no failedPhase: inferred from its timestamps
      host('node11', times(0, 11), {ok: false, failedPhase: 'ssh', error: 'ECONNREFUSED'}),
      host('node5', times(0, 9, 11, 33), {ok: false, failedPhase: 'provision', error: 'custom phase name'}),
      host('node6', times(), {ok: false}),
    ],
    {finishedAt: at(75)},
  )
  const s = summarizeRun(r)

  it('counts hosts, outcomes, managers and the wall time', () => {
    expect(s).toMatchObject({id: r.id, command: r.command, driver: 'local', hosts: 9, ok: 3, failed: 6, managers: 1, wallMs: 75_000})
  })

  it.each([
    // create: node1 10, node2 20, node10 30, node3 15, node12 12, node11 11, node5 9
    {phase: 'create', count: 7, p50: 12_000, p90: 30_000, max: 30_000},
    // ssh: 2, 4, 6, 2 (node12), 2 (node5)
    {phase: 'ssh', count: 5, p50: 2_000, p90: 6_000, max: 6_000},
    // engine: 18, 16, 14, 22 (node5)
    {phase: 'engine', count: 4, p50: 16_000, p90: 22_000, max: 22_000},
    // join: 10, 20, 20: p50 is rank ceil(1.5) = 2
    {phase: 'join', count: 3, p50: 20_000, p90: 20_000, max: 20_000},
    // total, ok hosts only: 40, 60, 70
    {phase: 'total', count: 3, p50: 60_000, p90: 70_000, max: 70_000},
  ])('$phase: count $count, p50 $p50, p90 $p90, max $max', (want) => {
    expect(s.phases.find((p) => p.phase === want.phase)).toEqual(want)
  })

  it('lists the phases in order, with null figures for a phase no host went through', () => {
    expect(s.phases.map((p) => p.phase)).toEqual(['create', 'ssh', 'engine', 'join', 'total'])
    const empty = summarizeRun(run([host('a', times(1), {ok: false})]))
    expect(empty.phases.every((p) => p.count === 0 && p.p50 === null && p.p90 === null && p.max === null)).toBe(true)
  })

  it('groups failures by phase, in phase order, hosts in natural order; infers a missing phase', () => {
    expect(s.failures.map((g) => [g.phase, g.hosts.map((h) => h.name)])).toEqual([
      ['create', ['node4']],
      ['ssh', ['node3', 'node11']],
      ['engine', ['node12']],
      ['provision', ['node5']],
      ['unknown', ['node6']],
    ])
    expect(s.failures[1]!.hosts[0]).toEqual({name: 'node3', error: 'ECONNREFUSED'})
    expect(s.failures.at(-1)!.hosts[0]).toEqual({name: 'node6'})
  })

  it('counts join timeouts', () => {
    expect(s.joinTimeouts).toEqual({count: 1, hosts: ['node2']})
  })

  it('measures throughput on joined: busiest 60 s window and per minute of wall time', () => {
    expect(s.throughput).toEqual({milestone: 'joined', count: 3, peakPerMinute: 3, peakFromMs: 40_000, overallPerMinute: 2.4})
  })

  it.each([
    {what: 'one per 10 s over 10 minutes', joined: Array.from({length: 60}, (_, i) => 10 * i + 5), finished: 600, peak: 6, from: 5, overall: 6},
    {what: 'a burst inside a slow run (260 is past [200, 260))', joined: [10, 200, 201, 202, 259.9, 260, 500], finished: 600, peak: 4, from: 200, overall: 0.7},
    {what: 'a window is half-open: 60 s apart fall in two', joined: [100, 160], finished: 300, peak: 1, from: 100, overall: 0.4},
    {what: 'a run under a minute counts as one minute', joined: [1, 2, 3, 4], finished: 20, peak: 4, from: 1, overall: 4},
  ])('throughput: $what', ({joined, finished, peak, from, overall}) => {
    const sum = summarizeRun(run(joined.map((j, i) => host(`n${i}`, times(undefined, undefined, undefined, undefined, j))), {finishedAt: at(finished)}))
    expect(sum.throughput).toEqual({milestone: 'joined', count: joined.length, peakPerMinute: peak, peakFromMs: from * 1000, overallPerMinute: overall})
  })

  it('falls back to the furthest milestone reached when no host joined (create without --swarm)', () => {
    const sum = summarizeRun(run([host('a', times(0, 5, 6, 30)), host('b', times(0, 6, 8, 40)), host('c', times(0, 7))]))
    expect(sum.throughput).toMatchObject({milestone: 'engineReady', count: 2, peakPerMinute: 2, peakFromMs: 30_000})
    expect(summarizeRun(run([host('a', times(0), {ok: false})])).throughput).toMatchObject({milestone: null, count: 0, peakPerMinute: 0, peakFromMs: null})
  })

  it('summarizes a run with no hosts', () => {
    const sum = summarizeRun(run([]))
    expect(sum).toMatchObject({hosts: 0, ok: 0, failed: 0, failures: [], joinTimeouts: {count: 0, hosts: []}, wallMs: 100_000})
  })
})

describe('text', () => {
  it.each([
    [null, '-'],
    [0, '0ms'],
    [850, '850ms'],
    [1000, '1.0s'],
    [12_345, '12.3s'],
    [59_940, '59.9s'],
    [60_000, '1m00s'],
    [252_400, '4m12s'],
    [3_599_000, '59m59s'],
    [3_720_000, '1h02m'],
  ])('formatDuration(%s) = %s', (ms, want) => {
    expect(formatDuration(ms)).toBe(want)
  })

  it('renders the phase table, the throughput, the failures and the join timeouts', () => {
    const text = renderSummaryText(summarizeRun(syntheticRun(300)))
    const lines = text.split('\n')
    const header = lines.findIndex((l) => /^PHASE\s+COUNT\s+P50\s+P90\s+MAX$/.test(l))
    expect(header).toBeGreaterThan(0)
    expect(lines.slice(header + 1, header + 6).map((l) => l.split(/\s+/)[0])).toEqual(['create', 'ssh', 'engine', 'join', 'total'])
    expect(text).toMatch(/^Throughput: \d+ hosts joined; busiest minute \d+ \(from .+\); overall [\d.]+\/min$/m)
    expect(text).toMatch(/^create\s+\d+\s+droplet limit exceeded.*\(x\d+\)\s+node\d+/m)
    expect(text).toMatch(/^Join timeouts: \d+ .*: node\d+/m)
  })

  it('never prints control characters of a command line to the terminal', () => {
    const text = renderSummaryText(summarizeRun(run([], {command: 'belt create \u001b[2J\u0007x'})))
    expect(text).toContain('belt create ?[2J?x')
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/)
  })

  it('lists runs: ID HOSTS FAILED WALL COMMAND', () => {
    const r = run([host('a', times(0, 1)), host('b', times(0), {ok: false})])
    expect(runListEntry(r)).toEqual({id: r.id, command: r.command, hosts: 2, failed: 1, wallMs: 100_000})
    expect(renderRunList([runListEntry(r)])).toBe(`ID                      HOSTS   FAILED   WALL    COMMAND\n${r.id}   2       1        1m40s   ${r.command}\n`)
  })
})

// ---------------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------------

describe('escapeXml', () => {
  it.each([
    ['node1', 'node1'],
    ['a<b', 'a&lt;b'],
    ['a>b', 'a&gt;b'],
    ['a&b', 'a&amp;b'],
    ['&amp;', '&amp;amp;'],
    [`"double" 'single'`, '&quot;double&quot; &apos;single&apos;'],
    ['tab\tand\nnewline', 'tab\tand\nnewline'],
    ['bell\u0007 nul\u0000 esc\u001b', 'bell\ufffd nul\ufffd esc\ufffd'],
    ['\ufffe\uffff', '\ufffd\ufffd'],
    ['lone \ud800 surrogate \udc00', 'lone \ufffd surrogate \ufffd'],
    ['emoji 🐳 and é', 'emoji 🐳 and é'],
  ])('%j -> %j', (input, want) => {
    expect(escapeXml(input)).toBe(want)
  })
})

describe('renderTimelineSvg', () => {
  const big = syntheticRun(300)
  const svg = renderTimelineSvg(big)
  const doc = parseSvg(svg)

  it('is well-formed XML with one row per host', () => {
    expect(elements(doc, 'svg')).toHaveLength(1)
    const rows = elements(doc, 'g', 'host')
    expect(rows).toHaveLength(300)
    expect(new Set(rows.map((r) => r[':@']!['data-host'])).size).toBe(300)
    expect(svg).not.toMatch(/NaN|Infinity|undefined/)
  })

  it('has a legend naming every phase and every marker', () => {
    const [legend] = elements(doc, 'g', 'legend')
    expect(legend).toBeDefined()
    const labels = elements([legend!], 'text').map(textOf)
    expect(labels).toEqual(expect.arrayContaining(['create', 'ssh', 'engine', 'join']))
    expect(labels.some((l) => l.startsWith('failed'))).toBe(true)
    expect(labels.some((l) => l.startsWith('join timed out'))).toBe(true)
    expect(labels.some((l) => l.startsWith('manager'))).toBe(true)
  })

  it('puts the run id, the command (escaped), the host count and the wall time in the title', () => {
    const titleText = elements(doc, 'text').map(textOf)
    expect(titleText[0]).toBe(`Run ${big.id}: ${big.command}`)
    expect(svg).toContain('&lt;2k&gt;&amp;&quot;more&quot;')
    expect(titleText[1]).toMatch(/^300 hosts \(3 managers\) · \d+ ok · \d+ failed · \d+ join timeouts · wall \d+m\d\ds/)
  })

  it('marks every failed host with a ×, every join timeout with a ring, every manager in the gutter', () => {
    const s = summarizeRun(big)
    const [markers] = elements(doc, 'g', 'markers')
    expect(s.failed).toBeGreaterThan(0)
    expect(s.joinTimeouts.count).toBeGreaterThan(0)
    expect(elements([markers!], 'path')).toHaveLength(s.failed)
    expect(elements([markers!], 'circle')).toHaveLength(s.joinTimeouts.count)
    expect(elements([markers!], 'rect')).toHaveLength(3)
  })

  it('draws the cumulative curves of engines ready and hosts joined', () => {
    const curves = elements(doc, 'path', 'curve').map((c) => c[':@']!['data-milestone'])
    expect(curves).toEqual(['engineReady', 'joined'])
  })

  it('has time ticks in seconds, starting at 0s', () => {
    const [axis] = elements(doc, 'g', 'x-axis')
    const ticks = elements([axis!], 'text').map(textOf)
    expect(ticks[0]).toBe('0s')
    expect(ticks.length).toBeGreaterThanOrEqual(4)
    expect(ticks.every((t) => /^\d+(\.\d)?s$/.test(t))).toBe(true)
  })

  it('is deterministic: the same run gives the same bytes', () => {
    expect(renderTimelineSvg(structuredClone(big))).toBe(svg)
    expect(renderTimelineSvg(syntheticRun(300))).toBe(svg)
  })

  it.each([
    {n: 10, rowHeight: 16, barHeight: 12, maxLabels: 10},
    {n: 100, rowHeight: 9, barHeight: 5, maxLabels: 100},
    {n: 300, rowHeight: 3, barHeight: 3, maxLabels: 85},
    {n: 1000, rowHeight: 1, barHeight: 1, maxLabels: 101},
  ])('stays readable for $n hosts: rows of $rowHeight px, at most ~$maxLabels names', ({n, rowHeight, barHeight, maxLabels}) => {
    const d = parseSvg(renderTimelineSvg(syntheticRun(n)))
    const rows = elements(d, 'g', 'host')
    expect(rows).toHaveLength(n)
    // Phase bars (not the red band of a failed row): all of one height, rows evenly spaced.
    const bars = rows.map((r) => elements([r], 'rect').filter((b) => b[':@']!.fill !== '#fde0e0'))
    const heights = new Set(bars.flat().map((b) => Number(b[':@']!.height)))
    expect([...heights]).toEqual([barHeight])
    const withBars = bars.map((b, i) => [i, Number(b[0]?.[':@']!.y)] as const).filter(([, y]) => !Number.isNaN(y))
    const [[i0, y0], [i1, y1]] = [withBars[0]!, withBars.at(-1)!]
    expect((y1 - y0) / (i1 - i0)).toBe(rowHeight)
    const [labels] = elements(d, 'g', 'host-labels')
    const names = elements([labels!], 'text')
    expect(names.length).toBeGreaterThan(0)
    expect(names.length).toBeLessThanOrEqual(maxLabels)
    // Labels never overlap: at least 11 px apart.
    const ly = names.map((t) => Number(t[':@']!.y)).sort((a, b) => a - b)
    for (let i = 1; i < ly.length; i++) expect(ly[i]! - ly[i - 1]!).toBeGreaterThanOrEqual(11)
  })

  it('orders rows by start time, or by join time with hosts that never joined last', () => {
    const r = run([host('late', times(20, 30, 31, 40, 45)), host('early', times(0, 30, 31, 40, 90)), host('failed', times(5), {ok: false}), host('mid', times(10, 30, 31, 40, 50))])
    const order = (sort: 'start' | 'joined') => elements(parseSvg(renderTimelineSvg(r, {sort})), 'g', 'host').map((g) => g[':@']!['data-host'])
    expect(order('start')).toEqual(['early', 'failed', 'mid', 'late'])
    expect(order('joined')).toEqual(['late', 'mid', 'early', 'failed'])
  })

  it('escapes hostile text everywhere and stays well-formed', () => {
    const hostile = run([host('a', times(0, 1, 2, 3, 4), {ok: false, failedPhase: 'join', error: 'boom </title><script>alert("x")</script> & more'})], {
      id: 'r<1>',
      command: `belt create --engine-label 'a=<b>' --engine-opt "x=&y" \u0001 ]]> <!-- -->`,
      driver: 'd&d',
      startedAt: at(0),
    })
    const out = renderTimelineSvg(hostile)
    const d = parseSvg(out)
    expect(elements(d, 'script')).toHaveLength(0)
    expect(textOf(elements(d, 'text')[0]!)).toBe(`Run r<1>: belt create --engine-label 'a=<b>' --engine-opt "x=&y" \ufffd ]]> <!-- -->`)
    expect(textOf(elements(elements(d, 'g', 'host'), 'title')[0]!)).toContain('boom </title><script>alert("x")</script> & more')
  })

  it('renders a run with no hosts, and a run that is only swarm joins', () => {
    const empty = parseSvg(renderTimelineSvg(run([])))
    expect(elements(empty, 'g', 'host')).toHaveLength(0)
    const init = run([host('m1', times(undefined, undefined, undefined, undefined, 5), {role: 'manager'}), host('w1', times(undefined, undefined, undefined, undefined, 9))], {finishedAt: at(10)})
    const d = parseSvg(renderTimelineSvg(init))
    const rows = elements(d, 'g', 'host')
    expect(rows).toHaveLength(2)
    // One join segment per host, from x = 0 (the run start).
    const bars = rows.map((r) => elements([r], 'rect'))
    expect(bars.map((b) => b.length)).toEqual([1, 1])
    expect(new Set(bars.map((b) => b[0]![':@']!.x)).size).toBe(1)
    expect(elements(d, 'path', 'curve').map((c) => c[':@']!['data-milestone'])).toEqual(['joined'])
  })
})
