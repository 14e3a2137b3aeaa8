import {DescribeImagesCommand, DescribeSubnetsCommand, DescribeVpcsCommand, type Image, type Subnet} from '@aws-sdk/client-ec2'
import {ExitCode, UserError} from '../../src/errors.js'
import type {Ec2Calls} from './calls.js'
import {awsErrorCode} from './client.js'
import {CANONICAL_OWNER} from './options.js'
import type {Ec2Settings} from './settings.js'

const notFit = (message: string, code: string, hint?: string, cause?: unknown) => new UserError(message, {code, hint, exit: ExitCode.environment, cause})

/** Where hosts go: a VPC and the subnets to try, in order (the next one when a zone has no capacity). */
export interface Ec2Network {
  readonly vpcId: string
  readonly subnets: readonly Subnet[]
}

/**
 * Orders candidate subnets: default-for-AZ first, then those that map public IPs, then by zone name
 * (so a cluster lands in one zone: cross-zone traffic is slower and billed), then by id.
 */
export function orderSubnets(subnets: readonly Subnet[]): Subnet[] {
  const rank = (s: Subnet) => (s.DefaultForAz ? 0 : 2) + (s.MapPublicIpOnLaunch ? 0 : 1)
  return [...subnets]
    .filter((s) => (s.State ?? 'available') === 'available')
    .sort((a, b) => rank(a) - rank(b) || (a.AvailabilityZone ?? '').localeCompare(b.AvailabilityZone ?? '') || (a.SubnetId ?? '').localeCompare(b.SubnetId ?? ''))
}

/** The VPC and candidate subnets for `settings`; reads only. */
export async function resolveNetwork(calls: Ec2Calls, s: Ec2Settings, signal?: AbortSignal): Promise<Ec2Network> {
  if (s.subnetId) {
    let subnet: Subnet | undefined
    try {
      subnet = (await calls.call((api) => api.send(new DescribeSubnetsCommand({SubnetIds: [s.subnetId!]})), signal)).Subnets?.[0]
    } catch (e) {
      if (awsErrorCode(e) !== 'InvalidSubnetID.NotFound') throw e
    }
    if (!subnet) throw notFit(`subnet ${s.subnetId} does not exist in ${s.region}`, 'E_AWS_SUBNET', 'check --amazonec2-subnet-id and --amazonec2-region')
    if (s.vpcId && subnet.VpcId !== s.vpcId)
      throw new UserError(`subnet ${s.subnetId} is in ${subnet.VpcId}, not in ${s.vpcId}`, {code: 'E_AWS_SUBNET', exit: ExitCode.usage, hint: 'drop --amazonec2-vpc-id or pick a subnet of that VPC'})
    return {vpcId: subnet.VpcId!, subnets: [subnet]}
  }
  let vpcId = s.vpcId
  if (vpcId) {
    try {
      const vpcs = (await calls.call((api) => api.send(new DescribeVpcsCommand({VpcIds: [vpcId!]})), signal)).Vpcs ?? []
      if (vpcs.length === 0) throw notFit(`VPC ${vpcId} does not exist in ${s.region}`, 'E_AWS_VPC', 'check --amazonec2-vpc-id and --amazonec2-region')
    } catch (e) {
      if (awsErrorCode(e) === 'InvalidVpcID.NotFound') throw notFit(`VPC ${vpcId} does not exist in ${s.region}`, 'E_AWS_VPC', 'check --amazonec2-vpc-id and --amazonec2-region', e)
      throw e
    }
  } else {
    const vpcs = (await calls.call((api) => api.send(new DescribeVpcsCommand({Filters: [{Name: 'is-default', Values: ['true']}]})), signal)).Vpcs ?? []
    vpcId = vpcs[0]?.VpcId
    if (!vpcId) throw notFit(`${s.region} has no default VPC`, 'E_AWS_NO_DEFAULT_VPC', 'pass --amazonec2-vpc-id or --amazonec2-subnet-id')
  }
  const all = (await calls.call((api) => api.send(new DescribeSubnetsCommand({Filters: [{Name: 'vpc-id', Values: [vpcId!]}]})), signal)).Subnets ?? []
  const subnets = orderSubnets(all)
  if (subnets.length === 0) throw notFit(`VPC ${vpcId} has no available subnet`, 'E_AWS_NO_SUBNET', 'create a subnet or pass --amazonec2-subnet-id')
  return {vpcId, subnets}
}

/** The image a host boots, with what launching it needs. */
export interface Ec2Image {
  readonly imageId: string
  readonly name?: string
  readonly rootDeviceName?: string
  /** The image's `belt:ssh-user` tag, when it has one (the emulator's images do). */
  readonly sshUserTag?: string
}

/** Name pattern of Canonical's Ubuntu 24.04 LTS server images on EBS SSD volumes (gp2 and gp3). */
export const ubuntuNoblePattern = (arch: 'x86_64' | 'arm64'): string => `ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-${arch === 'arm64' ? 'arm64' : 'amd64'}-server-*`

/** The newest image by CreationDate (ISO 8601 strings compare in time order). */
export function newestImage(images: readonly Image[]): Image | undefined {
  return [...images].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '') || (b.Name ?? '').localeCompare(a.Name ?? ''))[0]
}

const toImage = (i: Image): Ec2Image => ({
  imageId: i.ImageId!,
  name: i.Name,
  rootDeviceName: i.RootDeviceName,
  sshUserTag: i.Tags?.find((t) => t.Key === 'belt:ssh-user')?.Value,
})

/** `--amazonec2-ami` checked, or the newest Ubuntu 24.04 LTS image of Canonical for the architecture. */
export async function resolveImage(calls: Ec2Calls, s: Ec2Settings, signal?: AbortSignal): Promise<Ec2Image> {
  if (s.ami) {
    let image: Image | undefined
    try {
      image = (await calls.call((api) => api.send(new DescribeImagesCommand({ImageIds: [s.ami!]})), signal)).Images?.[0]
    } catch (e) {
      const code = awsErrorCode(e)
      if (code !== 'InvalidAMIID.NotFound' && code !== 'InvalidAMIID.Unavailable' && code !== 'InvalidAMIID.Malformed') throw e
    }
    if (!image) throw notFit(`image ${s.ami} does not exist in ${s.region} (or is not shared with this account)`, 'E_AWS_AMI', 'image ids differ per region: look it up in this region')
    if (image.State && image.State !== 'available') throw notFit(`image ${s.ami} is ${image.State}, not available`, 'E_AWS_AMI')
    if (image.Architecture && image.Architecture !== s.architecture)
      throw notFit(`image ${s.ami} is for ${image.Architecture} but ${s.instanceType} is ${s.architecture}`, 'E_AWS_AMI', 'choose an image and an instance type of the same architecture')
    return toImage(image)
  }
  const out = await calls.call(
    (api) =>
      api.send(
        new DescribeImagesCommand({
          Owners: [CANONICAL_OWNER],
          Filters: [
            {Name: 'name', Values: [ubuntuNoblePattern(s.architecture)]},
            {Name: 'state', Values: ['available']},
            {Name: 'architecture', Values: [s.architecture]},
          ],
        }),
      ),
    signal,
  )
  const image = newestImage(out.Images ?? [])
  if (!image) throw notFit(`no Ubuntu 24.04 image of Canonical found in ${s.region}`, 'E_AWS_AMI', 'pass --amazonec2-ami')
  return toImage(image)
}
