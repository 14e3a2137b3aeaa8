import type {DriverOption} from '../driver.js'

export const digitaloceanDescription =
  'Droplets on DigitalOcean: created up to 10 per API request, tagged for their cluster, behind a cloud firewall ' +
  'that opens the swarm ports between the cluster droplets and SSH/Docker TLS only to --digitalocean-admin-cidr.'

/** The default region, size and image: a general-purpose region, the smallest regular droplet, the current Ubuntu LTS. */
export const DO_DEFAULTS = {
  apiUrl: 'https://api.digitalocean.com',
  region: 'nyc3',
  size: 's-1vcpu-1gb',
  image: 'ubuntu-24-04-x64',
  sshUser: 'root',
  adminCidr: '0.0.0.0/0,::/0',
} as const

export const digitaloceanOptions: readonly DriverOption[] = [
  {
    name: 'access-token',
    description: 'DigitalOcean API token (personal access token with read and write scope)',
    env: 'DIGITALOCEAN_ACCESS_TOKEN',
    required: true,
    secret: true,
  },
  {
    name: 'api-url',
    description: 'base URL of the DigitalOcean API (point it at `belt emulator digitalocean` to rehearse)',
    env: 'DIGITALOCEAN_API_URL',
    pinned: true,
    default: DO_DEFAULTS.apiUrl,
  },
  {
    name: 'region',
    description: 'region slug the droplets are created in (belt checks it exists and offers the size)',
    env: 'DIGITALOCEAN_REGION',
    pinned: true,
    default: DO_DEFAULTS.region,
  },
  {
    name: 'size',
    description: 'droplet size slug (1 vCPU / 1 GiB by default)',
    env: 'DIGITALOCEAN_SIZE',
    default: DO_DEFAULTS.size,
  },
  {
    name: 'image',
    description: 'image slug or id (Ubuntu 24.04 LTS by default)',
    env: 'DIGITALOCEAN_IMAGE',
    default: DO_DEFAULTS.image,
  },
  {
    name: 'ssh-user',
    description: 'user Belt logs in as over SSH',
    env: 'DIGITALOCEAN_SSH_USER',
    default: DO_DEFAULTS.sshUser,
  },
  {
    name: 'private-networking',
    description: "report each droplet's VPC address as its private address, so swarm traffic stays on the VPC",
    env: 'DIGITALOCEAN_PRIVATE_NETWORKING',
    default: 'true',
    choices: ['true', 'false'],
  },
  {
    name: 'vpc-uuid',
    description: "VPC the droplets join (default: the region's default VPC)",
    env: 'DIGITALOCEAN_VPC_UUID',
  },
  {
    name: 'admin-cidr',
    description:
      'comma-separated addresses (CIDR) allowed to reach SSH (22) and Docker TLS (2376); the default 0.0.0.0/0,::/0 is ' +
      'ANYWHERE, guarded only by SSH keys and TLS client certificates: narrow it to your address, e.g. 203.0.113.7/32',
    env: 'DIGITALOCEAN_ADMIN_CIDR',
    default: DO_DEFAULTS.adminCidr,
  },
  {
    name: 'user-data',
    description: 'path to a cloud-init file passed to every droplet as user data (at most 64 KiB); Docker Machine\'s --digitalocean-userdata and DIGITALOCEAN_USERDATA are accepted too',
    env: 'DIGITALOCEAN_USER_DATA',
    aliases: ['userdata'],
    envAliases: ['DIGITALOCEAN_USERDATA'],
  },
  {
    name: 'ipv6',
    description: 'give each droplet a public IPv6 address as well (Belt still reaches it over IPv4)',
    env: 'DIGITALOCEAN_IPV6',
    boolean: true,
  },
  {
    name: 'monitoring',
    description: "install DigitalOcean's metrics agent on each droplet (free; graphs and alerts in the control panel)",
    env: 'DIGITALOCEAN_MONITORING',
    boolean: true,
  },
  {
    name: 'backups',
    description: 'enable weekly droplet backups (billed: 20% of the droplet price)',
    env: 'DIGITALOCEAN_BACKUPS',
    boolean: true,
  },
  {
    name: 'ssh-key-fingerprint',
    description:
      "MD5 fingerprint (aa:bb:...) or id of an SSH key already in the account, added to every droplet besides the cluster key, so that key logs in too (Belt itself logs in with the cluster key)",
    env: 'DIGITALOCEAN_SSH_KEY_FINGERPRINT',
  },
  {
    name: 'tags',
    description: 'comma-separated extra tags for the droplets (belt and belt-cluster-<cluster> are always added)',
    env: 'DIGITALOCEAN_TAGS',
  },
  {
    name: 'active-timeout',
    description: "seconds a new droplet may take to become active; one that does not is deleted and its host reported failed [default: 300]",
    env: 'DIGITALOCEAN_ACTIVE_TIMEOUT',
  },
]
