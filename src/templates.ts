import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'

/** The package root (the directory holding package.json), from src/ or dist/src/ alike. */
export function packageRoot(): string {
  let dir = import.meta.dirname
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`package.json not found above ${import.meta.dirname}`)
    dir = up
  }
  return dir
}

/**
 * Reads `templates/<name>` and replaces every `{{KEY}}` with `values[KEY]`. A placeholder without a
 * value, or a value without a placeholder, is a bug and throws: a template never ships half-filled.
 */
export function renderTemplate(name: string, values: Readonly<Record<string, string>>): string {
  const text = readFileSync(path.join(packageRoot(), 'templates', name), 'utf8')
  return fillTemplate(name, text, values)
}

/** The pure part of {@link renderTemplate}. */
export function fillTemplate(name: string, text: string, values: Readonly<Record<string, string>>): string {
  const used = new Set<string>()
  const out = text.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    const v = values[key]
    if (v === undefined) throw new Error(`template ${name}: no value for {{${key}}}`)
    used.add(key)
    return v
  })
  for (const k of Object.keys(values)) if (!used.has(k)) throw new Error(`template ${name}: {{${k}}} is not in the template`)
  return out
}
