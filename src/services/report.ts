/**
 * `belt report`: the experiment log of one batch, as figures (per-phase duration percentiles,
 * throughput, failures) and as a picture (a Gantt-like SVG timeline, one row per host).
 *
 * Everything here is pure: a {@link Run} in, plain data or a string out. Same input, same bytes
 * out (no clock, no randomness, no locale-dependent formatting), so a report can be diffed and
 * tested byte for byte.
 */
import type {Run, RunHost} from '../store/runs.js'
import type {PhaseTimes} from '../store/types.js'
import {naturalCompare} from '../store/store.js'
import {renderTable} from '../ui/table.js'

/** The four intervals of a host's way through a batch, in order. */
export const PHASES = ['create', 'ssh', 'engine', 'join'] as const
export type Phase = (typeof PHASES)[number]

/**
 * The timestamps that bound the phases: phase `PHASES[i]` runs from `MILESTONES[i]` to
 * `MILESTONES[i + 1]` (create: createRequested -> addressKnown, ..., join: engineReady -> joined).
 */
export const MILESTONES = ['createRequested', 'addressKnown', 'sshUp', 'engineReady', 'joined'] as const satisfies readonly (keyof PhaseTimes)[]
export type Milestone = (typeof MILESTONES)[number]

const MINUTE = 60_000

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/**
 * The `p`-th percentile of `values` by the nearest-rank method: sort ascending, take the value at
 * 1-based rank `ceil(p / 100 * n)`; `p = 0` gives the minimum, `p = 100` the maximum. Always one of
 * the values (never an interpolation), so "p90 = 41 s" means a host really took 41 s.
 *
 * @param values any order; not modified
 * @param p in [0, 100]
 * @returns `undefined` for no values
 * @throws RangeError when `p` is outside [0, 100] (a bug in the caller)
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside [0, 100]`)
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  // p * n / 100, not p / 100 * n: with integer p and n the product is exact, so ceil() is not
  // pushed up a rank by a rounding error (0.07 * 100 = 7.000000000000001).
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100))
  return sorted[rank - 1]
}

/** One phase of one host, in epoch milliseconds. */
export interface Interval {
  phase: Phase
  start: number
  end: number
}

/** The window of a run, in epoch milliseconds: `x = 0` of the timeline, and its right edge. */
export interface RunWindow {
  start: number
  end: number
}

const parseTime = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined
  const t = Date.parse(s)
  return Number.isFinite(t) ? t : undefined
}

/** A host's milestones in epoch ms, in {@link MILESTONES} order; `undefined` when missing or unparsable. */
export function hostStamps(host: RunHost): (number | undefined)[] {
  return MILESTONES.map((m) => parseTime(host.times?.[m]))
}

/**
 * From the run's `startedAt` (or its earliest host timestamp, if one is earlier: a clock step) to
 * its `finishedAt` (or its latest host timestamp, if later). A run with no usable time at all gets
 * the empty window at 0.
 */
export function runWindow(run: Run): RunWindow {
  // Loops, not Math.min(...all): a 10,000-host run has 50,000 timestamps, too many arguments.
  let lo = parseTime(run.startedAt) ?? Infinity
  let hi = parseTime(run.finishedAt) ?? -Infinity
  for (const h of run.hosts)
    for (const t of hostStamps(h))
      if (t !== undefined) {
        if (t < lo) lo = t
        if (t > hi) hi = t
      }
  if (lo === Infinity) lo = hi === -Infinity ? 0 : hi
  return {start: lo, end: Math.max(hi, lo)}
}

/**
 * A host's phases as intervals. A phase is there when its closing timestamp is. Its opening one is
 * the previous milestone; when that is missing:
 *  - and the host has no earlier timestamp at all, the batch began at this phase (`belt swarm init`
 *    records only `joined`), so the run start is the reference: join = run start -> joined;
 *  - but an earlier one exists (a gap in the record), the phase is left out rather than guessed.
 * An interval that would end before it starts (a clock step) is left out too.
 */
export function hostIntervals(host: RunHost, runStart: number): Interval[] {
  const t = hostStamps(host)
  const out: Interval[] = []
  for (let i = 1; i < MILESTONES.length; i++) {
    const end = t[i]
    if (end === undefined) continue
    let start = t[i - 1]
    if (start === undefined) {
      if (t.slice(0, i - 1).some((x) => x !== undefined)) continue
      start = runStart
    }
    if (end >= start) out.push({phase: PHASES[i - 1]!, start, end})
  }
  return out
}

/** Duration statistics of one phase over the hosts that went through it, in milliseconds. */
export interface PhaseStats {
  phase: Phase | 'total'
  /** Hosts with this interval. */
  count: number
  /** `null` when `count` is 0. */
  p50: number | null
  p90: number | null
  max: number | null
}

/** The hosts that failed in one phase. */
export interface FailureGroup {
  /** The host's `failedPhase` as recorded; when absent, the phase after its last timestamp, or `unknown`. */
  phase: string
  hosts: {name: string; error?: string}[]
}

/** How fast hosts reached the furthest milestone of the run (`joined` for a swarm batch). */
export interface Throughput {
  /** `joined`, else `engineReady`, ...: the furthest milestone any host reached; null if none did. */
  milestone: Milestone | null
  /** Hosts that reached it. */
  count: number
  /** Most hosts reaching it within any 60 s window, and where that window starts (ms since run start). */
  peakPerMinute: number
  peakFromMs: number | null
  /** `count` per minute of wall time, counting a run shorter than a minute as one minute (so it never exceeds the peak for short runs). Two decimals. */
  overallPerMinute: number
}

/** What `belt report --json` prints: the figures of one run. Durations in milliseconds. */
export interface RunSummary {
  id: string
  command: string
  driver?: string
  startedAt: string
  finishedAt: string
  /** From the run window's start to its end ({@link runWindow}). */
  wallMs: number
  settings: Record<string, string | number | boolean>
  hosts: number
  ok: number
  failed: number
  managers: number
  /** create, ssh, engine, join (see {@link hostIntervals}), then total: from the start of a host's first phase to the end of its last, for hosts that ended ok. */
  phases: PhaseStats[]
  throughput: Throughput
  /** In phase order (create, ssh, engine, join, then other recorded names alphabetically); hosts in natural order. */
  failures: FailureGroup[]
  /** `docker swarm join` said "Timeout was reached before node joined": still joining, verified after. */
  joinTimeouts: {count: number; hosts: string[]}
}

function stats(phase: PhaseStats['phase'], durations: number[]): PhaseStats {
  return {phase, count: durations.length, p50: percentile(durations, 50) ?? null, p90: percentile(durations, 90) ?? null, max: percentile(durations, 100) ?? null}
}

/** The phase a failed host most likely failed in when it did not say: the one after its last timestamp. */
function inferFailedPhase(host: RunHost): string {
  const t = hostStamps(host)
  let last = -1
  t.forEach((x, i) => {
    if (x !== undefined) last = i
  })
  return last >= 0 && last < PHASES.length ? PHASES[last]! : 'unknown'
}

const phaseRank = (p: string) => {
  const i = (PHASES as readonly string[]).indexOf(p)
  return i === -1 ? PHASES.length : i
}

/** Most hosts within any `width`-ms window of sorted `times`: [count, window start]. */
function busiestWindow(times: readonly number[], width: number): [number, number | null] {
  let best = 0
  let from: number | null = null
  let j = 0
  for (let i = 0; i < times.length; i++) {
    if (j < i) j = i
    while (j < times.length && times[j]! < times[i]! + width) j++
    if (j - i > best) {
      best = j - i
      from = times[i]!
    }
  }
  return [best, from]
}

/** The times at which hosts reached `milestone`, ascending. */
function milestoneTimes(run: Run, milestone: Milestone): number[] {
  const i = MILESTONES.indexOf(milestone)
  return run.hosts
    .map((h) => hostStamps(h)[i])
    .filter((t): t is number => t !== undefined)
    .sort((a, b) => a - b)
}

/** The furthest milestone any host of the run reached. */
function furthestMilestone(run: Run): Milestone | null {
  for (let i = MILESTONES.length - 1; i >= 1; i--) if (milestoneTimes(run, MILESTONES[i]!).length) return MILESTONES[i]!
  return null
}

/** The figures of a run: see {@link RunSummary}. */
export function summarizeRun(run: Run): RunSummary {
  const win = runWindow(run)
  const wallMs = win.end - win.start
  const durations = new Map<PhaseStats['phase'], number[]>([...PHASES.map((p) => [p, []] as [Phase, number[]]), ['total', []]])
  for (const h of run.hosts) {
    const iv = hostIntervals(h, win.start)
    for (const i of iv) durations.get(i.phase)!.push(i.end - i.start)
    if (h.ok && iv.length) durations.get('total')!.push(iv.at(-1)!.end - iv[0]!.start)
  }

  const groups = new Map<string, FailureGroup['hosts']>()
  for (const h of run.hosts.filter((x) => !x.ok)) {
    const phase = h.failedPhase || inferFailedPhase(h)
    if (!groups.has(phase)) groups.set(phase, [])
    groups.get(phase)!.push(h.error === undefined ? {name: h.name} : {name: h.name, error: h.error})
  }
  const failures = [...groups.entries()]
    .sort(([a], [b]) => phaseRank(a) - phaseRank(b) || (a < b ? -1 : a > b ? 1 : 0))
    .map(([phase, hosts]) => ({phase, hosts: hosts.sort((a, b) => naturalCompare(a.name, b.name))}))

  const milestone = furthestMilestone(run)
  const times = milestone ? milestoneTimes(run, milestone) : []
  const [peak, peakFrom] = busiestWindow(times, MINUTE)
  const timedOut = run.hosts.filter((h) => h.joinTimedOut).map((h) => h.name).sort(naturalCompare)

  return {
    id: run.id,
    command: run.command,
    ...(run.driver === undefined ? {} : {driver: run.driver}),
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    wallMs,
    settings: run.settings ?? {},
    hosts: run.hosts.length,
    ok: run.hosts.filter((h) => h.ok).length,
    failed: run.hosts.filter((h) => !h.ok).length,
    managers: run.hosts.filter((h) => h.role === 'manager').length,
    phases: [...durations.entries()].map(([phase, d]) => stats(phase, d)),
    throughput: {
      milestone,
      count: times.length,
      peakPerMinute: peak,
      peakFromMs: peakFrom === null ? null : peakFrom - win.start,
      overallPerMinute: Math.round((times.length / Math.max(wallMs, MINUTE)) * MINUTE * 100) / 100,
    },
    failures,
    joinTimeouts: {count: timedOut.length, hosts: timedOut},
  }
}

/** One line of `belt report --list`. */
export interface RunListEntry {
  id: string
  command: string
  hosts: number
  failed: number
  wallMs: number
}

export function runListEntry(run: Run): RunListEntry {
  const win = runWindow(run)
  return {id: run.id, command: run.command, hosts: run.hosts.length, failed: run.hosts.filter((h) => !h.ok).length, wallMs: win.end - win.start}
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/** `850ms`, `12.3s`, `4m05s`, `1h02m`: short, for tables. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < MINUTE) return `${(Math.round(ms / 100) / 10).toFixed(1)}s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  const m = Math.round(s / 60)
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

/** Control characters would move a terminal's cursor (or worse): shown as `?`. */
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')

const MILESTONE_WORDS: Record<Milestone, string> = {
  createRequested: 'requested',
  addressKnown: 'with an address',
  sshUp: 'reachable over SSH',
  engineReady: 'with an engine ready',
  joined: 'joined',
}

/** `node1, node2, ... and 12 more` */
function someNames(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).map(printable).join(', ')
  return names.length > max ? `${shown} and ${names.length - max} more` : shown
}

/** The most frequent error of a group (ties: the first in name order), with its count. */
function commonError(hosts: FailureGroup['hosts']): string {
  const counts = new Map<string, number>()
  for (const h of hosts) if (h.error) counts.set(h.error, (counts.get(h.error) ?? 0) + 1)
  let best: [string, number] | undefined
  for (const e of counts) if (!best || e[1] > best[1]) best = e
  if (!best) return '-'
  const line = printable(best[0].split('\n')[0]!.trim())
  const short = line.length > 60 ? line.slice(0, 59) + '…' : line
  return best[1] > 1 ? `${short} (x${best[1]})` : short
}

/** What `belt report` prints on stdout: a header, the phase table, throughput, failures, join timeouts. */
export function renderSummaryText(s: RunSummary): string {
  const out: string[] = []
  out.push(`Run ${printable(s.id)}: ${printable(s.command)}`)
  const parts = [`${s.hosts} host${s.hosts === 1 ? '' : 's'}${s.managers ? ` (${s.managers} manager${s.managers === 1 ? '' : 's'})` : ''}`, `${s.ok} ok`, `${s.failed} failed`]
  if (s.joinTimeouts.count) parts.push(`${s.joinTimeouts.count} join timeout${s.joinTimeouts.count === 1 ? '' : 's'}`)
  out.push(`${parts.join(', ')}; wall ${formatDuration(s.wallMs)}${s.driver ? `; driver ${printable(s.driver)}` : ''}`)
  out.push('')
  out.push(renderTable(['PHASE', 'COUNT', 'P50', 'P90', 'MAX'], s.phases.map((p) => [p.phase, String(p.count), formatDuration(p.p50), formatDuration(p.p90), formatDuration(p.max)])).trimEnd())
  out.push('')
  const t = s.throughput
  if (t.milestone)
    out.push(`Throughput: ${t.count} hosts ${MILESTONE_WORDS[t.milestone]}; busiest minute ${t.peakPerMinute}${t.peakFromMs === null ? '' : ` (from ${formatDuration(t.peakFromMs)})`}; overall ${t.overallPerMinute.toFixed(1)}/min`)
  else out.push('Throughput: no host got past its first step')
  out.push('')
  if (s.failures.length) {
    out.push(`Failures: ${s.failed}`)
    out.push(renderTable(['PHASE', 'COUNT', 'MOST COMMON ERROR', 'HOSTS'], s.failures.map((g) => [printable(g.phase), String(g.hosts.length), commonError(g.hosts), someNames(g.hosts.map((h) => h.name))])).trimEnd())
  } else out.push('Failures: none')
  out.push(s.joinTimeouts.count ? `Join timeouts: ${s.joinTimeouts.count} (still joining when docker gave up; verified after): ${someNames(s.joinTimeouts.hosts)}` : 'Join timeouts: none')
  return out.join('\n') + '\n'
}

/** `belt report --list`: ID COMMAND HOSTS FAILED WALL, oldest first. */
export function renderRunList(entries: readonly RunListEntry[]): string {
  return renderTable(
    ['ID', 'HOSTS', 'FAILED', 'WALL', 'COMMAND'],
    entries.map((e) => [printable(e.id), String(e.hosts), String(e.failed), formatDuration(e.wallMs), printable(e.command)]),
  )
}

// ---------------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------------

/**
 * Text made safe for XML 1.0 character data and attribute values: `& < > " '` become entities, and
 * the characters XML 1.0 forbids (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, unpaired surrogates)
 * become U+FFFD, so any command line renders instead of breaking the file.
 */
export function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

/** At most `max` characters (code points), with `…` when cut. Applied before escaping, so an entity is never cut. */
function clip(s: string, max: number): string {
  const cps = Array.from(s)
  return cps.length <= max ? s : cps.slice(0, Math.max(1, max - 1)).join('') + '…'
}

export interface TimelineOptions {
  /** Image width in px (at least 600). Default 1200. */
  width?: number
  /** Row order: by the time the host started (default), or by the time it joined (hosts that never joined last). */
  sort?: 'start' | 'joined'
}

export const PHASE_COLOURS: Record<Phase, string> = {create: '#4e79a7', ssh: '#76b7b2', engine: '#59a14f', join: '#b07aa1'}
const RED = '#d62728'
const FAILED_BAND = '#fde0e0'
const TIMEOUT = '#f28e2b'
const MANAGER = '#222222'
const GRID = '#e6e6e6'
const AXIS = '#888888'
const TEXT = '#222222'
const MUTED = '#666666'
const PEAK_BAND = '#fff1c1'
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"

/** Layout, in px. */
const L = {
  left: 168,
  right: 36,
  /** The Gantt grows up to this height, then rows get thinner (down to 1 px). */
  maxGantt: 900,
  maxRow: 16,
  titleY: 28,
  subtitleY: 50,
  legendY: 76,
  curveTop: 104,
  curveHeight: 150,
  /** Minimum distance between two host labels. */
  labelGap: 11,
}

/** A number for an attribute: at most one decimal, no `-0`, no exponent. */
const n1 = (v: number): string => {
  const r = Math.round(v * 10) / 10
  return (r === 0 ? 0 : r).toString()
}

/** The first of `steps` that cuts `span` into at most `maxTicks` parts, else the next 1-2-5 step. */
function niceStep(span: number, maxTicks: number, steps: readonly number[]): number {
  for (const s of steps) if (span / s <= maxTicks) return s
  let s = steps.at(-1)!
  for (let k = 0; span / s > maxTicks; k++) s *= k % 3 === 1 ? 2.5 : 2
  return s
}
const TIME_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000]

interface Row {
  host: RunHost
  stamps: (number | undefined)[]
  intervals: Interval[]
  /** Sort key: the start of its first phase (or its first timestamp). */
  start: number | undefined
}

function orderRows(run: Run, win: RunWindow, sort: 'start' | 'joined'): Row[] {
  const rows: Row[] = run.hosts.map((host) => {
    const stamps = hostStamps(host)
    const intervals = hostIntervals(host, win.start)
    const first = stamps.find((t) => t !== undefined)
    return {host, stamps, intervals, start: intervals.length ? Math.min(intervals[0]!.start, first ?? Infinity) : first}
  })
  const key = (r: Row) => (sort === 'joined' ? r.stamps[4] : r.start)
  const byUndefLast = (a: number | undefined, b: number | undefined) => (a === b ? 0 : a === undefined ? 1 : b === undefined ? -1 : a - b)
  return rows.sort((a, b) => byUndefLast(key(a), key(b)) || byUndefLast(a.start, b.start) || naturalCompare(a.host.name, b.host.name))
}

/** A host's last known timestamp: where a failed host stopped. */
const lastStamp = (r: Row): number | undefined => r.stamps.filter((t): t is number => t !== undefined).at(-1)

function tooltip(r: Row): string {
  const parts = [r.host.name + (r.host.role ? ` (${r.host.role})` : '')]
  for (const i of r.intervals) parts.push(`${i.phase} ${formatDuration(i.end - i.start)}`)
  if (r.host.joinTimedOut) parts.push('join timed out, verified after')
  if (!r.host.ok) parts.push(`FAILED${r.host.failedPhase ? ` in ${r.host.failedPhase}` : ''}${r.host.error ? `: ${clip(r.host.error, 300)}` : ''}`)
  return parts.join(' · ')
}

/**
 * The run as a self-contained SVG: a title (run id, command, hosts, wall time), a legend, a
 * cumulative curve of hosts joined and engines ready over time (with the busiest minute shaded),
 * and a Gantt-like timeline with one row per host (`<g class="host">`, hover for details): x is
 * seconds since the run started, each phase a coloured segment; failed hosts get a red band and a
 * red × where they stopped (their last timestamp); join timeouts an orange ring at their join;
 * managers a black block in the gutter and their name in bold. Rows shrink to fit (16 px down to
 * 1 px) and only every k-th host is named (managers and failed hosts first), so 10 or 1,000 hosts
 * both read. Every text is escaped ({@link escapeXml}). Same run, same bytes.
 */
export function renderTimelineSvg(run: Run, opts: TimelineOptions = {}): string {
  const W = Math.max(600, Math.round(opts.width ?? 1200))
  const sort = opts.sort ?? 'start'
  const win = runWindow(run)
  const summary = summarizeRun(run)
  const rows = orderRows(run, win, sort)
  const n = rows.length
  const plotW = W - L.left - L.right
  const spanMs = Math.max(win.end - win.start, 1000)
  const x = (t: number) => L.left + ((t - win.start) / spanMs) * plotW

  const rowH = n === 0 ? L.maxRow : Math.min(L.maxRow, Math.max(1, Math.floor(L.maxGantt / n)))
  // A gap between rows while they are thick enough to keep one; below 4 px rows touch, which reads as an area.
  const barInset = rowH >= 8 ? 2 : rowH >= 4 ? 1 : 0
  const curveBottom = L.curveTop + L.curveHeight
  const ganttTop = curveBottom + 36
  const ganttH = Math.max(n * rowH, 24)
  const ganttBottom = ganttTop + ganttH
  const H = ganttBottom + 52

  const o: string[] = []
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" font-size="11" fill="${TEXT}">`)
  o.push(`<title>${escapeXml(`belt run ${run.id}: ${run.command}`)}</title>`)
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)

  // Title and subtitle.
  const maxChars = Math.floor((W - 32) / 8.6)
  o.push(`<text x="16" y="${L.titleY}" font-size="16" font-weight="bold">${escapeXml(clip(`Run ${run.id}: ${run.command}`, maxChars))}</text>`)
  const sub = [`${n} host${n === 1 ? '' : 's'}${summary.managers ? ` (${summary.managers} manager${summary.managers === 1 ? '' : 's'})` : ''}`, `${summary.ok} ok`, `${summary.failed} failed`]
  if (summary.joinTimeouts.count) sub.push(`${summary.joinTimeouts.count} join timeout${summary.joinTimeouts.count === 1 ? '' : 's'}`)
  sub.push(`wall ${formatDuration(summary.wallMs)}`)
  if (run.driver) sub.push(`driver ${run.driver}`)
  const th = summary.throughput
  if (th.milestone) sub.push(`busiest minute ${th.peakPerMinute} ${MILESTONE_WORDS[th.milestone].replace(/^with an? /, '')}, ${th.overallPerMinute.toFixed(1)}/min overall`)
  o.push(`<text x="16" y="${L.subtitleY}" font-size="12" fill="${MUTED}">${escapeXml(clip(sub.join(' · '), Math.floor((W - 32) / 6.4)))}</text>`)

  // Legend.
  o.push(`<g class="legend" font-size="11">`)
  let lx = 16
  const ly = L.legendY
  const item = (swatch: string, label: string) => {
    o.push(`<g transform="translate(${lx},${ly})">${swatch}<text x="18" y="4">${escapeXml(label)}</text></g>`)
    lx += 18 + Math.ceil(label.length * 5.9) + 22
  }
  for (const p of PHASES) item(`<rect x="0" y="-5" width="14" height="9" fill="${PHASE_COLOURS[p]}"/>`, p)
  item(`<rect x="0" y="-5" width="14" height="9" fill="${FAILED_BAND}"/><path d="M3.5 -3.5 L10.5 3.5 M3.5 3.5 L10.5 -3.5" stroke="${RED}" stroke-width="1.8"/>`, 'failed (where it stopped)')
  item(`<circle cx="7" cy="0" r="3.5" fill="#ffffff" stroke="${TIMEOUT}" stroke-width="1.8"/>`, 'join timed out (verified after)')
  item(`<rect x="4" y="-5" width="6" height="10" fill="${MANAGER}"/>`, 'manager (name in bold)')
  o.push(`</g>`)

  // Time axis: ticks shared by both panels.
  const spanS = spanMs / 1000
  const step = niceStep(spanS, Math.max(4, Math.floor(plotW / 90)), TIME_STEPS_S)
  const ticks: number[] = []
  for (let k = 0; k * step <= spanS + 1e-9; k++) ticks.push(Math.round(k * step * 10) / 10)
  const tickLabel = (s: number) => `${n1(s)}s`
  const grid = (top: number, bottom: number) =>
    `<path d="${ticks.map((s) => `M${n1(x(win.start + s * 1000))} ${top}V${bottom}`).join('')}" stroke="${GRID}" stroke-width="1"/>`
  const tickLabels = (y: number) =>
    `<g class="x-axis" font-size="10" fill="${MUTED}" text-anchor="middle">${ticks.map((s) => `<text x="${n1(x(win.start + s * 1000))}" y="${y}">${tickLabel(s)}</text>`).join('')}</g>`

  // Cumulative panel.
  o.push(`<g class="cumulative">`)
  const yMax = Math.max(n, 1)
  const cy = (k: number) => curveBottom - (k / yMax) * L.curveHeight
  if (th.peakFromMs !== null && th.peakPerMinute > 0) {
    const x0 = x(win.start + th.peakFromMs)
    const x1 = Math.min(x(win.start + th.peakFromMs + MINUTE), L.left + plotW)
    o.push(`<rect x="${n1(x0)}" y="${L.curveTop}" width="${n1(Math.max(x1 - x0, 1))}" height="${L.curveHeight}" fill="${PEAK_BAND}"/>`)
  }
  o.push(grid(L.curveTop, curveBottom))
  const yStep = niceStep(yMax, 5, COUNT_STEPS)
  const yTicks: number[] = []
  for (let k = 0; k <= yMax; k += yStep) yTicks.push(k)
  o.push(`<path d="${yTicks.map((k) => `M${L.left} ${n1(cy(k))}H${L.left + plotW}`).join('')}" stroke="${GRID}" stroke-width="1"/>`)
  o.push(`<g font-size="10" fill="${MUTED}" text-anchor="end">${yTicks.map((k) => `<text x="${L.left - 6}" y="${n1(cy(k) + 3.5)}">${k}</text>`).join('')}</g>`)
  o.push(`<path d="M${L.left} ${L.curveTop}V${curveBottom}H${L.left + plotW}" fill="none" stroke="${AXIS}" stroke-width="1"/>`)
  const curves: {milestone: Milestone; label: string; colour: string; width: number; dash?: string}[] = [
    {milestone: 'engineReady', label: 'engines ready', colour: PHASE_COLOURS.engine, width: 1.6, dash: '5 3'},
    {milestone: 'joined', label: 'hosts joined', colour: PHASE_COLOURS.join, width: 2.2},
  ]
  const captions: string[] = []
  for (const c of curves) {
    const times = milestoneTimes(run, c.milestone)
    if (!times.length) continue
    let d = `M${L.left} ${n1(cy(0))}`
    times.forEach((t, i) => (d += `H${n1(x(t))}V${n1(cy(i + 1))}`))
    d += `H${n1(x(win.end))}`
    o.push(`<path class="curve" data-milestone="${c.milestone}" d="${d}" fill="none" stroke="${c.colour}" stroke-width="${c.width}"${c.dash ? ` stroke-dasharray="${c.dash}"` : ''}/>`)
    captions.push(`<tspan${captions.length ? ' dx="18"' : ''} fill="${c.colour}" font-weight="bold">${c.dash ? '- - ' : '—— '}${escapeXml(c.label)}: ${times.length}</tspan>`)
  }
  o.push(
    `<text x="${L.left + 8}" y="${L.curveTop + 14}" font-size="11">${captions.length ? captions.join('') : `<tspan fill="${MUTED}">no host reached its engine or joined</tspan>`}${th.peakPerMinute > 0 && th.milestone ? `<tspan dx="18" fill="${MUTED}">(shaded: busiest minute, ${th.peakPerMinute} ${escapeXml(MILESTONE_WORDS[th.milestone].replace(/^with an? /, ''))})</tspan>` : ''}</text>`,
  )
  o.push(`<text x="16" y="${L.curveTop + 14}" font-size="11" font-weight="bold">hosts over time</text>`)
  o.push(`<text x="16" y="${L.curveTop + 28}" font-size="10" fill="${MUTED}">cumulative, of ${n}</text>`)
  o.push(`</g>`)
  o.push(tickLabels(curveBottom + 15))

  // Gantt.
  o.push(`<text x="16" y="${ganttTop - 10}" font-size="11" font-weight="bold">hosts by ${sort === 'joined' ? 'join' : 'start'} time</text>`)
  o.push(grid(ganttTop, ganttBottom))
  o.push(`<g class="gantt">`)
  const rowY = (i: number) => ganttTop + i * rowH
  for (const [i, r] of rows.entries()) {
    const y = rowY(i)
    const parts: string[] = [`<title>${escapeXml(tooltip(r))}</title>`]
    if (!r.host.ok) parts.push(`<rect x="${L.left}" y="${y}" width="${plotW}" height="${rowH}" fill="${FAILED_BAND}"/>`)
    for (const iv of r.intervals) {
      const x0 = x(iv.start)
      parts.push(`<rect x="${n1(x0)}" y="${y + barInset}" width="${n1(Math.max(x(iv.end) - x0, 0.5))}" height="${rowH - 2 * barInset}" fill="${PHASE_COLOURS[iv.phase]}"/>`)
    }
    o.push(`<g class="host" data-host="${escapeXml(r.host.name)}">${parts.join('')}</g>`)
  }
  o.push(`</g>`)
  o.push(`<path d="M${L.left} ${ganttTop}V${ganttBottom}H${L.left + plotW}" fill="none" stroke="${AXIS}" stroke-width="1"/>`)
  if (n === 0) o.push(`<text x="${L.left + 8}" y="${ganttTop + 16}" fill="${MUTED}">no hosts in this run</text>`)

  // Markers on top of every row, so a neighbour's bar never hides them.
  const mark = Math.min(9, Math.max(5, rowH + 1))
  o.push(`<g class="markers">`)
  for (const [i, r] of rows.entries()) {
    const cyRow = rowY(i) + rowH / 2
    if (r.host.joinTimedOut) {
      const at = r.stamps[4] ?? lastStamp(r) ?? win.start
      o.push(`<circle cx="${n1(x(at))}" cy="${n1(cyRow)}" r="${n1(mark / 2 - 0.5)}" fill="#ffffff" stroke="${TIMEOUT}" stroke-width="1.6"/>`)
    }
    if (!r.host.ok) {
      const cx = x(lastStamp(r) ?? win.start)
      const h = mark / 2
      o.push(`<path d="M${n1(cx - h)} ${n1(cyRow - h)}L${n1(cx + h)} ${n1(cyRow + h)}M${n1(cx - h)} ${n1(cyRow + h)}L${n1(cx + h)} ${n1(cyRow - h)}" stroke="${RED}" stroke-width="1.8"/>`)
    }
    // A block in the gutter: adjacent managers make one bar instead of overlapping shapes.
    if (r.host.role === 'manager') o.push(`<rect x="${L.left - 10}" y="${rowY(i) + barInset}" width="6" height="${rowH - 2 * barInset}" fill="${MANAGER}"/>`)
  }
  o.push(`</g>`)

  // Host names: managers first, then failed hosts, then every k-th host, never closer than labelGap px.
  const k = Math.max(1, Math.ceil(L.labelGap / rowH))
  const placed: number[] = []
  const labels: string[] = []
  const free = (y: number) => placed.every((p) => Math.abs(p - y) >= L.labelGap)
  const label = (i: number, bold: boolean) => {
    const r = rows[i]!
    const y = rowY(i) + rowH / 2
    if (!free(y)) return
    placed.push(y)
    const colour = r.host.ok ? TEXT : RED
    labels.push(`<text x="${L.left - 16}" y="${n1(y + 3.5)}" fill="${colour}"${bold ? ' font-weight="bold"' : ''}>${escapeXml(clip(r.host.name, 22))}</text>`)
  }
  rows.forEach((r, i) => r.host.role === 'manager' && label(i, true))
  rows.forEach((r, i) => !r.host.ok && label(i, false))
  for (let i = 0; i < n; i += k) label(i, false)
  o.push(`<g class="host-labels" font-size="10" text-anchor="end">${labels.join('')}</g>`)

  // Bottom axis.
  o.push(tickLabels(ganttBottom + 15))
  o.push(`<text x="${L.left + plotW / 2}" y="${ganttBottom + 36}" font-size="11" fill="${MUTED}" text-anchor="middle">${escapeXml(`seconds since the run started (${run.startedAt})`)}${n > 1 && k > 1 ? escapeXml(` · ${rowH} px per host; 1 in ${k} named, failed ones first (red)`) : ''}</text>`)
  o.push(`</svg>`)
  return o.join('\n') + '\n'
}
