/** A sleep that can be cut short: injected into drivers so tests and rehearsals control time. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export const sleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'))
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason ?? new Error('aborted'))
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
