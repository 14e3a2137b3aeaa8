import {notFoundError, usageError} from '../errors.js'
import {matchNames, summarizeNames} from '../names.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {DriverLookup} from '../../drivers/registry.js'
import {refuseMovedHosts} from './driver-context.js'

/**
 * The records named by patterns (`node[1:3]`, `node*`, plain names). Every pattern must match:
 * a name that does not exist is a not-found error (exit 3) before anything changes, and so is (exit 2)
 * a flag or environment variable that would send Belt to another endpoint than a host's record.
 */
export async function selectHosts(store: Store, patterns: readonly string[], opts: {env?: NodeJS.ProcessEnv; drivers?: DriverLookup} = {}): Promise<HostRecord[]> {
  if (patterns.length === 0) throw usageError('no host named', 'E_NO_NAMES', 'name one or more hosts, e.g. node1 or node[1:5]')
  const {records, corrupt} = await store.list()
  const byName = new Map(records.map((r) => [r.name, r]))
  const {matched, missing} = matchNames(patterns, [...records.map((r) => r.name), ...corrupt.map((c) => c.name)])
  if (missing.length > 0)
    throw notFoundError(
      `no host named ${summarizeNames(missing)} in ${store.dir}`,
      'E_HOST_NOT_FOUND',
      'run `belt ls` to see the hosts',
    )
  const bad = corrupt.filter((c) => matched.includes(c.name))
  if (bad.length > 0) await store.get(bad[0]!.name) // throws the corrupt-record error naming the file
  const selected = matched.map((n) => byName.get(n)!)
  refuseMovedHosts(selected, opts)
  return selected
}
