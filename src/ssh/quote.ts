/**
 * The only place where strings meet a remote shell. Every value that reaches a command line goes
 * through {@link shQuote}; commands are otherwise built from constants by pure functions.
 */

/** Quotes one word for a POSIX shell: `it's` -> `'it'\''s'`. Safe for any byte string without NUL. */
export function shQuote(word: string): string {
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte')
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}

/** Quotes every word and joins them: an argv that the remote shell sees exactly as given. */
export function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(' ')
}
