import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {certPaths} from '../pki/paths.js'
import {refuseMovedHosts} from '../services/driver-context.js'
import {SHELLS, detectShell, engineVariables, ensureDockerContext, renderEnv, type Shell} from '../services/engine-env.js'

export default class Env extends BaseCommand<typeof Env> {
  static override summary = "Print the commands that point the docker CLI at a host's engine"
  static override description =
    'Sets DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH (the store\'s client certificate) and DOCKER_MACHINE_NAME. With --context, creates or updates a docker context named after the host instead.'
  static override examples = [
    'eval "$(<%= config.bin %> env node2)" && docker info',
    '<%= config.bin %> env --shell fish node2 | source',
    'eval "$(<%= config.bin %> env --unset)"',
    '<%= config.bin %> env --context node2 && docker --context node2 info',
  ]
  static override enableJsonFlag = true
  static override args = {name: Args.string({description: 'host name (not needed with --unset)'})}
  static override flags = {
    shell: Flags.string({description: 'shell syntax [default: from $SHELL]', options: [...SHELLS]}),
    unset: Flags.boolean({char: 'u', description: 'print the commands that clear the variables'}),
    context: Flags.boolean({description: 'create or update a docker context for the host instead of printing variables'}),
  }

  async run(): Promise<Record<string, string>> {
    const shell = (this.flags.shell as Shell | undefined) ?? detectShell()
    const command = `belt env${this.flags.shell ? ` --shell ${shell}` : ''}${this.flags.unset ? ' --unset' : ''}${this.args.name ? ` ${this.args.name}` : ''}`
    if (this.flags.unset) {
      const vars: [string, string][] = ['DOCKER_TLS_VERIFY', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_MACHINE_NAME'].map((k) => [k, ''])
      if (!this.jsonEnabled()) process.stdout.write(renderEnv(shell, vars, {unset: true, command}))
      return {}
    }
    if (!this.args.name) this.error('name the host, e.g. belt env node1', {exit: 2})
    const store = this.openStore()
    const record = await store.get(this.args.name)
    refuseMovedHosts([record])
    if (this.flags.context) {
      const name = await ensureDockerContext(store, record)
      this.note(`docker context ${name} points at ${record.engine!.url}; use it with: docker --context ${name} info`)
      return {context: name}
    }
    const vars = engineVariables(record, certPaths(store).dir)
    if (!this.jsonEnabled()) process.stdout.write(renderEnv(shell, vars, {unset: false, command}))
    return Object.fromEntries(vars)
  }
}
