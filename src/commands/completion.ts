import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {fishCompletion, type CompletableCommand} from '../ui/fish-completion.js'

export default class Completion extends BaseCommand<typeof Completion> {
  static override summary = 'Print a shell completion script (fish); bash and zsh: belt autocomplete'
  static override description =
    'Completion for bash, zsh and PowerShell comes from the oclif plugin kept with Belt: `belt autocomplete bash` (or zsh) prints how to install it. fish, which that plugin lacks, has this command: its script completes commands, topics, flags with their choices, and host names.'
  static override examples = ['<%= config.bin %> completion fish > ~/.config/fish/completions/belt.fish', '<%= config.bin %> autocomplete bash']
  static override args = {shell: Args.string({description: 'shell', required: true, options: ['fish']})}

  async run(): Promise<void> {
    const commands = this.config.commands as unknown as CompletableCommand[]
    process.stdout.write(fishCompletion(this.config.bin, commands))
  }
}
