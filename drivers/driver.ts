/**
 * THE driver contract. A driver turns a name into a reachable Linux machine and back into nothing.
 *
 * Rules every driver keeps (checked by drivers/testing/conformance.ts):
 *  - Drivers are stateless: everything needed to manage a host later is in the {@link Machine} it
 *    returned plus the options given to the call. A fresh driver object can manage any host.
 *  - `preflight` validates credentials, region, size, privileges; it creates nothing.
 *  - `create` resolves with a Machine that has a reachable address, or rejects leaving nothing
 *    billable. Resource ids are reported through `ctx.journal` as soon as they are known, so a
 *    crash between "resource exists" and "record saved" never orphans a resource.
 *  - `state` returns 'missing' when the resource does not exist; it never throws for that.
 *  - `remove` is idempotent: removing a missing machine succeeds.
 *  - Optional capabilities are optional methods; a driver never implements a stub that throws
 *    "not supported".
 *  - Secrets (options marked `secret`) come from flags, env or credential chains at each call and
 *    never appear in a Machine, a journal entry or a log line.
 */

/** One driver option. Exposed on the command line as `--<driver>-<name>` and read from `env`. */
export interface DriverOption {
  /** Kebab-case name without the driver prefix, e.g. `access-token`. */
  readonly name: string
  readonly description: string
  /** Environment variable that supplies the value when the flag is absent. */
  readonly env?: string
  readonly default?: string
  /** `belt create` prompts for it on a TTY and names the flag otherwise. */
  readonly required?: boolean
  /** Never persisted, never logged, masked when prompted. */
  readonly secret?: boolean
  /**
   * Says WHERE a host lives (API URL, endpoint, region, account profile, local subnet): part of the
   * host's identity. An existing host always uses the value recorded when it was created (absent
   * means "not given" then, not "take the environment's"); a flag or environment variable that
   * disagrees is refused before any API call, since asking another endpoint would answer "not
   * found" for a host that still runs. New hosts take it like any other option. Never `secret`.
   */
  readonly pinned?: boolean
  readonly choices?: readonly string[]
  /**
   * A true/false option that may also be given bare, as Docker Machine's boolean flags are
   * (`--digitalocean-ipv6`; `--no-digitalocean-ipv6` for false). Its value is `'true'` or `'false'`.
   */
  readonly boolean?: boolean
  /** Other names of the option (kebab-case, no prefix), e.g. Docker Machine's spelling `userdata`. */
  readonly aliases?: readonly string[]
  /** Other environment variables read when `env` is unset, in order (Docker Machine's names). */
  readonly envAliases?: readonly string[]
}

/** Option values keyed by {@link DriverOption.name}; defaults already applied. */
export type DriverOptions = Readonly<Record<string, string | undefined>>

/** A record of a cloud resource, written to the store's journal before it is needed. */
export interface JournalEntry {
  /** e.g. `droplet`, `instance`, `netns`, `ssh-key`, `firewall`. */
  readonly kind: string
  readonly id: string
  /** The host this resource belongs to; absent for cluster-wide resources. */
  readonly host?: string
  readonly action: 'created' | 'deleted'
}

/** What Belt gives a driver for each call. */
export interface DriverContext {
  /** A directory private to this driver inside the store (mode 0700), kept across runs. */
  readonly stateDir: string
  /** Runs `fn` holding a cross-process lock named `name` (scoped to this driver and store). */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>
  /** Records a resource id durably before the call returns. */
  journal(entry: JournalEntry): Promise<void>
  /** Progress for humans (stderr), already prefixed with the host name by the caller. */
  log(message: string): void
  readonly signal?: AbortSignal
}

/** The cluster a host belongs to: shared resources (keys, firewalls) are keyed by its name. */
export interface ClusterSpec {
  /** DNS-label name, used in tags and resource names. */
  readonly name: string
  /** The cluster's SSH public key, OpenSSH one-line format (`ssh-ed25519 AAAA... comment`). */
  readonly sshPublicKey: string
}

/** A resource an earlier call journaled for a host (`kind` and `id` as in {@link JournalEntry}). */
export interface ResourceId {
  readonly kind: string
  readonly id: string
}

export interface HostSpec {
  /** The host's name, a DNS label; becomes the machine's hostname. */
  readonly name: string
  readonly cluster: ClusterSpec
  readonly options: DriverOptions
  /**
   * Set when an earlier create of this host was interrupted or failed before it returned a
   * Machine: the resources it journaled for the host (possibly none: the answer to its create
   * request may never have arrived). The driver must then look for what that attempt left (by
   * these ids, or by the host's name and cluster tag) and adopt it, or remove it and create anew;
   * it never leaves a second resource for the same host.
   */
  readonly leftovers?: readonly ResourceId[]
}

/** A created host, as data. JSON-serialisable; contains no secret. */
export interface Machine {
  /** The driver's resource id (droplet id, instance id, namespace name). */
  readonly id: string
  /** Address reachable from the operator's machine (SSH and the Docker API). */
  readonly address: string
  /** Address on the cluster's private network, when there is one. */
  readonly privateAddress?: string
  readonly ssh: {
    readonly user: string
    readonly port: number
    /**
     * The operator's own private key, by absolute path (the generic driver's `--generic-ssh-key`),
     * read at each connection and never copied; absent means the cluster key.
     */
    readonly identityFile?: string
    /** A bastion to reach the host through (ssh's ProxyJump), authenticated with the same key. */
    readonly proxy?: SshProxy
  }
  /**
   * Host public keys learned through a channel Belt trusts (generated by the driver, or reported by
   * the cloud), OpenSSH format `type base64`. When absent, the key is pinned on first contact.
   */
  readonly hostKeys?: readonly string[]
  /** Non-secret data the driver needs later (PIDs, region, size, image). */
  readonly data: Readonly<Record<string, unknown>>
}

/** A jump host: SSH to it, then a forwarded channel to the machine's address and port. */
export interface SshProxy {
  readonly user: string
  readonly host: string
  readonly port: number
  /** The bastion's host key(s) (`type base64`) pinned when the host was created. */
  readonly hostKeys?: readonly string[]
}

export type MachineState = 'running' | 'stopped' | 'starting' | 'stopping' | 'error' | 'missing'

export interface Driver {
  readonly name: string
  readonly description: string
  readonly options: readonly DriverOption[]

  /** Validates options, credentials and privileges. Creates nothing (`ctx.stateDir` may not exist yet). Rejects with a UserError. */
  preflight(options: DriverOptions, ctx: DriverContext): Promise<void>

  /**
   * Creates one host and waits until its SSH port accepts connections (bounded). On failure it
   * removes what it created, or leaves the ids in the journal, then rejects.
   */
  create(spec: HostSpec, ctx: DriverContext): Promise<Machine>

  /** The host's state. 'missing' when the resource is gone; never throws for that. */
  state(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<MachineState>

  /** Destroys the host. Idempotent: a missing host is success. */
  remove(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void>

  /**
   * Removes whatever an interrupted create left for a host that never got a Machine: the resources
   * in `leftovers` by id, and any other resource of the cluster that carries the host's name (an
   * id Belt never learned). Idempotent: resolves when nothing of the host remains, journaling a
   * `deleted` entry for each resource it removed.
   */
  removeLeftovers(host: {readonly name: string; readonly cluster: string}, leftovers: readonly ResourceId[], options: DriverOptions, ctx: DriverContext): Promise<void>

  /**
   * Optional: creates several hosts of ONE cluster with ONE set of options in as few API calls as
   * the cloud allows (EC2 RunInstances with MinCount/MaxCount, DigitalOcean's create of up to 10
   * names). Same contract as `create`, host by host:
   *  - every resource id is journalled, with `host` set (the context is not host-scoped), as soon
   *    as the cloud returns it;
   *  - the result has one entry per spec, in the order of `specs`: a Machine whose SSH port accepts
   *    connections, or an Error for that host after the driver removed what it created for it (or
   *    left the ids in the journal); one host's failure never hides the others.
   * Rejects only when no host could be attempted: specs of different clusters or options (a bug in
   * the caller), invalid options, credentials, or the cluster's shared setup; nothing unjournalled
   * exists then. The driver may split a call; the caller bounds the batch and runs batches through
   * its pool. When `ctx.signal` aborts, hosts still starting are removed or left in the journal.
   *
   * Cancellation, for `create` and `createMany` alike: when `ctx.signal` aborts (the operator's
   * first Ctrl-C), a request that may create a resource is NOT cut off: it is let to return so
   * that its ids are journaled; waits for boot or SSH stop at once. A host interrupted after its
   * resource exists is rejected with the signal's reason and its resource left in the journal (the
   * next create of that host adopts it through `leftovers`), or rolled back when that is cheap.
   */
  createMany?(specs: readonly HostSpec[], ctx: DriverContext): Promise<Array<Machine | Error>>

  /**
   * Optional: the states of many hosts in as few API calls as the cloud allows: ONE list call per
   * cluster (DigitalOcean: the cluster tag's droplet list; EC2: DescribeInstances of up to 200 ids
   * per call), never one request per host. Same meaning as `state`, host by host: the result has
   * one entry per machine, in the order of `machines`: its state ('missing' when the cloud does not
   * list it), or an Error when that host's state could not be read (the caller shows it as unknown
   * with the reason, never as the host's state). Rejects only when nothing could be read (no
   * credentials, API unreachable). Every machine was made with these `options` (callers group hosts
   * by driver and pinned options). Bounded by `ctx.signal`.
   */
  states?(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<MachineState | Error>>

  /**
   * Optional: removes many hosts in as few API calls as the cloud allows (DigitalOcean: one
   * delete by tag when every droplet of a cluster's tag goes, otherwise ids within the rate budget;
   * EC2: TerminateInstances of many ids per call), then confirms with list calls (never one request
   * per host) that the cloud says each resource is gone. Same contract as `remove`, host by host:
   * idempotent (a missing host is success), a `deleted` journal entry for each resource removed.
   * The result has one entry per machine, in order: undefined once the cloud confirmed it gone, or
   * the Error that host met (its record must stay). When `ctx.signal` aborts, no new delete request
   * is started; hosts not confirmed gone get the signal's reason.
   */
  removeMany?(machines: readonly Machine[], options: DriverOptions, ctx: DriverContext): Promise<Array<Error | undefined>>

  /**
   * Optional: the names of the hosts these options describe (an inventory file), in order; `belt
   * create` given no names and no --count creates them. Rejects with a UserError for a bad file.
   */
  hostNames?(options: DriverOptions): Promise<string[]>

  /** Optional: powers a stopped host on. Resolves when SSH answers again. */
  start?(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine>
  /** Optional: graceful power-off. */
  stop?(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void>
  /** Optional: reboot. Resolves when SSH answers again. */
  restart?(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<Machine>
  /** Optional: immediate power-off. */
  kill?(machine: Machine, options: DriverOptions, ctx: DriverContext): Promise<void>

  /**
   * Optional: daemon.json keys the engine on this host needs because of how the driver makes hosts
   * (the local driver puts container cgroups under the host's own parent so `remove` can clean
   * them). Merged under the operator's `--engine-opt` values.
   */
  engineConfig?(machine: Machine): Readonly<Record<string, unknown>>

  /**
   * Optional: removes cluster-wide shared resources (keys, firewalls, bridges) once no host of the
   * cluster remains. Idempotent.
   */
  removeCluster?(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<void>

  /**
   * Optional: the inbound rules of the cluster's cloud firewall (DigitalOcean firewall, EC2 security
   * group), Belt's own (`role` admin or cluster) and the ports published to any address
   * (`published`). An empty list when the cluster has no firewall yet. Reads only.
   */
  listPorts?(cluster: string, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]>

  /**
   * Optional: publishes `open` to any address and withdraws `close` on the cluster's cloud
   * firewall, which applies to every host of the cluster, present and future (creating the firewall
   * when the cluster has none yet). Idempotent: an open port is not added twice, closing a port that
   * is not published is success. Only rules from any address are touched: SSH and the Docker API
   * (the admin CIDR) and the swarm ports between the cluster's hosts are never changed. Resolves with
   * the rules after the change. Call it after `preflight`.
   */
  setPorts?(cluster: string, change: PortChange, options: DriverOptions, ctx: DriverContext): Promise<PortRule[]>
}

/** A port (or a range `port`-`endPort`) and its protocol. */
export interface PortSpec {
  readonly protocol: 'tcp' | 'udp'
  readonly port: number
  /** Last port of a range; absent for a single port. */
  readonly endPort?: number
}

export interface PortChange {
  readonly open: readonly PortSpec[]
  readonly close: readonly PortSpec[]
}

/** One inbound rule of a cluster's firewall, as `listPorts` reports it. */
export interface PortRule {
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'all'
  /** `80`, `8000-8010`, or `all`. */
  readonly ports: string
  /** CIDRs, or `cluster` for the cluster's own hosts. */
  readonly sources: readonly string[]
  /** `published`: open to any address (by `belt ports open` or `--open-port`); `admin`: SSH and Docker TLS from the admin CIDR; `cluster`: between the cluster's hosts. */
  readonly role: 'published' | 'admin' | 'cluster'
}

/** The optional power-state capabilities, for `belt start|stop|restart|kill`. */
export type PowerAction = 'start' | 'stop' | 'restart' | 'kill'

/**
 * What an emulator needs of the hosts behind its droplets or instances: a driver, less the path
 * for interrupted creates (an emulator's own creates of backing hosts are never interrupted and
 * resumed; the cloud driver in front of it has that path).
 */
export type Backing = Omit<Driver, 'removeLeftovers'>
