/**
 * The emulator's fixed catalogue: a plausible subset of DigitalOcean's regions, sizes and
 * distribution images (slugs as of 2025), shaped as the published schemas require.
 */
import type {DoImage, DoRegion, DoSize} from '../types.js'

interface SizeRow {
  slug: string
  memory: number
  vcpus: number
  disk: number
  transfer: number
  monthly: number
  description: string
  /** Regions that offer it; all when absent. */
  only?: string[]
}

const SIZE_ROWS: SizeRow[] = [
  {slug: 's-1vcpu-512mb-10gb', memory: 512, vcpus: 1, disk: 10, transfer: 0.5, monthly: 4, description: 'Basic', only: ['nyc1', 'sfo3', 'fra1']},
  {slug: 's-1vcpu-1gb', memory: 1024, vcpus: 1, disk: 25, transfer: 1, monthly: 6, description: 'Basic'},
  {slug: 's-1vcpu-2gb', memory: 2048, vcpus: 1, disk: 50, transfer: 2, monthly: 12, description: 'Basic'},
  {slug: 's-2vcpu-2gb', memory: 2048, vcpus: 2, disk: 60, transfer: 3, monthly: 18, description: 'Basic'},
  {slug: 's-2vcpu-4gb', memory: 4096, vcpus: 2, disk: 80, transfer: 4, monthly: 24, description: 'Basic'},
  {slug: 's-4vcpu-8gb', memory: 8192, vcpus: 4, disk: 160, transfer: 5, monthly: 48, description: 'Basic'},
  {slug: 'c-2', memory: 4096, vcpus: 2, disk: 25, transfer: 4, monthly: 42, description: 'CPU-Optimized'},
  {slug: 'g-2vcpu-8gb', memory: 8192, vcpus: 2, disk: 25, transfer: 4, monthly: 63, description: 'General Purpose', only: ['nyc3', 'ams3', 'sfo3', 'fra1']},
]

const REGION_ROWS: [slug: string, name: string, available: boolean][] = [
  ['nyc1', 'New York 1', true],
  ['nyc2', 'New York 2', false],
  ['nyc3', 'New York 3', true],
  ['sfo2', 'San Francisco 2', true],
  ['sfo3', 'San Francisco 3', true],
  ['ams3', 'Amsterdam 3', true],
  ['sgp1', 'Singapore 1', true],
  ['lon1', 'London 1', true],
  ['fra1', 'Frankfurt 1', true],
  ['tor1', 'Toronto 1', true],
  ['blr1', 'Bangalore 1', true],
  ['syd1', 'Sydney 1', true],
]

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits

export const SIZES: readonly DoSize[] = SIZE_ROWS.map((r) => ({
  slug: r.slug,
  memory: r.memory,
  vcpus: r.vcpus,
  disk: r.disk,
  transfer: r.transfer,
  price_monthly: r.monthly,
  price_hourly: round(r.monthly / 672, 5),
  regions: REGION_ROWS.filter(([slug, , available]) => available && (!r.only || r.only.includes(slug))).map(([slug]) => slug),
  available: true,
  description: r.description,
}))

export const REGIONS: readonly DoRegion[] = REGION_ROWS.map(([slug, name, available]) => ({
  slug,
  name,
  available,
  features: available ? ['backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'] : [],
  sizes: available ? SIZES.filter((s) => s.regions.includes(slug)).map((s) => s.slug) : [],
}))

const everywhere = REGION_ROWS.filter(([, , a]) => a).map(([s]) => s)

const image = (id: number, slug: string, name: string, distribution: string, created: string, minDisk: number, size: number): DoImage => ({
  id,
  name,
  type: 'base',
  distribution,
  slug,
  public: true,
  regions: everywhere,
  created_at: created,
  min_disk_size: minDisk,
  size_gigabytes: size,
  description: `${distribution} ${name} x64`,
  tags: [],
  status: 'available',
  error_message: '',
})

export const IMAGES: readonly DoImage[] = [
  image(161919542, 'ubuntu-24-04-x64', '24.04 (LTS) x64', 'Ubuntu', '2024-07-18T14:06:35Z', 7, 2.55),
  image(129211873, 'ubuntu-22-04-x64', '22.04 (LTS) x64', 'Ubuntu', '2023-04-26T14:16:12Z', 7, 2.37),
  image(154581220, 'debian-12-x64', '12 x64', 'Debian', '2024-04-03T17:24:09Z', 7, 0.95),
  image(169311420, 'rockylinux-9-x64', '9 x64', 'Rocky Linux', '2024-11-20T16:37:38Z', 10, 1.12),
]

/** Deterministic default VPC id of a region (a UUID-shaped string). */
export function defaultVpc(region: string): string {
  let h = 0
  for (const c of region) h = (h * 31 + c.charCodeAt(0)) >>> 0
  const hex = h.toString(16).padStart(8, '0')
  return `${hex}-0000-4000-8000-${hex}0000`
}
