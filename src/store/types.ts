import type {Machine} from '../../drivers/driver.js'

/** Bumped whenever the on-disk shape of a host record changes; see migrate() in store.ts. */
export const SCHEMA_VERSION = 1

/**
 * Where a host is in its life. Each batch phase persists its state before and after the risky
 * step, so a command run again resumes where it stopped.
 */
export type HostPhase =
  | 'reserved' // name taken, nothing created yet
  | 'creating' // driver.create in flight: resources may exist (see `resources`)
  | 'created' // machine reachable over SSH
  | 'bootstrapping'
  | 'bootstrapped' // engine answers over mutual TLS
  | 'joined' // a member of the cluster's swarm
  | 'removing'
  | 'error' // the last step failed; `error` says which and why

/** Timestamps of one host's way through a batch (ISO-8601), for `belt report`. */
export interface PhaseTimes {
  createRequested?: string
  addressKnown?: string
  sshUp?: string
  engineReady?: string
  joined?: string
}

/** A cloud resource the driver reported for this host, kept until the host's record is deleted. */
export interface ResourceRef {
  kind: string
  id: string
  at: string
}

/** What the bootstrapper records of a host's engine (no secret: the server key stays on the host). */
export interface EngineRecord {
  /** `tcp://ADDRESS:2376` */
  url: string
  id: string
  name: string
  serverVersion: string
  labels: string[]
  /** The `--engine-*` settings the host was bootstrapped with, reused by provision and regenerate-certs. */
  config: {
    labels: string[]
    /** `--engine-opt key=value`: a daemon.json key; `true`/`false`/numbers are typed, repeated keys become lists. */
    opts: string[]
    insecureRegistries: string[]
    registryMirrors: string[]
    storageDriver?: string
    /** Distribution package version to pin, e.g. `20.10.24`. */
    version?: string
    /** An install script URL such as https://get.docker.com, used instead of the distribution's packages. */
    installUrl?: string
    /** HTTP proxy for apt, e.g. an apt cache on the operator's network. */
    installProxy?: string
    /** `--engine-env KEY=VALUE`: environment of the engine's service (Environment= lines of the systemd drop-in). */
    env?: string[]
    /** `--engine-kernel-profile`: opt-in kernel settings applied at bootstrap (see KERNEL_PROFILES). */
    kernelProfile?: string
  }
  /** The server certificate's expiry (ISO-8601) and SHA-256 fingerprint. */
  certNotAfter?: string
  certFingerprint?: string
  installed?: boolean
}

/** What Belt records of a host's swarm membership. */
export interface SwarmRecord {
  clusterId?: string
  nodeId?: string
  role?: 'manager' | 'worker'
  advertiseAddr?: string
  [key: string]: unknown
}

/** One host, as saved in `<store>/hosts/<name>.json`. Never contains a secret. */
export interface HostRecord {
  schemaVersion: number
  name: string
  cluster: string
  driver: string
  /** Non-secret driver options the host was created with (secrets come from flags/env each time). */
  driverOptions: Record<string, string>
  phase: HostPhase
  machine?: Machine
  /** Pinned SSH host keys, `type base64`. Set at creation (from the driver) or on first contact. */
  hostKeys?: string[]
  resources: ResourceRef[]
  /** The belt process working on this host right now; a live owner means "hands off". */
  owner?: {pid: number; since: string}
  error?: {phase: HostPhase; message: string; at: string}
  times: PhaseTimes
  /** The engine, once bootstrapped. */
  engine?: EngineRecord
  /** The host's swarm membership, as Belt last set it. */
  swarm?: SwarmRecord
  createdAt: string
  updatedAt: string
}
