/** The emulator's rate-limit model, on a fake clock. */
import {describe, expect, it} from 'vitest'
import {EndpointLimiter, SlidingWindowLimiter, parseRateLimit} from '../../drivers/digitalocean/emulator/limiter.js'

describe('parseRateLimit', () => {
  it.each([
    ['5000/h,250/min', {perHour: 5000, perMinute: 250}],
    ['5000/h', {perHour: 5000, perMinute: 250}],
    ['250/min', {perHour: 5000, perMinute: 250}],
    ['100/h, 10/m', {perHour: 100, perMinute: 10}],
    ['2/s', {perHour: 2400, perMinute: 120}],
  ])('%s', (text, want) => expect(parseRateLimit(text)).toEqual(want))

  it.each(['', 'fast', '0/h', '10/day'])('rejects %j', (text) => expect(typeof parseRateLimit(text)).toBe('string'))
})

describe('SlidingWindowLimiter', () => {
  it('refuses past the burst limit with retry-after until the oldest request is a minute old; refusals do not count', () => {
    let t = 1_000_000
    const l = new SlidingWindowLimiter({perHour: 100, perMinute: 3}, () => t)
    expect([l.take('a'), l.take('a'), l.take('a')].map((v) => v.remaining)).toEqual([99, 98, 97])
    t += 20_000
    expect(l.take('a')).toEqual({ok: false, limit: 100, remaining: 0, reset: Math.ceil((1_000_000 + 3_600_000) / 1000), retryAfter: 40})
    expect(l.take('b').ok).toBe(true)
    t += 40_000
    expect(l.take('a')).toMatchObject({ok: true, remaining: 96})
  })

  it('refuses past the hourly limit until the oldest request is an hour old; reset names that second', () => {
    let t = 0
    const l = new SlidingWindowLimiter({perHour: 2, perMinute: 100}, () => t)
    l.take('a')
    t = 10_000
    l.take('a')
    expect(l.take('a')).toEqual({ok: false, limit: 2, remaining: 0, reset: 3600})
    t = 3_600_001
    expect(l.take('a')).toEqual({ok: true, limit: 2, remaining: 0, reset: 3610})
  })

  it('peek reports without counting', () => {
    const l = new SlidingWindowLimiter({perHour: 5, perMinute: 5}, () => 5000)
    expect(l.peek('a')).toEqual({ok: true, limit: 5, remaining: 5, reset: 5})
    l.take('a')
    expect(l.peek('a').remaining).toBe(4)
  })
})

describe('EndpointLimiter', () => {
  it('allows 10 SSH key listings per 60 s', () => {
    let t = 0
    const l = new EndpointLimiter(10, 60_000, () => t)
    for (let i = 0; i < 10; i++) expect(l.take('a')).toBe(0)
    t = 30_000
    expect(l.take('a')).toBe(30)
    t = 60_001
    expect(l.take('a')).toBe(0)
  })
})
