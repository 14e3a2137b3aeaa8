import {describe, expect, it} from 'vitest'
import {mapSettled} from '../../src/scheduler/pool.js'

describe('mapSettled', () => {
  it('never runs more than `concurrency` at once, and fills the window (no waves)', async () => {
    let running = 0
    let peak = 0
    const started: number[] = []
    const release = new Map<number, () => void>()
    const items = Array.from({length: 12}, (_, i) => i)
    const done = mapSettled(
      items,
      (i) =>
        new Promise<number>((resolve) => {
          running++
          peak = Math.max(peak, running)
          started.push(i)
          release.set(i, () => {
            running--
            resolve(i * 2)
          })
        }),
      {concurrency: 3},
    )
    const tick = () => new Promise((r) => setImmediate(r))
    await tick()
    expect(started).toEqual([0, 1, 2])
    // Finishing one item starts exactly one more, while the other two still run.
    release.get(1)!()
    await tick()
    expect(started).toEqual([0, 1, 2, 3])
    for (let i = 0; i < 12; i++) {
      await tick()
      for (const [k, r] of release) {
        if (k !== 1) r()
        release.delete(k)
      }
    }
    const res = await done
    expect(peak).toBe(3)
    expect(res.map((r) => (r.ok ? r.value : -1))).toEqual(items.map((i) => i * 2))
  })

  it('settles every item and keeps failures with their item', async () => {
    const res = await mapSettled(
      ['a', 'b', 'c'],
      async (s) => {
        if (s === 'b') throw new Error('boom')
        return s.toUpperCase()
      },
      {concurrency: 2},
    )
    expect(res.map((r) => r.ok)).toEqual([true, false, true])
    const failed = res[1]!
    expect(failed.ok === false && (failed.error as Error).message).toBe('boom')
    expect(failed.item).toBe('b')
  })

  it('fails items not yet started when the signal aborts', async () => {
    const ac = new AbortController()
    const res = await mapSettled(
      [1, 2, 3],
      async (n) => {
        if (n === 1) ac.abort(new Error('stop'))
        return n
      },
      {concurrency: 1, signal: ac.signal},
    )
    expect(res.map((r) => r.ok)).toEqual([true, false, false])
  })

  it('refuses a concurrency below 1', async () => {
    await expect(mapSettled([1], async (n) => n, {concurrency: 0})).rejects.toThrow(/concurrency/)
  })
})
