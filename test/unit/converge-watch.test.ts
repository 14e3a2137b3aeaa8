import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {ClusterFileError} from '../../src/services/cluster-file.js'
import {watchCluster, type ApplyResult} from '../../src/services/converge.js'
import {Store} from '../../src/store/store.js'
import {silentReporter} from '../../src/ui/reporter.js'

describe('watchCluster', () => {
  it('reads the file again every round, reports a round that fails and goes on, and stops when the signal aborts', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'belt-watch-'))
    try {
      const ac = new AbortController()
      const rounds: (ApplyResult | Error)[] = []
      let loads = 0
      await watchCluster({
        store: new Store(path.join(dir, 'store')),
        spec: undefined as never,
        replaceAfterMs: 0,
        maxUnavailable: 1,
        reporter: silentReporter,
        command: 'belt apply -f c.yaml --watch',
        signal: ac.signal,
        intervalMs: 5,
        // An edited file that became invalid: each round says so, none touches anything.
        load: async () => {
          loads++
          throw new ClusterFileError([`c.yaml:3:1: groups: required (read ${loads})`])
        },
        onRound: (r) => {
          rounds.push(r)
          if (rounds.length === 3) ac.abort()
        },
      })
      expect(loads).toBe(3)
      expect(rounds.map((r) => (r instanceof Error ? r.message : 'ok'))).toEqual(['c.yaml:3:1: groups: required (read 1)', 'c.yaml:3:1: groups: required (read 2)', 'c.yaml:3:1: groups: required (read 3)'])
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('an interval sleep ends at once when the signal aborts', async () => {
    const ac = new AbortController()
    let rounds = 0
    const done = watchCluster({
      store: new Store('/nonexistent-belt-store'),
      spec: undefined as never,
      replaceAfterMs: 0,
      maxUnavailable: 1,
      reporter: silentReporter,
      command: 'belt apply --watch',
      signal: ac.signal,
      intervalMs: 3_600_000,
      load: async () => {
        throw new Error('invalid')
      },
      onRound: () => {
        rounds++
        queueMicrotask(() => ac.abort())
      },
    })
    await done
    expect(rounds).toBe(1)
  })
})
