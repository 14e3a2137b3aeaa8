import {Command, Flags, Interfaces, Errors} from '@oclif/core'
import {ExitCode, InterruptedBatch, PartialFailure, UserError, bugOutput, oneLine, userErrorOutput} from './errors.js'
import {Interrupt, isInterruption} from './scheduler/interrupt.js'
import {Store, defaultStoreDir} from './store/store.js'
import {checkClusterName} from './names.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every belt command: shared flags, the composition root (the store), and the one place where
 * errors become output and exit codes (README: "Exit codes").
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    store: Flags.string({
      description: 'directory of the host inventory, certificates and keys [default: ~/.belt] (docker-machine\'s --storage-path and MACHINE_STORAGE_PATH are accepted too)',
      env: 'BELT_STORE',
      aliases: ['storage-path'],
      // docker-machine's variable, below BELT_STORE: a Machine user's scripts keep working.
      default: async () => process.env.MACHINE_STORAGE_PATH || undefined,
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  /** All positional arguments, for variadic commands (`strict = false`). */
  protected positional: string[] = []

  override async init(): Promise<void> {
    await super.init()
    const {args, flags, argv} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    this.positional = argv as string[]
    // Every --cluster / BELT_CLUSTER is a DNS label: it names a directory of the store (keys/<cluster>).
    const cluster = (flags as {cluster?: unknown}).cluster
    if (typeof cluster === 'string') checkClusterName(cluster)
  }

  private interruptHandle?: Interrupt

  /**
   * The run's cancellation signal, for commands that fan out over hosts. The first call takes over
   * SIGINT and SIGTERM: the first one aborts this signal (every window starts nothing new, work in
   * flight returns and is recorded), a second one exits at once with 130. Commands that never ask
   * keep Node's default (Ctrl-C ends them at once).
   */
  protected interruptSignal(): AbortSignal {
    this.interruptHandle ??= new Interrupt().install({
      onFirst: () => {
        process.stderr.write('\nInterrupted: starting nothing new; waiting for requests in flight so that every resource is recorded. Press Ctrl-C again to exit now.\n')
        // A safety net: should some wait never settle after the interrupt (nothing left to run but
        // the command not finished), exit 130 as promised instead of Node's 13 for a stuck await.
        process.once('beforeExit', () => {
          if (this.ended) return
          process.stderr.write('Interrupted: every resource id known so far is in the journal. Run the same command again to finish.\n')
          process.exit(ExitCode.interrupted)
        })
      },
      onSecond: () => {
        process.stderr.write('Exiting now; every resource id known so far is in the journal. Run the same command again to finish.\n')
        process.exit(ExitCode.interrupted)
      },
    })
    return this.interruptHandle.signal
  }

  /** True when the run was interrupted (first Ctrl-C or SIGTERM). */
  protected get interrupted(): boolean {
    return this.interruptHandle?.interrupted ?? false
  }

  private ended = false

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.ended = true
    this.interruptHandle?.dispose()
    return super.finally(err)
  }

  /** The store named by --store / BELT_STORE / ~/.belt. */
  protected openStore(): Store {
    return new Store(this.flags.store ?? defaultStoreDir())
  }

  /** Progress and warnings for humans go to stderr; stdout is for data. */
  protected note(message: string): void {
    process.stderr.write(message + '\n')
  }

  override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<void> {
    const json = this.jsonEnabled()
    let code: number
    let line: string
    let body: Record<string, unknown>
    if (err instanceof UserError) {
      ;({code, line, body} = userErrorOutput(err))
    } else if (err instanceof InterruptedBatch) {
      // The command already rendered what exists and in which phase.
      code = err.exit
      line = `Interrupted: ${err.message}` + (err.resumeCommand ? `\nRun the same command to finish the batch: ${err.resumeCommand}` : '')
      body = {code: 'E_INTERRUPTED', message: err.message, result: err.result, resume: err.resumeCommand}
    } else if (isInterruption(err)) {
      // Ctrl-C while no batch was under way to report on (preflight, shared setup): nothing is half-done.
      code = ExitCode.interrupted
      line = 'Interrupted before any host was touched; every resource created so far is recorded. Run the same command again to go on.'
      body = {code: 'E_INTERRUPTED', message: 'interrupted'}
    } else if (err instanceof PartialFailure) {
      // The command already rendered the per-host results; only the closing line is left.
      code = err.exit
      line = `Error: ${err.message}` + (err.retryCommand ? `\nRetry only those with: ${err.retryCommand}` : '')
      body = {code: 'E_PARTIAL', message: err.message, result: err.result, retry: err.retryCommand}
    } else if (err instanceof Errors.ExitError) {
      process.exitCode = err.oclif.exit
      return
    } else if (err instanceof Errors.CLIError && !(err as {skipOclifErrorHandling?: boolean}).skipOclifErrorHandling) {
      // Parsing errors (unknown flag, missing argument, bad option value): usage, no stack.
      code = err.oclif?.exit === undefined || err.oclif.exit === 1 ? ExitCode.usage : err.oclif.exit
      line = `Error: ${oneLine(err)} (see: belt ${(this.id ?? '').replaceAll(':', ' ')} --help)`
      body = {code: 'E_USAGE', message: oneLine(err)}
    } else if ((err as {name?: string}).name === 'ExitPromptError' || (err as {name?: string}).name === 'AbortPromptError') {
      code = ExitCode.interrupted
      line = 'Interrupted.'
      body = {code: 'E_INTERRUPTED', message: 'interrupted'}
    } else if (this.interrupted) {
      // After Ctrl-C, a request or wait cut off mid-way may surface as another library's error
      // (an SDK's abort): a consequence of the interruption, not a bug, and nothing is lost.
      code = ExitCode.interrupted
      line = `Interrupted (${oneLine(err)}); every resource id known so far is in the journal. Run the same command again to go on.`
      body = {code: 'E_INTERRUPTED', message: 'interrupted'}
    } else {
      ;({code, line, body} = bugOutput(err))
    }
    process.exitCode = code
    if (json) process.stdout.write(JSON.stringify({error: body}, null, 2) + '\n')
    process.stderr.write(line + '\n')
  }
}

/** True when a human can answer a prompt: stdin and stderr are terminals and CI is not set. */
export function canPrompt(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI.toLowerCase() !== 'false'
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !ci
}
