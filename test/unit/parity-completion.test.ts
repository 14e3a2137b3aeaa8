import {describe, expect, it} from 'vitest'
import {fishCompletion, type CompletableCommand} from '../../src/ui/fish-completion.js'

const cmd = (id: string, o: Partial<CompletableCommand> = {}): CompletableCommand => ({id, summary: `${id} summary`, flags: {}, args: {}, ...o})

describe('fish completion', () => {
  const script = fishCompletion('belt', [
    cmd('ls', {flags: {format: {name: 'format', char: 'f', type: 'option', summary: "Go template, e.g. '{{.Name}}'"}, quiet: {name: 'quiet', char: 'q', type: 'boolean', summary: 'names only'}}}),
    cmd('rm', {args: {names: {name: 'names'}}, flags: {yes: {name: 'yes', char: 'y', type: 'boolean', description: 'no prompt\nsecond line'}}}),
    cmd('swarm:init', {flags: {'advertise-addr-type': {name: 'advertise-addr-type', type: 'option', options: ['private', 'public']}}}),
    cmd('swarm:ls'),
    cmd('secret', {hidden: true}),
  ])
  const lines = script.trimEnd().split('\n')
  it('offers top-level commands and topics only where no command was typed', () => {
    expect(lines.filter((l) => l.includes("-n '__belt_path_is' "))).toEqual([
      "complete -c belt -n '__belt_path_is' -a 'ls' -d 'ls summary'",
      "complete -c belt -n '__belt_path_is' -a 'rm' -d 'rm summary'",
      "complete -c belt -n '__belt_path_is' -a 'swarm' -d 'swarm commands'",
    ])
    expect(lines).toContain("complete -c belt -n '__belt_path_is swarm' -a 'init' -d 'swarm:init summary'")
    expect(lines).toContain("complete -c belt -n '__belt_path_is swarm' -a 'ls' -d 'swarm:ls summary'")
    expect(script).not.toContain('secret')
  })
  it("each command's flags after its path, with short names, choices and fish-quoted descriptions", () => {
    expect(lines).toContain("complete -c belt -n '__belt_path_starts ls' -l format -s f -r -d 'Go template, e.g. \\'{{.Name}}\\''")
    expect(lines).toContain("complete -c belt -n '__belt_path_starts ls' -l quiet -s q -d 'names only'")
    expect(lines).toContain("complete -c belt -n '__belt_path_starts rm' -l yes -s y -d 'no prompt'")
    expect(lines).toContain("complete -c belt -n '__belt_path_starts swarm init' -l advertise-addr-type -x -a 'private public' -d ''")
  })
  it('host names from belt ls -q for commands that take hosts', () => {
    expect(lines).toContain("complete -c belt -n '__belt_path_starts rm' -a '(belt ls -q 2>/dev/null)'")
    expect(lines.filter((l) => l.includes('ls -q'))).toHaveLength(1)
  })
})
