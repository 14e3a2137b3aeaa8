import {usageError} from './errors.js'

/** The most names one call may expand to: a typo like node[1:3000000] must not eat the machine. */
export const MAX_NAMES = 10_000

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const RANGE = /\[([0-9]+):([0-9]+)\]/g
/** What a glob over host names may contain once its ranges are expanded. */
const GLOB = /^[a-z0-9*?-]+$/

/**
 * Why `name` is not a DNS label (RFC 1123, lower case, at most 63 characters), or undefined when
 * it is one. Host names become hostnames, swarm node names and cloud resource names.
 */
export function labelProblem(name: string, what = 'host name'): string | undefined {
  if (name.length === 0) return `a ${what} cannot be empty`
  if (name.length > 63) return `'${name}' is ${name.length} characters long; a ${what} has at most 63`
  if (/[A-Z]/.test(name) && LABEL.test(name.toLowerCase())) return `'${name}' has upper-case letters; ${what}s are lower case: ${name.toLowerCase()}`
  if (!LABEL.test(name))
    return `'${name}' is not a valid ${what}: use lower-case letters, digits and '-', starting and ending with a letter or digit`
  return undefined
}

/**
 * Checks a cluster name (`--cluster`, `BELT_CLUSTER`): a DNS label like a host name, because it
 * names a directory of the store (`keys/<cluster>`) and cloud resources. Returns it, or throws a
 * usage UserError.
 */
export function checkClusterName(name: string): string {
  const problem = labelProblem(name, 'cluster name')
  if (problem) throw usageError(`--cluster (or BELT_CLUSTER): ${problem}`, 'E_CLUSTER_INVALID')
  return name
}

/**
 * Expands one pattern. `node[1:3]` -> node1 node2 node3 (inclusive); `node[01:10]` pads to the
 * width of the first bound; several ranges multiply (`r[1:2]-n[1:3]` gives six names). A plain
 * name expands to itself. Throws a usage UserError naming the pattern and the fix.
 */
export function expandPattern(pattern: string): string[] {
  if (/[[\]]/.test(pattern.replace(RANGE, ''))) {
    throw usageError(
      `'${pattern}' is not a valid name pattern: a range is written [FIRST:LAST] with whole numbers, e.g. node[1:5]`,
      'E_PATTERN_INVALID',
    )
  }
  let names = ['']
  let last = 0
  for (const m of pattern.matchAll(RANGE)) {
    const [whole, a, b] = m as unknown as [string, string, string]
    const literal = pattern.slice(last, m.index)
    last = m.index! + whole.length
    const from = Number(a)
    const to = Number(b)
    if (from > to)
      throw usageError(
        `range [${a}:${b}] in '${pattern}' counts down: write the smaller number first, e.g. [${b}:${a}]`,
        'E_PATTERN_RANGE',
      )
    const width = a.length > 1 && a.startsWith('0') ? a.length : 0
    const count = to - from + 1
    if (names.length * count > MAX_NAMES)
      throw usageError(`'${pattern}' expands to more than ${MAX_NAMES} names`, 'E_PATTERN_TOO_MANY', 'create hosts in smaller batches')
    const next: string[] = []
    for (const prefix of names)
      for (let i = from; i <= to; i++) next.push(prefix + literal + String(i).padStart(width, '0'))
    names = next
  }
  const tail = pattern.slice(last)
  return names.map((n) => n + tail)
}

/**
 * Expands every pattern and checks the result: each name a DNS label, no name twice. Throws a
 * usage UserError before anything is created.
 */
export function expandNames(patterns: readonly string[]): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  const dups = new Set<string>()
  for (const p of patterns) {
    for (const n of expandPattern(p)) {
      const problem = labelProblem(n)
      if (problem) throw usageError(problem, 'E_NAME_INVALID')
      if (seen.has(n)) dups.add(n)
      seen.add(n)
      out.push(n)
    }
    if (out.length > MAX_NAMES) throw usageError(`the names given expand to more than ${MAX_NAMES} hosts`, 'E_PATTERN_TOO_MANY')
  }
  if (dups.size > 0)
    throw usageError(`${summarizeNames([...dups])} named more than once`, 'E_NAME_DUPLICATE', 'give each host name once')
  return out
}

/**
 * Names for `--count N --prefix P`: continues after the highest `P<number>` that exists, so
 * `--count 3` after node1..node5 gives node6..node8. Padding follows the existing names when they
 * are padded.
 */
export function nextNames(prefix: string, count: number, existing: Iterable<string>): string[] {
  const problem = labelProblem(`${prefix}1`)
  if (problem) throw usageError(`--prefix ${prefix}: ${problem}`, 'E_NAME_INVALID')
  if (!Number.isInteger(count) || count < 1) throw usageError(`--count must be a whole number of at least 1, got ${count}`, 'E_COUNT_INVALID')
  if (count > MAX_NAMES) throw usageError(`--count ${count} is more than ${MAX_NAMES}`, 'E_PATTERN_TOO_MANY')
  const re = new RegExp(`^${prefix.replace(/[-]/g, '\\-')}([0-9]+)$`)
  let max = 0
  let width = 0
  for (const n of existing) {
    const m = re.exec(n)
    if (!m) continue
    const v = Number(m[1])
    if (v > max) max = v
    if (m[1]!.length > 1 && m[1]!.startsWith('0')) width = Math.max(width, m[1]!.length)
  }
  const out: string[] = []
  for (let i = max + 1; i <= max + count; i++) out.push(prefix + String(i).padStart(width, '0'))
  return out
}

/**
 * Short human list: `node1, node2, node3` or `node1..node300 (300 hosts)` for a contiguous run, or
 * `node1, node4, node9 and 12 more`.
 */
export function summarizeNames(names: readonly string[], max = 5): string {
  if (names.length <= max) return names.join(', ')
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`
}

/**
 * Matches existing names against patterns for `rm`, `stop`, ...: ranges expand, and `*`/`?` glob
 * over the existing names. Returns the matched names in input order.
 */
export function matchNames(patterns: readonly string[], existing: readonly string[]): {matched: string[]; missing: string[]} {
  const matched: string[] = []
  const missing: string[] = []
  const have = new Set(existing)
  const seen = new Set<string>()
  const add = (n: string) => {
    if (!seen.has(n)) {
      seen.add(n)
      matched.push(n)
    }
  }
  for (const p of patterns) {
    // Ranges expand first (a stray '[' or ']' is a usage error), so 'node[1:3]*' is three globs.
    const expanded = expandPattern(p)
    if (/[*?]/.test(p)) {
      const hits = new Set<string>()
      for (const g of expanded) {
        if (!GLOB.test(g))
          throw usageError(
            `'${p}' is not a valid name pattern: a glob has lower-case letters, digits, '-', '*' and '?'`,
            'E_PATTERN_INVALID',
            "quote it so that the shell passes it as is, e.g. 'node*'",
          )
        const re = new RegExp('^' + g.replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
        for (const n of existing) if (re.test(n)) hits.add(n)
      }
      if (hits.size === 0) missing.push(p)
      existing.filter((n) => hits.has(n)).forEach(add)
      continue
    }
    for (const n of expanded) {
      const problem = labelProblem(n)
      if (problem) throw usageError(problem, 'E_NAME_INVALID')
      ;(have.has(n) ? add : (x: string) => missing.push(x))(n)
    }
  }
  return {matched, missing}
}
