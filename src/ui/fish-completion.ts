/** What the fish completion needs of a command (oclif's manifest entry, reduced). */
export interface CompletableCommand {
  /** `ls`, `swarm:init` */
  id: string
  summary?: string
  hidden?: boolean
  flags: Record<string, {name: string; char?: string; type: 'boolean' | 'option'; options?: readonly string[]; summary?: string; description?: string; hidden?: boolean}>
  args: Record<string, {name: string}>
}

/** A word in fish's single quotes: only \ and ' are special there. */
const q = (s: string) => `'${s.replace(/[\\']/g, '\\$&')}'`
/** First line of a description, short enough for fish's pager. */
const short = (s: string | undefined) => {
  const line = (s ?? '').split('\n')[0]!.trim()
  return line.length > 80 ? line.slice(0, 77) + '...' : line
}

/**
 * A fish completion script for the CLI: subcommands and topics (`belt swarm init`), each command's
 * flags (with their choices), and host names (from `belt ls -q`) for commands whose arguments are
 * hosts. The oclif plugin covers bash, zsh and PowerShell; fish has this.
 */
export function fishCompletion(bin: string, commands: readonly CompletableCommand[]): string {
  const visible = commands.filter((c) => !c.hidden).sort((a, b) => a.id.localeCompare(b.id))
  const path = (c: CompletableCommand) => c.id.split(':')
  const topics = new Set(visible.flatMap((c) => path(c).slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join(':'))))
  const firstWords = [...new Set(visible.map((c) => path(c)[0]!))]
  const lines = [
    `# ${bin} completion for fish, made by \`${bin} completion fish\`. Install: ${bin} completion fish > ~/.config/fish/completions/${bin}.fish`,
    `complete -c ${bin} -f`,
    // The words typed after `belt`, flags left out: the command path so far.
    `function __${bin}_words; set -l w (commandline -opc); set -e w[1]; for x in $w; string match -qr -- '^-' $x; or echo $x; end; end`,
    `function __${bin}_path_is; set -l w (__${bin}_words); test (count $w) -eq (count $argv); and test "$w" = "$argv"; end`,
    `function __${bin}_path_starts; set -l w (__${bin}_words); test (count $w) -ge (count $argv); and test "$w[1..(count $argv)]" = "$argv"; end`,
  ]
  const desc = (id: string) => {
    const c = visible.find((x) => x.id === id)
    return c ? short(c.summary) : `${id.split(':').join(' ')} commands`
  }
  for (const w of firstWords) lines.push(`complete -c ${bin} -n '__${bin}_path_is' -a ${q(w)} -d ${q(desc(w))}`)
  for (const t of [...topics].sort()) {
    const below = [...new Set(visible.filter((c) => c.id.startsWith(t + ':')).map((c) => c.id.slice(t.length + 1).split(':')[0]!))]
    const at = t.split(':').join(' ')
    for (const w of below) lines.push(`complete -c ${bin} -n ${q(`__${bin}_path_is ${at}`)} -a ${q(w)} -d ${q(desc(`${t}:${w}`))}`)
  }
  for (const c of visible) {
    const at = path(c).join(' ')
    const cond = q(`__${bin}_path_starts ${at}`)
    for (const f of Object.values(c.flags)) {
      if (f.hidden) continue
      const parts = [`complete -c ${bin} -n ${cond} -l ${f.name}`]
      if (f.char) parts.push(`-s ${f.char}`)
      if (f.type === 'option') parts.push(f.options?.length ? `-x -a ${q(f.options.join(' '))}` : '-r')
      parts.push(`-d ${q(short(f.summary ?? f.description))}`)
      lines.push(parts.join(' '))
    }
    if (Object.keys(c.args).some((a) => /^names?$/.test(a))) lines.push(`complete -c ${bin} -n ${q(`__${bin}_path_starts ${at}`)} -a ${q(`(${bin} ls -q 2>/dev/null)`)}`)
  }
  return lines.join('\n') + '\n'
}
