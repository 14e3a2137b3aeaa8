import {describe, expect, it} from 'vitest'
import {phaseTitle, SLOW_MS, type PhaseCounts} from '../../src/ui/live.js'

const counts = (o: Partial<PhaseCounts> & {running?: [string, number][]} = {}): PhaseCounts => ({
  running: new Map(o.running ?? []),
  done: o.done ?? 0,
  failed: o.failed ?? [],
  total: o.total,
  interrupted: o.interrupted,
})

describe('phaseTitle: one line per phase, readable at 300 hosts', () => {
  const now = 1_000_000
  it.each([
    ['create', counts({done: 37, total: 100}), 'Create     37/100 done'],
    ['bootstrap', counts({done: 3, running: [['n4', now - 1000], ['n5', now - 2000]]}), 'Bootstrap  3 done · 2 running'],
    ['join', counts({done: 1, failed: ['n7', 'n9', 'n11', 'n12']}), 'Join swarm 1 done · 4 failed (n7, n9, n11 and 1 more)'],
    ['bootstrap', counts({done: 0, total: 5, interrupted: 5}), 'Bootstrap  0/5 done · 5 interrupted'],
  ] as const)('%s', (phase, c, want) => expect(phaseTitle(phase, c, now)).toBe(want))

  it('names at most the three slowest hosts past the threshold, slowest first', () => {
    const running: [string, number][] = [
      ['fast', now - 1000],
      ['a', now - SLOW_MS - 5000],
      ['b', now - SLOW_MS - 50_000],
      ['c', now - SLOW_MS],
      ['d', now - SLOW_MS - 20_000],
    ]
    expect(phaseTitle('bootstrap', counts({running}), now)).toBe('Bootstrap  0 done · 5 running · slow: b 80 s, d 50 s, a 35 s')
  })
})
