import pLimit from 'p-limit'

/** The outcome of one item: a batch never hides a failed item. */
export type Settled<T, R> = {item: T; ok: true; value: R} | {item: T; ok: false; error: unknown}

export interface PoolOptions {
  /** At most this many `fn` calls run at once (>= 1). */
  concurrency: number
  /** When aborted, items not yet started fail with the abort reason; running ones are left to `fn`. */
  signal?: AbortSignal
}

/**
 * Runs `fn` over `items` through a sliding window of `concurrency` slots (a new item starts as soon
 * as any finishes: no lock-step waves) and settles every item: `stopOnError: false` semantics, so a
 * failure never hides the other results. Results keep the order of `items`.
 */
export async function mapSettled<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R>,
  opts: PoolOptions,
): Promise<Settled<T, R>[]> {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${opts.concurrency}`)
  const limit = pLimit(opts.concurrency)
  return Promise.all(
    items.map((item, i) =>
      limit(async (): Promise<Settled<T, R>> => {
        if (opts.signal?.aborted) return {item, ok: false, error: opts.signal.reason ?? new Error('aborted')}
        try {
          return {item, ok: true, value: await fn(item, i)}
        } catch (error) {
          return {item, ok: false, error}
        }
      }),
    ),
  )
}
