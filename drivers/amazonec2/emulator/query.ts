/**
 * The EC2 Query protocol's request side: form fields such as `Filter.1.Value.2=x` decoded into
 * nested objects, and typed readers that answer with EC2's own error codes.
 */

/** An EC2 API error: code, message and the HTTP status EC2 uses for it. */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message)
    this.name = 'Ec2Error'
  }
}

export interface Params {
  [key: string]: string | Params
}

/** `a.b.1.c=v` pairs -> `{a: {b: {1: {c: v}}}}`. A later field of the same name wins. */
export function decodeParams(pairs: Iterable<[string, string]>): Params {
  const root: Params = {}
  for (const [key, value] of pairs) {
    const parts = key.split('.')
    let node = root
    for (let i = 0; i < parts.length - 1; i++) {
      const k = parts[i]!
      const next = node[k]
      if (typeof next === 'object') node = next
      else {
        const created: Params = {}
        node[k] = created
        node = created
      }
    }
    const last = parts.at(-1)!
    if (typeof node[last] !== 'object') node[last] = value
  }
  return root
}

export function str(p: Params | undefined, key: string): string | undefined {
  const v = p?.[key]
  return typeof v === 'string' ? v : undefined
}

export function required(p: Params, key: string): string {
  const v = str(p, key)
  if (v === undefined || v === '') throw new Ec2Error('MissingParameter', `The request must contain the parameter ${key}`)
  return v
}

export function int(p: Params | undefined, key: string): number | undefined {
  const v = str(p, key)
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new Ec2Error('InvalidParameterValue', `Value (${v}) for parameter ${key} is invalid. Expected an integer.`)
  return n
}

export function bool(p: Params | undefined, key: string): boolean | undefined {
  const v = str(p, key)
  if (v === undefined) return undefined
  if (v !== 'true' && v !== 'false') throw new Ec2Error('InvalidParameterValue', `Value (${v}) for parameter ${key} is invalid. Expected a boolean.`)
  return v === 'true'
}

export function sub(p: Params | undefined, key: string): Params | undefined {
  const v = p?.[key]
  return typeof v === 'object' ? v : undefined
}

/** The members of a list field (`Key.1`, `Key.2`, ...) in index order. */
export function list(p: Params | undefined, key: string): Array<string | Params> {
  const v = sub(p, key)
  if (!v) return []
  return Object.keys(v)
    .filter((k) => /^\d+$/.test(k))
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => v[k]!)
}

export const strList = (p: Params | undefined, key: string): string[] => list(p, key).filter((x): x is string => typeof x === 'string')
export const objList = (p: Params | undefined, key: string): Params[] => list(p, key).filter((x): x is Params => typeof x === 'object')

export interface Filter {
  readonly name: string
  readonly values: readonly string[]
}

export const filters = (p: Params): Filter[] => objList(p, 'Filter').map((f) => ({name: str(f, 'Name') ?? '', values: strList(f, 'Value')}))

/** Tags of one resource type from `TagSpecification.N`. */
export function specTags(p: Params, resourceType: string): Map<string, string> {
  const tags = new Map<string, string>()
  for (const spec of objList(p, 'TagSpecification')) {
    if (str(spec, 'ResourceType') !== resourceType) continue
    for (const t of objList(spec, 'Tag')) {
      const k = str(t, 'Key')
      if (k !== undefined) tags.set(k, str(t, 'Value') ?? '')
    }
  }
  return tags
}

/** EC2 filter values accept `*` (any run) and `?` (one character). */
export function wildcard(pattern: string, value: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === value
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 's')
  return re.test(value)
}

/**
 * Whether a resource passes every filter: `valuesOf(name)` gives the resource's values for a filter
 * name, or undefined for a filter this resource type does not know (an InvalidParameterValue, as EC2).
 */
export function passes(fs: readonly Filter[], valuesOf: (name: string) => readonly string[] | undefined, tags: ReadonlyMap<string, string>): boolean {
  return fs.every((f) => {
    let have: readonly string[] | undefined
    if (f.name.startsWith('tag:')) {
      const v = tags.get(f.name.slice(4))
      have = v === undefined ? [] : [v]
    } else if (f.name === 'tag-key') have = [...tags.keys()]
    else if (f.name === 'tag-value') have = [...tags.values()]
    else have = valuesOf(f.name)
    if (have === undefined) throw new Ec2Error('InvalidParameterValue', `The filter '${f.name}' is invalid`)
    return f.values.some((want) => have.some((h) => wildcard(want, h)))
  })
}

/** One page of `items` for MaxResults/NextToken (an opaque offset). */
export function paginate<T>(items: readonly T[], p: Params, bounds: {min: number; max: number} = {min: 5, max: 1000}, cap = Infinity): {page: T[]; nextToken?: string} {
  const max = int(p, 'MaxResults')
  const token = str(p, 'NextToken')
  let offset = 0
  if (token) {
    const m = /^o(\d+)$/.exec(Buffer.from(token, 'base64url').toString())
    if (!m) throw new Ec2Error('InvalidParameterValue', 'Unable to parse pagination token')
    offset = Number(m[1])
  }
  if (max === undefined) return {page: items.slice(offset)}
  if (max < bounds.min || max > bounds.max)
    throw new Ec2Error('InvalidParameterValue', `Value (${max}) for parameter maxResults is invalid. Expecting a value between ${bounds.min} and ${bounds.max}.`)
  const size = Math.min(max, cap)
  const page = items.slice(offset, offset + size)
  const next = offset + size
  return {page, nextToken: next < items.length ? Buffer.from(`o${next}`).toString('base64url') : undefined}
}
