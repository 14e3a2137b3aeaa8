/**
 * Ctrl-C for a whole command, owned by the scheduler: the first SIGINT or SIGTERM aborts one shared
 * AbortSignal, so every window starts nothing new while in-flight work (a cloud create request, a
 * join) is left to return and be recorded; a second signal exits at once. The journal is written
 * (and fsynced) the moment a resource id is known, so exiting at the second signal loses nothing.
 */

/** The abort reason of an interrupted command: not a failure of any host. */
export class InterruptedError extends Error {
  constructor(readonly signalName: string = 'SIGINT') {
    super(`interrupted (${signalName})`)
    this.name = 'InterruptedError'
  }
}

/** True for the reason an interrupted signal carries, or an error caused by it. */
export function isInterruption(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 5; x = (x as {cause?: unknown}).cause, depth++) {
    if (x instanceof InterruptedError) return true
  }
  return false
}

export interface InterruptOptions {
  /** Called once, at the first signal (after the shared signal was aborted). */
  onFirst?(signalName: string): void
  /** Called at the second signal; the default exits the process with 130. */
  onSecond?(signalName: string): void
  /** Signals to take over (default SIGINT and SIGTERM). */
  signals?: readonly NodeJS.Signals[]
  /** Where handlers are installed (tests pass an EventEmitter). */
  target?: Pick<NodeJS.Process, 'on' | 'off'>
}

/**
 * One per command run. `signal` aborts at the first SIGINT/SIGTERM with an {@link InterruptedError}.
 * `dispose()` puts the default handlers back.
 */
export class Interrupt {
  private readonly controller = new AbortController()
  private count = 0
  private readonly handlers = new Map<NodeJS.Signals, () => void>()
  private target?: Pick<NodeJS.Process, 'on' | 'off'>

  get signal(): AbortSignal {
    return this.controller.signal
  }

  /** True once the first signal arrived. */
  get interrupted(): boolean {
    return this.controller.signal.aborted
  }

  /** The name of the signal that interrupted the run, if any. */
  get signalName(): string | undefined {
    const r = this.controller.signal.reason
    return r instanceof InterruptedError ? r.signalName : undefined
  }

  install(o: InterruptOptions = {}): this {
    this.target = o.target ?? process
    for (const sig of o.signals ?? (['SIGINT', 'SIGTERM'] as const)) {
      const h = () => this.receive(sig, o)
      this.handlers.set(sig, h)
      this.target.on(sig, h)
    }
    return this
  }

  /** Aborts as the first signal would (tests, and callers that stop a run for their own reason). */
  trigger(signalName = 'SIGINT'): void {
    if (!this.controller.signal.aborted) this.controller.abort(new InterruptedError(signalName))
  }

  private receive(sig: NodeJS.Signals, o: InterruptOptions): void {
    this.count++
    if (this.count === 1) {
      this.trigger(sig)
      o.onFirst?.(sig)
      return
    }
    if (o.onSecond) o.onSecond(sig)
    else process.exit(130)
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) this.target?.off(sig, h)
    this.handlers.clear()
  }
}
