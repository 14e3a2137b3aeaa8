import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  ImportKeyPairCommand,
  RevokeSecurityGroupIngressCommand,
  type IpPermission,
  type KeyPairInfo,
  type SecurityGroup,
  type Tag,
} from '@aws-sdk/client-ec2'
import {ExitCode, UserError} from '../../src/errors.js'
import type {ClusterSpec, DriverContext, PortChange, PortRule, PortSpec} from '../driver.js'
import {backoff, sleep, type Ec2Calls} from './calls.js'
import {awsErrorCode} from './client.js'
import {ec2ImportedFingerprint, parseOpenSshKey, sameFingerprint, sameKey} from './keys.js'
import {heldOnlyByTerminating} from './pending-groups.js'

/** The tag every Belt resource carries; cluster-wide resources are found by it. */
export const CLUSTER_TAG = 'belt:cluster'

/** Name of the cluster's key pair and security group. */
export const sharedName = (cluster: string): string => `belt-${cluster}`

export const clusterTags = (cluster: string, name: string): Tag[] => [
  {Key: 'Name', Value: name},
  {Key: CLUSTER_TAG, Value: cluster},
]

/** One ingress rule with a single source: a CIDR or a security group. */
export interface Rule {
  readonly protocol: 'tcp' | 'udp' | '-1'
  readonly fromPort: number
  readonly toPort: number
  readonly source: {readonly cidr: string} | {readonly groupId: string}
  readonly description: string
}

/**
 * What a cluster's group must allow: the swarm ports between members of the group (a
 * self-reference, so hosts reach each other on their private addresses and nobody else does), and
 * SSH and the TLS Docker API from the admin CIDRs only.
 */
export function desiredRules(groupId: string, adminCidrs: readonly string[]): Rule[] {
  const self = {groupId}
  return [
    {protocol: 'tcp', fromPort: 2377, toPort: 2377, source: self, description: 'swarm cluster management'},
    {protocol: 'tcp', fromPort: 7946, toPort: 7946, source: self, description: 'swarm node communication'},
    {protocol: 'udp', fromPort: 7946, toPort: 7946, source: self, description: 'swarm node communication'},
    {protocol: 'udp', fromPort: 4789, toPort: 4789, source: self, description: 'swarm overlay network (VXLAN)'},
    ...adminCidrs.flatMap((cidr): Rule[] => [
      {protocol: 'tcp', fromPort: 22, toPort: 22, source: {cidr}, description: 'SSH from the admin CIDR'},
      {protocol: 'tcp', fromPort: 2376, toPort: 2376, source: {cidr}, description: 'Docker API (TLS) from the admin CIDR'},
    ]),
  ]
}

const PROTOCOLS: Record<string, Rule['protocol']> = {tcp: 'tcp', '6': 'tcp', udp: 'udp', '17': 'udp', '-1': '-1', all: '-1'}

/** Existing permissions as single-source rules; protocols other than tcp/udp/all are skipped. */
export function flattenPermissions(perms: readonly IpPermission[]): Rule[] {
  const out: Rule[] = []
  for (const p of perms) {
    const protocol = PROTOCOLS[(p.IpProtocol ?? '').toLowerCase()]
    if (!protocol) continue
    const fromPort = protocol === '-1' ? 0 : (p.FromPort ?? 0)
    const toPort = protocol === '-1' ? 65535 : (p.ToPort ?? 65535)
    for (const r of p.IpRanges ?? []) if (r.CidrIp) out.push({protocol, fromPort, toPort, source: {cidr: r.CidrIp}, description: r.Description ?? ''})
    for (const g of p.UserIdGroupPairs ?? []) if (g.GroupId) out.push({protocol, fromPort, toPort, source: {groupId: g.GroupId}, description: g.Description ?? ''})
  }
  return out
}

const sameSource = (a: Rule['source'], b: Rule['source']) =>
  'cidr' in a ? 'cidr' in b && a.cidr === b.cidr : 'groupId' in b && a.groupId === b.groupId

/** True when `existing` already allows everything `wanted` does (same source, protocol, covering ports). */
export const covers = (existing: Rule, wanted: Rule): boolean =>
  sameSource(existing.source, wanted.source) &&
  (existing.protocol === '-1' || (existing.protocol === wanted.protocol && existing.fromPort <= wanted.fromPort && existing.toPort >= wanted.toPort))

/** The desired rules no existing rule covers: the only ones Belt adds (it never edits or removes rules). */
export function missingRules(desired: readonly Rule[], existing: readonly IpPermission[]): Rule[] {
  const have = flattenPermissions(existing)
  return desired.filter((d) => !have.some((h) => covers(h, d)))
}

/** Rules as the API wants them: one IpPermission per rule. */
export const toPermissions = (rules: readonly Rule[]): IpPermission[] =>
  rules.map((r) => ({
    IpProtocol: r.protocol,
    FromPort: r.fromPort,
    ToPort: r.toPort,
    ...('cidr' in r.source ? {IpRanges: [{CidrIp: r.source.cidr, Description: r.description}]} : {UserIdGroupPairs: [{GroupId: r.source.groupId, Description: r.description}]}),
  }))

const userError = (message: string, code: string, hint?: string, cause?: unknown) => new UserError(message, {code, hint, exit: ExitCode.environment, cause})

/**
 * The cluster's key pair `belt-<cluster>`: imported once, reused when EC2 already holds the same
 * public key (compared by key, or by EC2's fingerprint when it does not return the key), refused
 * when it holds another key under that name. Call under the cluster lock.
 */
export async function ensureKeyPair(calls: Ec2Calls, cluster: ClusterSpec, ctx: DriverContext): Promise<{keyName: string; keyPairId?: string}> {
  const keyName = sharedName(cluster.name)
  const key = parseOpenSshKey(cluster.sshPublicKey)
  if (!key || (key.type !== 'ssh-ed25519' && key.type !== 'ssh-rsa'))
    throw new Error(`the cluster key of ${cluster.name} is not an ed25519 or RSA OpenSSH public key, which is all EC2 imports`)
  const find = async (): Promise<KeyPairInfo | undefined> => {
    try {
      const out = await calls.call((api) => api.send(new DescribeKeyPairsCommand({KeyNames: [keyName], IncludePublicKey: true})), ctx.signal)
      return out.KeyPairs?.[0]
    } catch (e) {
      if (awsErrorCode(e) === 'InvalidKeyPair.NotFound') return undefined
      throw e
    }
  }
  let kp = await find()
  if (!kp) {
    try {
      const out = await calls.call(
        (api) =>
          api.send(
            new ImportKeyPairCommand({
              KeyName: keyName,
              PublicKeyMaterial: Buffer.from(cluster.sshPublicKey.trim()),
              TagSpecifications: [{ResourceType: 'key-pair', Tags: clusterTags(cluster.name, keyName)}],
            }),
          ),
        ctx.signal,
      )
      await ctx.journal({kind: 'key-pair', id: out.KeyPairId ?? keyName, action: 'created'})
      ctx.log(`imported the cluster key as key pair ${keyName}`)
      return {keyName, keyPairId: out.KeyPairId}
    } catch (e) {
      // Another process (without our lock: another machine) imported it first.
      if (awsErrorCode(e) !== 'InvalidKeyPair.Duplicate') throw e
      kp = await find()
      if (!kp) throw e
    }
  }
  const same = kp.PublicKey ? sameKey(kp.PublicKey, cluster.sshPublicKey) : Boolean(kp.KeyFingerprint && sameFingerprint(kp.KeyFingerprint, ec2ImportedFingerprint(key)))
  if (!same)
    throw userError(
      `the key pair ${keyName} in EC2 holds another key than the cluster ${cluster.name}'s`,
      'E_AWS_KEYPAIR_MISMATCH',
      `delete it (aws ec2 delete-key-pair --key-name ${keyName}) if nothing uses it, or choose another --cluster`,
    )
  // A matching key without our tag was imported by a Belt that predates tags, or by hand with the
  // cluster's own key: claim it, so that removeCluster finds it.
  if (kp.KeyPairId && !kp.Tags?.some((t) => t.Key === 'belt:cluster' && t.Value === cluster.name))
    await calls.call((api) => api.send(new CreateTagsCommand({Resources: [kp.KeyPairId!], Tags: clusterTags(cluster.name, keyName)})), ctx.signal)
  return {keyName, keyPairId: kp.KeyPairId}
}

async function describeGroups(calls: Ec2Calls, filters: {Name: string; Values: string[]}[], signal?: AbortSignal): Promise<SecurityGroup[]> {
  const groups: SecurityGroup[] = []
  let token: string | undefined
  do {
    const out = await calls.call((api) => api.send(new DescribeSecurityGroupsCommand({Filters: filters, MaxResults: 1000, NextToken: token})), signal)
    groups.push(...(out.SecurityGroups ?? []))
    token = out.NextToken || undefined
  } while (token)
  return groups.sort((a, b) => (a.GroupId ?? '').localeCompare(b.GroupId ?? ''))
}

/**
 * The cluster's security group in `vpcId` (found by the cluster tag, created when absent), with the
 * rules of {@link desiredRules} that are missing added in one call. Existing rules are never edited
 * and other groups are never touched. Call under the cluster lock.
 */
export async function ensureSecurityGroup(calls: Ec2Calls, cluster: string, vpcId: string, adminCidrs: readonly string[], ctx: DriverContext): Promise<string> {
  const groupName = sharedName(cluster)
  let group = (await describeGroups(calls, [{Name: 'vpc-id', Values: [vpcId]}, {Name: `tag:${CLUSTER_TAG}`, Values: [cluster]}], ctx.signal))[0]
  if (!group) {
    try {
      const out = await calls.call(
        (api) =>
          api.send(
            new CreateSecurityGroupCommand({
              GroupName: groupName,
              Description: `Belt cluster ${cluster}: swarm ports between members, SSH and Docker TLS from the admin CIDR`,
              VpcId: vpcId,
              TagSpecifications: [{ResourceType: 'security-group', Tags: clusterTags(cluster, groupName)}],
            }),
          ),
        ctx.signal,
      )
      await ctx.journal({kind: 'security-group', id: out.GroupId!, action: 'created'})
      ctx.log(`created security group ${groupName} (${out.GroupId}) in ${vpcId}`)
      // A new group has no ingress rule: no need to describe it (it may not be visible yet anyway).
      group = {GroupId: out.GroupId, IpPermissions: []}
    } catch (e) {
      if (awsErrorCode(e) !== 'InvalidGroup.Duplicate') throw e
      const byName = (await describeGroups(calls, [{Name: 'vpc-id', Values: [vpcId]}, {Name: 'group-name', Values: [groupName]}], ctx.signal))[0]
      if (!byName?.Tags?.some((t) => t.Key === CLUSTER_TAG && t.Value === cluster))
        throw userError(
          `a security group named ${groupName} exists in ${vpcId} but Belt did not create it for cluster ${cluster}`,
          'E_AWS_GROUP_CONFLICT',
          'rename or delete that group, or choose another --cluster',
          e,
        )
      group = byName
    }
  }
  const groupId = group.GroupId!
  const missing = missingRules(desiredRules(groupId, adminCidrs), group.IpPermissions ?? [])
  if (missing.length === 0) return groupId
  try {
    await calls.call((api) => api.send(new AuthorizeSecurityGroupIngressCommand({GroupId: groupId, IpPermissions: toPermissions(missing)})), ctx.signal)
  } catch (e) {
    if (awsErrorCode(e) !== 'InvalidPermission.Duplicate') throw e
    // Someone added some of them meanwhile: add the rest one by one.
    const now = (await describeGroups(calls, [{Name: 'group-id', Values: [groupId]}], ctx.signal))[0]
    for (const rule of missingRules(missing, now?.IpPermissions ?? [])) {
      await calls
        .call((api) => api.send(new AuthorizeSecurityGroupIngressCommand({GroupId: groupId, IpPermissions: toPermissions([rule])})), ctx.signal)
        .catch((e2) => {
          if (awsErrorCode(e2) !== 'InvalidPermission.Duplicate') throw e2
        })
    }
  }
  ctx.log(`security group ${groupId}: allowed ${missing.map((r) => `${r.fromPort}/${r.protocol} from ${'cidr' in r.source ? r.source.cidr : 'the group'}`).join(', ')}`)
  return groupId
}

/**
 * Deletes every security group tagged with the cluster, waiting (bounded) while DependencyViolation
 * says an instance still uses it. With `leave`, a group held only by instances shutting down (they
 * hold it until terminated) is handed to `leave` instead of waited for (pending-groups.ts), after
 * `groupHeldByShutdownWaitMs`.
 */
export async function deleteClusterGroups(calls: Ec2Calls, cluster: string, ctx: DriverContext, leave?: (groupId: string) => Promise<void>): Promise<string[]> {
  const groups = await describeGroups(calls, [{Name: `tag:${CLUSTER_TAG}`, Values: [cluster]}], ctx.signal)
  const deleted: string[] = []
  for (const g of groups) {
    const groupId = g.GroupId!
    const started = Date.now()
    const deadline = started + calls.timing.groupDeleteTimeoutMs
    let left = false
    for (let attempt = 0; ; attempt++) {
      try {
        await calls.call((api) => api.send(new DeleteSecurityGroupCommand({GroupId: groupId})), ctx.signal)
        break
      } catch (e) {
        const code = awsErrorCode(e)
        if (code === 'InvalidGroup.NotFound') break
        if (code !== 'DependencyViolation') throw e
        if (leave && Date.now() - started >= calls.timing.groupHeldByShutdownWaitMs && (await heldOnlyByTerminating(calls, groupId, ctx))) {
          await leave(groupId)
          left = true
          break
        }
        if (Date.now() >= deadline)
          throw userError(
            `security group ${groupId} of cluster ${cluster} is still in use after ${Math.round(calls.timing.groupDeleteTimeoutMs / 1000)} s`,
            'E_AWS_GROUP_IN_USE',
            `find what uses it (aws ec2 describe-network-interfaces --filters Name=group-id,Values=${groupId}) and run belt rm again`,
            e,
          )
        if (attempt === 0) ctx.log(`security group ${groupId} is still in use; waiting`)
        await sleep(Math.min(backoff(attempt, calls.timing.pollMinMs, calls.timing.pollMaxMs), Math.max(0, deadline - Date.now())), ctx.signal)
      }
    }
    if (left) continue
    await ctx.journal({kind: 'security-group', id: groupId, action: 'deleted'})
    deleted.push(groupId)
  }
  return deleted
}

/** Deletes the cluster's key pairs, found by the cluster tag (ensureKeyPair tags the one it reuses). Missing ones are success. */
export async function deleteClusterKeyPairs(calls: Ec2Calls, cluster: string, ctx: DriverContext): Promise<string[]> {
  const out = await calls.call((api) => api.send(new DescribeKeyPairsCommand({Filters: [{Name: `tag:${CLUSTER_TAG}`, Values: [cluster]}]})), ctx.signal)
  const deleted: string[] = []
  for (const kp of out.KeyPairs ?? []) {
    await calls.call((api) => api.send(new DeleteKeyPairCommand({KeyPairId: kp.KeyPairId})), ctx.signal).catch((e) => {
      if (awsErrorCode(e) !== 'InvalidKeyPair.NotFound') throw e
    })
    await ctx.journal({kind: 'key-pair', id: kp.KeyPairId ?? kp.KeyName ?? sharedName(cluster), action: 'deleted'})
    deleted.push(kp.KeyName ?? kp.KeyPairId ?? '')
  }
  return deleted
}

/** What published rules say in their description: a port opened by `belt ports open` or `--open-port`. */
export const PUBLISHED = 'published by belt (any address)'
const ANY_V4 = '0.0.0.0/0'

/** The cluster's security groups in every VPC, found by the cluster tag. */
export async function findClusterGroups(calls: Ec2Calls, cluster: string, signal?: AbortSignal): Promise<SecurityGroup[]> {
  return describeGroups(calls, [{Name: `tag:${CLUSTER_TAG}`, Values: [cluster]}], signal)
}

const publishedRule = (p: PortSpec): Rule => ({protocol: p.protocol, fromPort: p.port, toPort: p.endPort ?? p.port, source: {cidr: ANY_V4}, description: PUBLISHED})
const ADMIN = new Set([22, 2376])

/** The groups' ingress rules as Belt reports them; rules from another group than the cluster's own are shown by group id. */
export function clusterPortRules(groups: readonly SecurityGroup[]): PortRule[] {
  const own = new Set(groups.map((g) => g.GroupId))
  const out: PortRule[] = []
  for (const g of groups)
    for (const r of flattenPermissions(g.IpPermissions ?? [])) {
      const fromCluster = 'groupId' in r.source && own.has(r.source.groupId)
      const source = 'cidr' in r.source ? r.source.cidr : fromCluster ? 'cluster' : r.source.groupId
      const ports = r.protocol === '-1' || (r.fromPort === 0 && r.toPort === 65535) ? 'all' : r.fromPort === r.toPort ? String(r.fromPort) : `${r.fromPort}-${r.toPort}`
      const role: PortRule['role'] = fromCluster ? 'cluster' : r.protocol === 'tcp' && r.fromPort === r.toPort && ADMIN.has(r.fromPort) && r.description !== PUBLISHED ? 'admin' : 'published'
      const protocol: PortRule['protocol'] = r.protocol === '-1' ? 'all' : r.protocol
      const same = out.find((x) => x.protocol === protocol && x.ports === ports && x.role === role)
      if (same) (same.sources as string[]).push(source)
      else out.push({protocol, ports, sources: [source], role})
    }
  return out
}

/**
 * Publishes `change.open` from 0.0.0.0/0 (one AuthorizeSecurityGroupIngress with the rules the group
 * lacks) and withdraws `change.close` (one RevokeSecurityGroupIngress with the 0.0.0.0/0 rules of
 * those exact ports that the group has). Other rules are never touched.
 */
export async function setGroupPorts(calls: Ec2Calls, group: SecurityGroup, change: PortChange, ctx: DriverContext): Promise<void> {
  const groupId = group.GroupId!
  const have = flattenPermissions(group.IpPermissions ?? [])
  const exact = (a: Rule, b: Rule) => a.protocol === b.protocol && a.fromPort === b.fromPort && a.toPort === b.toPort && sameSource(a.source, b.source)
  const add = change.open.map(publishedRule).filter((w, i, all) => all.findIndex((x) => exact(x, w)) === i && !have.some((h) => exact(h, w)))
  const del = change.close.map(publishedRule).filter((w) => have.some((h) => exact(h, w)))
  if (add.length > 0) {
    await calls.call((api) => api.send(new AuthorizeSecurityGroupIngressCommand({GroupId: groupId, IpPermissions: toPermissions(add)})), ctx.signal).catch((e) => {
      if (awsErrorCode(e) !== 'InvalidPermission.Duplicate') throw e
    })
    ctx.log(`security group ${groupId}: published ${add.map((r) => `${r.fromPort === r.toPort ? r.fromPort : `${r.fromPort}-${r.toPort}`}/${r.protocol}`).join(', ')} to ${ANY_V4}`)
  }
  if (del.length > 0) {
    // Revoked by protocol, ports and source (the description is not part of a rule's identity).
    const perms = del.map((r) => ({IpProtocol: r.protocol, FromPort: r.fromPort, ToPort: r.toPort, IpRanges: [{CidrIp: ANY_V4}]}))
    await calls.call((api) => api.send(new RevokeSecurityGroupIngressCommand({GroupId: groupId, IpPermissions: perms})), ctx.signal).catch((e) => {
      if (awsErrorCode(e) !== 'InvalidPermission.NotFound') throw e
    })
    ctx.log(`security group ${groupId}: closed ${del.map((r) => `${r.fromPort === r.toPort ? r.fromPort : `${r.fromPort}-${r.toPort}`}/${r.protocol}`).join(', ')}`)
  }
}
