import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {envCommand} from '../fast-path.js'
import {refuseMovedHosts} from '../services/driver-context.js'
import {SHELLS, ensureDockerContext, type Shell} from '../services/engine-env.js'

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
    'no-proxy': Flags.boolean({description: "also add the host's address to NO_PROXY (docker-machine's --no-proxy)", exclusive: ['context']}),
  }

  async run(): Promise<Record<string, string>> {
    const opts = {json: this.jsonEnabled(), shell: this.flags.shell as Shell | undefined, unset: this.flags.unset, name: this.args.name, noProxy: this.flags['no-proxy']}
    if (!opts.unset && !opts.name) this.error('name the host, e.g. belt env node1', {exit: 2})
    // Without --context: the same function as the start-up fast path's (bin/run.js), which runs the plain forms without oclif.
    if (!this.flags.context || opts.unset) return envCommand(this.openStore(), opts)
    const store = this.openStore()
    const record = await store.get(opts.name!)
    refuseMovedHosts([record])
    const name = await ensureDockerContext(store, record)
    this.note(`docker context ${name} points at ${record.engine!.url}; use it with: docker --context ${name} info`)
    return {context: name}
  }
}
