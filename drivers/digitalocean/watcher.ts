import type {DoClient} from './client.js'
import {realSleep, type Sleep} from './rate-gate.js'
import {MAX_PER_PAGE, type DoDroplet} from './types.js'

export interface WatchOptions {
  /** Shortest pause between two list rounds (longer when the list has many pages; see the loop). */
  intervalMs: number
  /** A droplet absent from the list this long after it was created is reported gone (default 60 s). */
  missingGraceMs: number
  sleep?: Sleep
  now?: () => number
}

interface Waiter {
  id: number
  since: number
  deadline: number
  seen: boolean
  last?: DoDroplet
  signal?: AbortSignal
  resolve(d: DoDroplet): void
  reject(e: Error): void
}

/** The droplet's first public IPv4 address, if it has one yet. */
export const publicV4 = (d: DoDroplet): string | undefined => d.networks.v4.find((n) => n.type === 'public')?.ip_address
export const privateV4 = (d: DoDroplet): string | undefined => d.networks.v4.find((n) => n.type === 'private')?.ip_address

/**
 * Waits for many droplets of one tag to be active with a public IPv4, with ONE paginated list
 * request per round for all of them (`GET /v2/droplets?tag_name=...`), not one GET per droplet:
 * 300 droplets cost 2 requests a round, not 300. One watcher per client and tag in a process; its
 * loop runs only while someone waits.
 */
export class DropletWatcher {
  private readonly waiters = new Set<Waiter>()
  private running = false
  private readonly sleep: Sleep
  private readonly now: () => number
  /** List rounds done (for tests and stats). */
  rounds = 0

  constructor(
    private readonly client: DoClient,
    private readonly tag: string,
    private readonly opts: WatchOptions,
  ) {
    this.sleep = opts.sleep ?? realSleep
    this.now = opts.now ?? Date.now
  }

  /** Resolves with the droplet once it is `active` with a public IPv4; rejects after `timeoutMs`. */
  wait(id: number, timeoutMs: number, signal?: AbortSignal): Promise<DoDroplet> {
    return new Promise<DoDroplet>((resolve, reject) => {
      const t = this.now()
      this.waiters.add({id, since: t, deadline: t + timeoutMs, seen: false, signal, resolve, reject})
      if (!this.running) void this.loop()
    })
  }

  private async loop(): Promise<void> {
    this.running = true
    try {
      let pages = 1
      while (this.waiters.size > 0) {
        // A round costs one request per page of 200: rounds are spaced so that listing takes at
        // most half of the token's per-minute budget (2 pages at 250/min: ~1 s; 15 pages: ~7 s).
        await this.sleep(Math.max(this.opts.intervalMs, Math.ceil((pages * 60_000) / Math.max(1, (Number(this.client.perMinute) || 250) / 2))))
        let byId: Map<number, DoDroplet> | undefined
        let failure: unknown
        try {
          const list = await this.client.listAll<DoDroplet>('/v2/droplets', 'droplets', {tag_name: this.tag})
          byId = new Map(list.map((d) => [d.id, d]))
          pages = Math.max(1, Math.ceil(list.length / MAX_PER_PAGE))
        } catch (e) {
          failure = e
        }
        this.rounds++
        const t = this.now()
        for (const w of this.waiters) {
          const settle = (e?: Error, d?: DoDroplet) => {
            this.waiters.delete(w)
            if (e) w.reject(e)
            else w.resolve(d!)
          }
          if (w.signal?.aborted) {
            settle(w.signal.reason instanceof Error ? w.signal.reason : new Error('aborted'))
            continue
          }
          const d = byId?.get(w.id)
          if (d) {
            w.seen = true
            w.last = d
            if (d.status === 'active' && publicV4(d)) {
              settle(undefined, d)
              continue
            }
          } else if (byId && (w.seen || t - w.since > this.opts.missingGraceMs)) {
            settle(new Error(`droplet ${w.id} ${w.seen ? 'disappeared (deleted outside belt?)' : 'never appeared in the droplet list'}`))
            continue
          }
          if (t >= w.deadline) {
            const why = w.last ? `still '${w.last.status}'${publicV4(w.last) ? '' : ' without a public IPv4'}` : failure ? `listing failed: ${(failure as Error).message}` : 'not listed'
            settle(new Error(`droplet ${w.id} was not active within ${Math.round((w.deadline - w.since) / 1000)} s (${why})`))
          }
        }
      }
    } finally {
      this.running = false
    }
  }
}

const watchers = new WeakMap<DoClient, Map<string, DropletWatcher>>()

/** The process-wide watcher of `tag` for this client. */
export function watcherFor(client: DoClient, tag: string, opts: WatchOptions): DropletWatcher {
  let byTag = watchers.get(client)
  if (!byTag) watchers.set(client, (byTag = new Map()))
  let w = byTag.get(tag)
  if (!w) byTag.set(tag, (w = new DropletWatcher(client, tag, opts)))
  return w
}
