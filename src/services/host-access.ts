import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ExitCode, UserError, environmentError} from '../errors.js'
import {connect, waitForSsh, type SshRemote} from '../ssh/ssh2-remote.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {readClusterKey} from './cluster-key.js'

/** The cluster key for a host's record; an environment error when it is gone. */
async function clusterPrivateKey(store: Store, r: HostRecord): Promise<string> {
  const file = path.join(store.keysDir(r.cluster), 'id_ed25519')
  const key = await readClusterKey(file)
  if (!key) throw environmentError(`the SSH key of cluster ${r.cluster} is missing (${file})`, 'E_KEY_MISSING', 'restore it from a backup of the store; without it belt cannot log in to the hosts')
  return key.privateKey
}

/**
 * The private key a host logs in with: the operator's own key when the machine names one (read at
 * each connection, never copied), else the cluster key.
 */
async function loginKey(store: Store, r: HostRecord): Promise<string> {
  const file = r.machine?.ssh.identityFile
  if (!file) return clusterPrivateKey(store, r)
  try {
    return await fs.readFile(file, 'utf8')
  } catch (e) {
    throw environmentError(`cannot read the SSH key of ${r.name} (${file}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'E_KEY_MISSING', `put the key back at ${file}; belt logs in to ${r.name} with it`)
  }
}

export interface OpenHostOptions {
  /** Wait (with backoff) up to this long for SSH to answer; 0 = one attempt. */
  waitMs?: number
  /** The flag that sets the login user (`--amazonec2-ssh-user`), named when the host keeps refusing the key. */
  userFlag?: string
  signal?: AbortSignal
}

/**
 * One SSH connection to a host, with its host key pinned: the key recorded at creation (or at first
 * contact, which records it) must match, `belt ssh` included.
 */
export async function openHost(store: Store, r: HostRecord, opts: OpenHostOptions = {}): Promise<SshRemote> {
  if (!r.machine)
    throw new UserError(`${r.name} has no machine yet (its state is ${r.phase})`, {code: 'E_NOT_CREATED', exit: ExitCode.environment, hint: `create it with belt create --driver ${r.driver} ${r.name}`})
  const m = r.machine
  const privateKey = await loginKey(store, r)
  const proxy = m.ssh.proxy
  const options = {
    host: m.address,
    port: m.ssh.port,
    username: m.ssh.user,
    privateKey,
    ...(m.ssh.identityFile ? {keyFile: m.ssh.identityFile} : {}),
    ...(proxy ? {via: {host: proxy.host, port: proxy.port, username: proxy.user, privateKey, keyFile: m.ssh.identityFile, hostName: `the SSH proxy of ${r.name}`, knownHostKeys: [...(proxy.hostKeys ?? [])]}} : {}),
    hostName: r.name,
    knownHostKeys: r.hostKeys ? [...r.hostKeys] : [],
    onFirstContact: async (key: string) => {
      await store.update(r.name, (x) => {
        x.hostKeys = [key]
      })
    },
    signal: opts.signal,
  }
  if (opts.waitMs) return waitForSsh(options, {timeoutMs: opts.waitMs, signal: opts.signal, userFlag: opts.userFlag})
  try {
    return await connect(options)
  } catch (e) {
    if (e instanceof UserError) throw e
    throw new UserError(`cannot reach ${r.name} over SSH at ${m.address}:${m.ssh.port}: ${(e as Error).message}`, {
      code: 'E_SSH_UNREACHABLE',
      exit: ExitCode.environment,
      hint: `check the host with: belt status ${r.name}`,
      cause: e,
    })
  }
}
