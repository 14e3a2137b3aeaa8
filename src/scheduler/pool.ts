import pLimit from 'p-limit'
import {InterruptedError} from './interrupt.js'

/** The outcome of one item: a batch never hides a failed item. */
export type Settled<T, R> = {item: T; ok: true; value: R} | {item: T; ok: false; error: unknown}

export interface PoolOptions {
  /** At most this many `fn` calls run at once (>= 1). */
  concurrency: number
  /** When aborted, items not yet started fail with the abort reason; running ones are left to `fn`. */
  signal?: AbortSignal
}

/** Runs `fn` in a slot of a window; see {@link window}. */
export type Window = <R>(fn: () => Promise<R>) => Promise<R>

/** The reason to give work that was never started because `signal` aborted. */
const abortReason = (signal: AbortSignal): unknown => signal.reason ?? new InterruptedError()

/**
 * A sliding window of `concurrency` slots shared by every call made through it: a call starts as
 * soon as a slot is free (no lock-step waves). Once `signal` aborts (the first Ctrl-C), a call that
 * gets a slot rejects with the abort reason instead of starting, and calls already running are
 * left to finish, so that whatever they create is recorded. Every fan-out in Belt (create,
 * bootstrap, join, state, remove) goes through one of these or {@link mapSettled}.
 */
export function window(concurrency: number, signal?: AbortSignal): Window {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${concurrency}`)
  const limit = pLimit(concurrency)
  return <R>(fn: () => Promise<R>) =>
    limit(async () => {
      if (signal?.aborted) throw abortReason(signal)
      return fn()
    })
}

/**
 * Runs `fn` over `items` through a {@link window} of `concurrency` slots and settles every item:
 * `stopOnError: false` semantics, so a failure never hides the other results. Results keep the
 * order of `items`. After `signal` aborts, items not yet started settle as failed with the abort
 * reason (see `isInterruption`).
 */
export async function mapSettled<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R>,
  opts: PoolOptions,
): Promise<Settled<T, R>[]> {
  const run = window(opts.concurrency, opts.signal)
  return Promise.all(
    items.map((item, i) =>
      run(() => fn(item, i)).then(
        (value): Settled<T, R> => ({item, ok: true, value}),
        (error): Settled<T, R> => ({item, ok: false, error}),
      ),
    ),
  )
}
