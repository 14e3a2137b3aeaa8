import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {InterruptedBatch} from '../../errors.js'
import {summarizeNames} from '../../names.js'
import {DEFAULT_LOAD_CONCURRENCY, inspectArchive, loadImageArchive} from '../../services/image-load.js'
import {selectHosts} from '../../services/select-hosts.js'
import {finishBatch} from '../../ui/batch.js'
import {reproduceCommand, type FlagShape} from '../../ui/command-line.js'
import {LineReporter, seconds} from '../../ui/reporter.js'

export default class ImageLoad extends BaseCommand<typeof ImageLoad> {
  static override summary = 'Load an image archive (docker save output) into the engines of many hosts, for hosts with no registry'
  static override description =
    "The archive goes straight into each host's engine (POST /images/load over mutual TLS), streamed from disk, once per host, through a sliding window of --concurrency uploads. Every host must have an engine. The archive is checked before any upload. Exits 4 when some hosts failed, with the command that retries only those."
  static override examples = [
    "<%= config.bin %> image load belt-busybox.tar 'node*'",
    '<%= config.bin %> image load app.tar.gz node[1:50] -c 4',
  ]
  static override strict = false
  static override args = {
    archive: Args.string({description: 'an image archive: docker save output, plain or compressed (gzip, bzip2, xz, zstd)', required: true}),
    names: Args.string({description: "hosts, by name or pattern (node[1:3], 'node*')", required: false}),
  }
  static override enableJsonFlag = true
  static override flags = {
    concurrency: Flags.integer({char: 'c', description: 'uploads at once (a sliding window)', default: DEFAULT_LOAD_CONCURRENCY, min: 1}),
  }

  async run() {
    const [archivePath, ...patterns] = this.positional
    const store = this.openStore()
    const hosts = await selectHosts(store, patterns)
    const archive = await inspectArchive(archivePath!)
    const startedAt = Date.now()
    const outcomes = await loadImageArchive({
      store,
      hosts,
      archive,
      concurrency: this.flags.concurrency,
      reporter: new LineReporter(),
      signal: this.interruptSignal(),
    })
    const again = (names: string[]) =>
      reproduceCommand(['image', 'load'], this.flags, {...(this.ctor as typeof ImageLoad).baseFlags, ...ImageLoad.flags} as Record<string, FlagShape>, {
        args: [archivePath!, ...names],
      })
    const unfinished = outcomes.filter((o) => !o.ok && o.interrupted)
    if (this.interrupted && unfinished.length > 0) {
      const loaded = outcomes.filter((o) => o.ok).length
      const failed = outcomes.filter((o) => !o.ok && !o.interrupted).map((o) => o.name)
      throw new InterruptedBatch(
        `loaded on ${loaded} of ${outcomes.length} host${outcomes.length === 1 ? '' : 's'} after ${seconds(Date.now() - startedAt)}; not loaded: ${summarizeNames(unfinished.map((o) => o.name))}` +
          (failed.length ? `; failed: ${summarizeNames(failed)}` : ''),
        outcomes,
        again([...unfinished, ...outcomes.filter((o) => !o.ok && !o.interrupted)].map((o) => o.name)),
      )
    }
    const what = archive.tags.length ? archive.tags.join(', ') : archivePath!
    return finishBatch(outcomes, {verb: `loaded ${what} on`, startedAt, retry: again})
  }
}
