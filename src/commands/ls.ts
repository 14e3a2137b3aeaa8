import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {listHosts, parseFilters, type HostView} from '../services/list-hosts.js'
import {renderTable} from '../ui/table.js'
import {dockerColumn, parseLsFormat, renderLsFormat} from '../ui/ls-format.js'
import {storeCertWarnings} from '../services/cert-warnings.js'

export default class Ls extends BaseCommand<typeof Ls> {
  static override summary = 'List hosts with their live state'
  static override description = `STATE is asked of each driver (Running, Stopped, Missing, ...) for created hosts, with one list call per cluster for cloud drivers; a state that cannot be read within --timeout shows Unknown with the reason; hosts that were never created show their last phase (Reserved, Creating, Error). DOCKER is the engine version of each running host, one Engine API call per host (16 at once) within the same --timeout; Unknown with the reason when it could not be read. Unreadable records are listed with the file to repair.

--format takes docker-machine's placeholders: {{.Name}} {{.Active}} {{.ActiveHost}} {{.DriverName}} {{.State}} {{.URL}} {{.Swarm}} {{.DockerVersion}} {{.Error}} {{.ResponseTime}}, and Belt's {{.Cluster}} {{.Address}}; \\t and \\n are a tab and a newline; a leading "table" aligns columns under headers. Filters of different keys all apply; several of one key match any of them.`
  static override examples = [
    '<%= config.bin %> ls',
    '<%= config.bin %> ls --filter driver=local --filter state=running',
    '<%= config.bin %> ls --filter label=tier=web',
    "<%= config.bin %> ls --format '{{.Name}}: {{.DockerVersion}}'",
    "<%= config.bin %> ls --format 'table {{.Name}}\\t{{.Active}}\\t{{.URL}}'",
    '<%= config.bin %> ls -q',
    '<%= config.bin %> ls --json',
  ]
  static override enableJsonFlag = true
  static override flags = {
    filter: Flags.string({description: 'keep hosts matching KEY=VALUE (driver, state, name glob, cluster, swarm role, label=KEY[=VALUE]); repeatable', multiple: true, default: []}),
    format: Flags.string({char: 'f', description: 'print each host through a Go-template-like format, e.g. {{.Name}} {{.URL}} (see the description)', exclusive: ['quiet']}),
    quiet: Flags.boolean({char: 'q', description: 'print host names only'}),
    timeout: Flags.integer({char: 't', description: 'seconds the whole listing may take; a host whose state is not read by then shows Unknown with the reason', default: 20, min: 1}),
  }

  async run(): Promise<HostView[]> {
    const filters = parseFilters(this.flags.filter)
    const format = this.flags.format === undefined ? undefined : parseLsFormat(this.flags.format)
    // The DOCKER column costs one Engine API call per running host: only when it is shown.
    const versions = format ? format.fields.has('DockerVersion') || format.fields.has('ResponseTime') : !this.flags.quiet
    const store = this.openStore()
    const {hosts, corrupt} = await listHosts(store, {timeoutMs: this.flags.timeout * 1000, engineVersions: versions})
    const shown = hosts.filter((h) => filters.every((f) => f(h)))
    for (const c of corrupt) this.note(`Warning: ${c.problem}`)
    for (const w of await storeCertWarnings(store)) this.note(`Warning: ${w}`)
    if (this.jsonEnabled()) return shown
    if (format) {
      process.stdout.write(renderLsFormat(format, shown))
      return shown
    }
    if (this.flags.quiet) {
      process.stdout.write(shown.map((h) => h.name + '\n').join(''))
      return shown
    }
    const rows = shown.map((h) => [h.name, h.driver, h.state, h.url ?? (h.address ? `ssh://${h.address}` : ''), h.swarm ?? '', dockerColumn(h), h.errors.join('; ')])
    for (const c of corrupt) rows.push([c.name, '', 'Corrupt', '', '', '', c.file])
    process.stdout.write(renderTable(['NAME', 'DRIVER', 'STATE', 'URL', 'SWARM', 'DOCKER', 'ERRORS'], rows))
    return shown
  }
}
