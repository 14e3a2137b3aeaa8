/**
 * The subset of DigitalOcean API v2 objects Belt reads and writes, named as in the published
 * OpenAPI document (drivers/digitalocean/spec/digitalocean-openapi.yaml). Shared by the driver and the emulator.
 */

/** `#/components/schemas/error`: every non-2xx body. */
export interface DoError {
  id: string
  message: string
  request_id?: string
}

export interface DoNetworkV4 {
  ip_address: string
  netmask: string
  gateway: string
  type: 'public' | 'private'
}

export interface DoRegion {
  name: string
  slug: string
  features: string[]
  available: boolean
  sizes: string[]
}

export interface DoSize {
  slug: string
  memory: number
  vcpus: number
  disk: number
  transfer: number
  price_monthly: number
  price_hourly: number
  regions: string[]
  available: boolean
  description: string
}

export interface DoImage {
  id: number
  name: string
  type: 'base' | 'snapshot' | 'backup' | 'custom' | 'admin'
  distribution: string
  slug: string | null
  public: boolean
  regions: string[]
  created_at: string
  min_disk_size: number | null
  size_gigabytes: number | null
  description?: string
  tags: string[] | null
  status: 'NEW' | 'available' | 'pending' | 'deleted' | 'retired'
  error_message?: string
}

export type DoDropletStatus = 'new' | 'active' | 'off' | 'archive'

export interface DoDroplet {
  id: number
  name: string
  memory: number
  vcpus: number
  disk: number
  locked: boolean
  status: DoDropletStatus
  kernel: null
  created_at: string
  features: string[]
  backup_ids: number[]
  next_backup_window: null
  snapshot_ids: number[]
  image: DoImage
  volume_ids: string[]
  size: DoSize
  size_slug: string
  networks: {v4: DoNetworkV4[]; v6: unknown[]}
  region: DoRegion
  tags: string[]
  vpc_uuid?: string
}

export interface DoSshKey {
  id: number
  fingerprint: string
  public_key: string
  name: string
}

export interface DoFirewallTarget {
  addresses?: string[]
  droplet_ids?: number[]
  load_balancer_uids?: string[]
  kubernetes_ids?: string[]
  tags?: string[]
}

export interface DoFirewallRule {
  protocol: 'tcp' | 'udp' | 'icmp'
  ports: string
}

export interface DoFirewall {
  id: string
  name: string
  status: 'waiting' | 'succeeded' | 'failed'
  created_at: string
  pending_changes: {droplet_id: number; removing: boolean; status: string}[]
  droplet_ids: number[]
  tags: string[]
  inbound_rules: (DoFirewallRule & {sources: DoFirewallTarget})[]
  outbound_rules: (DoFirewallRule & {destinations: DoFirewallTarget})[]
}

export interface DoAction {
  id: number
  status: 'in-progress' | 'completed' | 'errored'
  type: string
  started_at: string
  completed_at: string | null
  resource_id: number | null
  resource_type: string
  region: DoRegion
  region_slug: string | null
}

export interface DoAccount {
  droplet_limit: number
  floating_ip_limit: number
  email: string
  name?: string
  uuid: string
  email_verified: boolean
  status: 'active' | 'warning' | 'locked'
  status_message: string
}

export interface DoTag {
  name: string
  resources: {count: number; last_tagged_uri?: string; droplets: {count: number; last_tagged_uri?: string}}
}

/** `links` + `meta` of every list response. */
export interface DoPage {
  links?: {pages?: {first?: string; prev?: string; next?: string; last?: string}}
  meta: {total: number}
}

/** `POST /v2/droplets` body (`droplet_single_create` / `droplet_multi_create`). */
export interface DoDropletCreate {
  name?: string
  names?: string[]
  region: string
  size: string
  image: string | number
  ssh_keys: (string | number)[]
  tags: string[]
  user_data?: string
  vpc_uuid?: string
  ipv6?: boolean
  monitoring?: boolean
  backups?: boolean
}

/** Droplet action types Belt sends (`#/components/schemas/droplet_action`). */
export type DoPowerActionType = 'power_on' | 'power_off' | 'shutdown' | 'reboot'

/** The API's own maximum for `names` in one create request. */
export const MULTI_CREATE_MAX = 10

/** The largest `per_page` the API accepts. */
export const MAX_PER_PAGE = 200
