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
  {
    name: 'zone',
    description: "availability zone: a letter (a, b, ...; Docker Machine's form) or a full name (us-east-1a); hosts go to the VPC's subnet there",
    env: 'AWS_ZONE',
  },
  {
    name: 'volume-type',
    description: 'EBS type of the root volume: gp3, gp2, io1, io2, st1, sc1 or standard',
    env: 'AWS_VOLUME_TYPE',
    default: 'gp3',
  },
  {
    name: 'security-group',
    description: "comma-separated security groups (names or sg- ids) of the hosts' VPC, attached besides the cluster's own group belt-<cluster>; they must exist",
    env: 'AWS_SECURITY_GROUP',
  },
  {
    name: 'iam-instance-profile',
    description: 'IAM instance profile (name or ARN) given to every instance',
    env: 'AWS_INSTANCE_PROFILE',
  },
  {
    name: 'private-address-only',
    description: 'no public IP address: Belt reaches the hosts on their private addresses (run Belt inside the VPC, or through a VPN)',
    env: 'AMAZONEC2_PRIVATE_ADDRESS_ONLY',
    boolean: true,
  },
  {
    name: 'use-private-address',
    description: 'keep the public IP address, but reach the hosts (SSH, Docker TLS) on their private addresses',
    env: 'AMAZONEC2_USE_PRIVATE_ADDRESS',
    boolean: true,
  },
  {
    name: 'tags',
    description: "extra tags for the instances and their volumes: key1,value1,key2,value2 (Docker Machine's form) or key1=value1,key2=value2",
    env: 'AWS_TAGS',
  },
  {
    name: 'userdata',
    description: 'path to a user-data file (cloud-init or a script) passed to every instance (at most 16 KiB)',
    env: 'AWS_USERDATA',
    aliases: ['user-data'],
  },
  {
    name: 'keypair-name',
    description: 'an existing EC2 key pair to launch the instances with instead of the cluster key pair; needs --amazonec2-ssh-keypath, its private key, which Belt then logs in with',
    env: 'AWS_KEYPAIR_NAME',
  },
  {
    name: 'ssh-keypath',
    description: 'private key file (OpenSSH or PEM) Belt logs in with; with --amazonec2-keypair-name it is that key pair\'s key, otherwise its public half (<path>.pub) is imported as the key pair belt-<cluster>-<fingerprint>',
    env: 'AWS_SSH_KEYPATH',
  },
  {
    name: 'monitoring',
    description: 'detailed CloudWatch monitoring (1-minute metrics, billed)',
    env: 'AMAZONEC2_MONITORING',
    boolean: true,
  },
]
