import {promises as fsp} from 'node:fs'
import path from 'node:path'
import {DeleteSecurityGroupCommand} from '@aws-sdk/client-ec2'
import type {DriverContext} from '../driver.js'
import type {Ec2Calls} from './calls.js'
import {awsErrorCode} from './client.js'

/*
 * Security groups left for later. EC2 keeps a group while any instance that uses it exists, and an
 * instance shutting down still exists (for a minute or more) although it is gone for Belt (see
 * STATE in index.ts). Waiting that out made `belt rm` of a whole cluster take the shutdown time
 * (27 s for 300 hosts against the emulator). Instead, a cluster group held only by instances
 * shutting down is written here (the driver's stateDir, no secret in it) and deleted by the next
 * `belt rm` with this driver, for any cluster; a `belt create` that reuses the group takes it off
 * the list first, under the cluster lock the deletion also takes, so a group is never deleted under
 * a create that has just chosen it. A group costs nothing while it waits.
 */

/** One group to delete once nothing holds it, with the client (region, endpoint, profile) that sees it. */
export interface PendingGroup {
  readonly groupId: string
  readonly cluster: string
  /** `region|endpoint|profile`, as the driver keys its clients. */
  readonly client: string
  readonly since: string
}

const FILE = 'pending-security-groups.json'
const LOCK = 'pending-security-groups'

async function read(ctx: DriverContext): Promise<PendingGroup[]> {
  try {
    const data = JSON.parse(await fsp.readFile(path.join(ctx.stateDir, FILE), 'utf8')) as unknown
    return Array.isArray(data) ? (data as PendingGroup[]).filter((g) => typeof g?.groupId === 'string' && typeof g.cluster === 'string' && typeof g.client === 'string') : []
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
}

/** Rewrites the list atomically (temp file, fsync, rename), under the list's lock. */
async function change(ctx: DriverContext, fn: (list: PendingGroup[]) => PendingGroup[]): Promise<void> {
  await ctx.withLock(LOCK, async () => {
    const before = await read(ctx)
    const after = fn(before)
    if (after.length === before.length && after.every((g, i) => g === before[i])) return
    const file = path.join(ctx.stateDir, FILE)
    const tmp = `${file}.${process.pid}.tmp`
    const fh = await fsp.open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(after, null, 2) + '\n')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fsp.rename(tmp, file)
  })
}

/** Adds a group to delete later. */
export function addPendingGroup(ctx: DriverContext, g: Omit<PendingGroup, 'since'>): Promise<void> {
  return change(ctx, (list) => [...list.filter((x) => x.groupId !== g.groupId), {...g, since: new Date().toISOString()}])
}

/** A create reuses the cluster's group: it is no longer to be deleted. Call under the cluster lock. */
export function dropPendingGroups(ctx: DriverContext, client: string, cluster: string): Promise<void> {
  return change(ctx, (list) => list.filter((x) => !(x.client === client && x.cluster === cluster)))
}

/** True when the instances using `groupId` are all shutting down (and there is at least one). */
export async function heldOnlyByTerminating(calls: Ec2Calls, groupId: string, ctx: DriverContext): Promise<boolean> {
  const held = await calls.describeInstances(
    [
      {Name: 'instance.group-id', Values: [groupId]},
      {Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down']},
    ],
    ctx.signal,
  )
  const states = held.map((i) => i.State?.Name ?? '')
  return states.length > 0 && states.every((s) => s === 'shutting-down')
}

/**
 * Deletes the pending groups of one client whose holders are gone, each under its cluster's lock
 * (`lockName`, the lock a create takes to choose the group). A group still held stays listed; one
 * EC2 no longer knows is dropped. Returns the ids deleted.
 */
export async function deletePendingGroups(calls: Ec2Calls, client: string, ctx: DriverContext, lockName: (cluster: string) => string): Promise<string[]> {
  const mine = (await read(ctx)).filter((g) => g.client === client)
  const deleted: string[] = []
  for (const g of mine) {
    await ctx.withLock(lockName(g.cluster), async () => {
      if (!(await read(ctx)).some((x) => x.groupId === g.groupId)) return // a create took it back
      try {
        await calls.call((api) => api.send(new DeleteSecurityGroupCommand({GroupId: g.groupId})), ctx.signal)
      } catch (e) {
        const code = awsErrorCode(e)
        if (code === 'DependencyViolation') return // still held: a later rm tries again
        if (code !== 'InvalidGroup.NotFound') {
          ctx.log(`could not delete security group ${g.groupId} of cluster ${g.cluster} (${(e as Error).message}); a later belt rm tries again`)
          return
        }
      }
      await ctx.journal({kind: 'security-group', id: g.groupId, action: 'deleted'})
      await change(ctx, (list) => list.filter((x) => x.groupId !== g.groupId))
      deleted.push(g.groupId)
    })
  }
  return deleted
}
