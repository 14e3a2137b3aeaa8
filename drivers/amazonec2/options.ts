import type {DriverOption} from '../driver.js'

export const amazonec2Description =
  'Amazon EC2 instances through the official AWS SDK: credentials from the standard AWS chain (environment, ' +
  'shared config and profiles, SSO, instance roles), one key pair and one security group per cluster, batched launches.'

/** Canonical's AWS account, the owner of the official Ubuntu images. */
export const CANONICAL_OWNER = '099720109477'

/** The admin CIDR default: any IPv4 address. Both ports it opens still need Belt's key or client certificate. */
export const ANYWHERE = '0.0.0.0/0'

/**
 * Options of the amazonec2 driver (`--amazonec2-<name>`). Credentials are deliberately not options:
 * they come from the SDK's credential chain at every call and Belt never writes them anywhere.
 * Environment variable names follow docker-machine's amazonec2 driver where it had one.
 */
export const amazonec2Options: readonly DriverOption[] = [
  {
    name: 'region',
    description: 'AWS region of the hosts [default: $AWS_REGION, else us-east-1]',
    env: 'AWS_DEFAULT_REGION',
    pinned: true,
  },
  {
    name: 'endpoint',
    description: 'EC2 API endpoint URL, for the Belt EC2 emulator (belt emulator ec2) or a private cloud [default: the region\'s AWS endpoint]',
    env: 'AMAZONEC2_ENDPOINT',
    pinned: true,
  },
  {
    name: 'profile',
    description: 'named profile of the shared AWS config and credentials files [default: $AWS_PROFILE, else default]',
    env: 'AWS_PROFILE',
    pinned: true,
  },
  {
    name: 'instance-type',
    description: 'instance type; Graviton types (t4g, m7g, ...) get the arm64 image',
    env: 'AWS_INSTANCE_TYPE',
    default: 't3.small',
  },
  {
    name: 'ami',
    description: `image id [default: the newest Ubuntu 24.04 LTS image published by Canonical (owner ${CANONICAL_OWNER}) for the instance type's architecture]`,
    env: 'AWS_AMI',
  },
  {
    name: 'vpc-id',
    description: "VPC of the hosts [default: the subnet's VPC, else the region's default VPC]",
    env: 'AWS_VPC_ID',
  },
  {
    name: 'subnet-id',
    description: "subnet of the hosts [default: the VPC's default subnets, first availability zone first; the next one when a zone has no capacity]",
    env: 'AWS_SUBNET_ID',
  },
  {
    name: 'root-size',
    description: 'root volume size in GB (gp3)',
    env: 'AWS_ROOT_SIZE',
    default: '16',
  },
  {
    name: 'spot',
    description: 'launch one-time Spot instances (true/false); they cannot be stopped, only removed',
    env: 'AMAZONEC2_SPOT',
    default: 'false',
  },
  {
    name: 'ssh-user',
    description: 'login user of the image (ubuntu for Ubuntu images; root for the Belt EC2 emulator)',
    env: 'AWS_SSH_USER',
    default: 'ubuntu',
  },
  {
    name: 'admin-cidr',
    description:
      'CIDR(s), comma-separated, allowed to reach SSH (22/tcp) and the TLS Docker API (2376/tcp). The default 0.0.0.0/0 means ANY address ' +
      '(both ports still require the cluster key or a client certificate); narrow it to yours, e.g. 203.0.113.7/32',
    env: 'AMAZONEC2_ADMIN_CIDR',
    default: ANYWHERE,
  },
]
