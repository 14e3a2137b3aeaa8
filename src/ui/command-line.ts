import {flagName} from '../../drivers/registry.js'
import {shQuote} from '../ssh/quote.js'

/** What Belt needs to know of a flag's declaration to write it back. */
export interface FlagShape {
  readonly type: 'boolean' | 'option'
  readonly default?: unknown
  readonly allowNo?: boolean
  readonly multiple?: boolean
}

/**
 * A command line that does again what this run did, for the "retry only those" and "finish the
 * batch" lines: every flag whose value differs from its default (values from environment variables
 * included, so the line works in another shell), never a flag in `secret` (those come from the
 * environment again) nor one in `omit`, then `args`. Pure; values are shell-quoted.
 */
export function reproduceCommand(
  command: readonly string[],
  flags: Readonly<Record<string, unknown>>,
  shapes: Readonly<Record<string, FlagShape>>,
  o: {omit?: ReadonlySet<string>; secret?: ReadonlySet<string>; args?: readonly string[]} = {},
): string {
  const out = ['belt', ...command]
  for (const [name, shape] of Object.entries(shapes)) {
    if (o.omit?.has(name) || o.secret?.has(name) || name === 'json') continue
    const v = flags[name]
    if (v === undefined || v === null) continue
    if (shape.type === 'boolean') {
      if (v === (shape.default ?? false)) continue
      if (v === true) out.push(`--${name}`)
      else if (shape.allowNo) out.push(`--no-${name}`)
      continue
    }
    const values = Array.isArray(v) ? v : [v]
    if (!Array.isArray(v) && shape.default !== undefined && String(v) === String(shape.default)) continue
    for (const x of values) out.push(`--${name}`, shQuote(String(x)))
  }
  for (const a of o.args ?? []) out.push(shQuote(a))
  return out.join(' ')
}

/** The command line for the experiment log, with the values of secret driver options masked. */
export function maskedCommandLine(id: string, argv: readonly string[], driver: string, options: readonly {name: string; secret?: boolean}[]): string {
  const secret = new Set(options.filter((o) => o.secret).map((o) => `--${flagName(driver, o.name)}`))
  const out = ['belt', ...id.split(':')]
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const eq = a.indexOf('=')
    if (eq > 0 && secret.has(a.slice(0, eq))) out.push(`${a.slice(0, eq)}=***`)
    else if (secret.has(a)) {
      out.push(a, '***')
      i++
    } else out.push(a)
  }
  return out.join(' ')
}
