import {constants as fsConstants, promises as fs} from 'node:fs'
import path from 'node:path'
import {ExitCode, UserError, environmentError, usageError} from '../../src/errors.js'
import type {Driver, DriverContext, DriverOptions, HostSpec, Machine, MachineState, ResourceId} from '../driver.js'
import {tcpAccepts} from '../tcp.js'
import {DEFAULT_KEYS, InventoryError, hostFromOptions, readInventory, type GenericHost} from './inventory.js'
import {genericDescription, genericOptions} from './options.js'
import {AuthRefused, connectPlan, connectionPlan, isTransient, type PlannedConnection} from './ssh.js'

/**
 * What a generic Machine keeps in `data`. The only resource is Belt's CLAIM on the host, a file in
 * the driver's state directory named for the address and port: `remove` deletes the claim (the
 * host is forgotten, 'missing' to Belt) and never touches the machine; two records of one store can
 * never manage the same sshd.
 */
export interface GenericMachineData {
  name: string
  cluster: string
}

interface Claim {
  id: string
  name: string
  cluster: string
}

/** How long create waits for the host's SSH (it exists already: this covers a slow start or a hiccup). */
const SSH_WAIT_MS = 60_000
const CLAIM_KIND = 'claim'

const claimId = (h: {address: string; port: number}) => `${h.address}:${h.port}`
const claimFile = (ctx: DriverContext, id: string) => path.join(ctx.stateDir, 'claims', `${id.replace(/[^A-Za-z0-9.-]/g, '_')}.json`)

async function readClaim(ctx: DriverContext, id: string): Promise<Claim | undefined> {
  try {
    return JSON.parse(await fs.readFile(claimFile(ctx, id), 'utf8')) as Claim
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

async function allClaims(ctx: DriverContext): Promise<Claim[]> {
  const dir = path.join(ctx.stateDir, 'claims')
  const files = await fs.readdir(dir).catch(() => [] as string[])
  const out: Claim[] = []
  for (const f of files.filter((f) => f.endsWith('.json'))) {
    const c = await fs.readFile(path.join(dir, f), 'utf8').then((t) => JSON.parse(t) as Claim).catch(() => undefined)
    if (c) out.push(c)
  }
  return out
}

const asUserError = (e: unknown): unknown => (e instanceof InventoryError ? usageError(e.message, 'E_GENERIC_OPTIONS', e.hint) : e)

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), {once: true})
  })

/** The key file a host logs in with: the one named, else the first of ~/.ssh's defaults that exists. */
async function resolveKey(h: GenericHost): Promise<string> {
  const candidates = h.key ? [h.key] : DEFAULT_KEYS
  for (const file of candidates) {
    try {
      await fs.access(file, fsConstants.R_OK)
      return file
    } catch {
      /* next */
    }
  }
  throw environmentError(
    h.key ? `cannot read the SSH key ${h.key}` : `no SSH key given and none of ${DEFAULT_KEYS.join(', ')} exists`,
    'E_GENERIC_KEY',
    h.key ? 'check the path given to --generic-ssh-key (or the key column of the inventory)' : 'pass --generic-ssh-key PATH',
  )
}

/**
 * The `generic` driver (Docker Machine's, for hosts the operator already has). `create` checks that
 * Belt can log in (through the bastion, when there is one) and gain root, learns the host keys to
 * pin, and claims the address; it creates nothing on the host. `remove` forgets the host. There is
 * no power control: Belt cannot switch on a machine it did not make.
 */
export class GenericDriver implements Driver {
  readonly name = 'generic'
  readonly description = genericDescription
  readonly options = genericOptions

  /** The hosts of these options: the inventory's, or the one of --generic-ip-address (no name). */
  private async hosts(options: DriverOptions): Promise<GenericHost[]> {
    try {
      if (options.hosts) {
        if (options['ip-address']) throw new InventoryError('give --generic-ip-address or --generic-hosts, not both', 'an inventory names each host\'s address')
        return await readInventory(options.hosts, options)
      }
      return [hostFromOptions(options)]
    } catch (e) {
      throw asUserError(e)
    }
  }

  /** The names an inventory file gives its hosts, in order (empty without `--generic-hosts`). */
  async hostNames(options: DriverOptions): Promise<string[]> {
    if (!options.hosts) return []
    return (await this.hosts(options)).map((h) => h.name!)
  }

  async preflight(options: DriverOptions, _ctx: DriverContext): Promise<void> {
    for (const h of await this.hosts(options)) await resolveKey(h)
  }

  private async hostFor(spec: HostSpec): Promise<GenericHost> {
    const hosts = await this.hosts(spec.options)
    if (!spec.options.hosts) return hosts[0]!
    const h = hosts.find((x) => x.name === spec.name)
    if (!h) throw usageError(`${spec.name} is not in the inventory ${spec.options.hosts}`, 'E_GENERIC_NOT_IN_INVENTORY', 'add it to the file, or create only the names it lists')
    return h
  }

  async create(spec: HostSpec, ctx: DriverContext): Promise<Machine> {
    const h = await this.hostFor(spec)
    const keyFile = await resolveKey(h)
    // What an interrupted attempt left is only a claim: let it go, then claim again.
    if (spec.leftovers) await this.removeLeftovers({name: spec.name, cluster: spec.cluster.name}, spec.leftovers, spec.options, ctx)
    const id = claimId(h)
    await this.claim(ctx, {id, name: spec.name, cluster: spec.cluster.name})
    try {
      const conn = await this.login(h, keyFile, ctx)
      try {
        await checkRoot(conn, h, spec.name)
        return {
          id,
          address: h.address,
          ssh: {
            user: h.user,
            port: h.port,
            identityFile: keyFile,
            ...(h.proxy ? {proxy: {...h.proxy, hostKeys: [conn.keys.proxy!]}} : {}),
          },
          hostKeys: [conn.keys.host!],
          data: {name: spec.name, cluster: spec.cluster.name} satisfies GenericMachineData,
        }
      } finally {
        conn.close()
      }
    } catch (e) {
      await this.release(ctx, id, spec.name).catch(() => undefined)
      throw e
    }
  }

  /** Takes the address for this host, refusing one another host of the store holds. */
  private async claim(ctx: DriverContext, c: Claim): Promise<void> {
    await ctx.withLock('claims', async () => {
      const held = await readClaim(ctx, c.id)
      if (held && (held.name !== c.name || held.cluster !== c.cluster))
        throw usageError(`${c.id} is already host ${held.name} (cluster ${held.cluster}) in this store`, 'E_GENERIC_CLAIMED', `one machine is one host: remove ${held.name} first (belt rm ${held.name}) or give another address`)
      await fs.mkdir(path.dirname(claimFile(ctx, c.id)), {recursive: true, mode: 0o700})
      await ctx.journal({kind: CLAIM_KIND, id: c.id, action: 'created'})
      await fs.writeFile(claimFile(ctx, c.id), JSON.stringify(c) + '\n', {mode: 0o600})
    })
  }

  /** Drops the claim `id` when `name` holds it. */
  private async release(ctx: DriverContext, id: string, name: string): Promise<void> {
    await ctx.withLock('claims', async () => {
      const held = await readClaim(ctx, id)
      if (!held || held.name !== name) return
      await fs.rm(claimFile(ctx, id), {force: true})
      await ctx.journal({kind: CLAIM_KIND, id, action: 'deleted'})
    })
  }

  /** Logs in along the host's plan, retrying while it does not answer yet (bounded, abortable). */
  private async login(h: GenericHost, keyFile: string, ctx: DriverContext): Promise<PlannedConnection> {
    const key = await fs.readFile(keyFile, 'utf8')
    const deadline = Date.now() + SSH_WAIT_MS
    let delay = 250
    for (;;) {
      if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('aborted')
      try {
        return await connectPlan(connectionPlan(h), key)
      } catch (e) {
        if (e instanceof AuthRefused)
          throw new UserError(`${e.message} (${keyFile})`, {code: 'E_SSH_AUTH', exit: ExitCode.environment, hint: `put the public key of ${keyFile} in ${h.user}'s authorized_keys, or give the right --generic-ssh-user/--generic-ssh-key`})
        if (!isTransient(e) || Date.now() + delay > deadline)
          throw new UserError(`cannot log in to ${h.user}@${h.address}:${h.port}${h.proxy ? ` through ${h.proxy.user}@${h.proxy.host}:${h.proxy.port}` : ''}: ${(e as Error).message}`, {
            code: 'E_SSH_UNREACHABLE',
            exit: ExitCode.environment,
            hint: 'check the address, port and that sshd runs on the host',
            cause: e,
          })
      }
      await sleep(delay, ctx.signal)
      delay = Math.min(delay * 2, 4000)
    }
  }

  async state(m: Machine, _options: DriverOptions, ctx: DriverContext): Promise<MachineState> {
    const held = await readClaim(ctx, m.id)
    if (!held || held.name !== (m.data as unknown as GenericMachineData).name) return 'missing'
    const proxy = m.ssh.proxy
    if (!proxy) return (await tcpAccepts(m.address, m.ssh.port, 3000)) ? 'running' : 'stopped'
    // Behind a bastion the host is 'running' when the bastion can open a TCP channel to its sshd.
    try {
      const key = await fs.readFile(m.ssh.identityFile ?? '', 'utf8')
      const c = await connectPlan(connectionPlan({address: m.address, port: m.ssh.port, user: m.ssh.user, proxy}), key, 5000, 'forward')
      c.close()
      return 'running'
    } catch {
      return 'stopped'
    }
  }

  /** Forgets the host: its claim goes; nothing on the machine changes. Idempotent. */
  async remove(m: Machine, _options: DriverOptions, ctx: DriverContext): Promise<void> {
    await this.release(ctx, m.id, (m.data as unknown as GenericMachineData).name)
  }

  async removeLeftovers(host: {name: string; cluster: string}, leftovers: readonly ResourceId[], _options: DriverOptions, ctx: DriverContext): Promise<void> {
    const ids = new Set(leftovers.filter((r) => r.kind === CLAIM_KIND).map((r) => r.id))
    for (const c of await allClaims(ctx)) if (c.name === host.name && c.cluster === host.cluster) ids.add(c.id)
    for (const id of ids) await this.release(ctx, id, host.name)
  }
}

/** Root, or passwordless sudo: what the bootstrapper needs (it runs privileged steps through sudo). */
async function checkRoot(conn: PlannedConnection, h: GenericHost, name: string): Promise<void> {
  const r = await conn.exec('id -u && { [ "$(id -u)" = 0 ] || sudo -n true; }')
  if (r.code === 0) return
  const uid = r.stdout.trim().split('\n')[0]
  throw environmentError(
    uid && uid !== '0' ? `${name}: ${h.user} cannot run sudo without a password (${r.stderr.trim().split('\n')[0] || `exit ${r.code}`})` : `${name}: cannot run commands as ${h.user}: ${r.stderr.trim() || `exit ${r.code}`}`,
    'E_GENERIC_SUDO',
    `give ${h.user} passwordless sudo (${h.user} ALL=(ALL) NOPASSWD:ALL in /etc/sudoers.d), or log in as root with --generic-ssh-user root`,
  )
}

export function createGenericDriver(): Driver & {hostNames(options: DriverOptions): Promise<string[]>} {
  return new GenericDriver()
}
