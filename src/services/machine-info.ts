/**
 * docker-machine's small read-only commands over Belt's records: `active`, `url`, `config`,
 * `version`, and the DOCKER column of `ls` (one Engine API call per host, bounded).
 */
import {readFile} from 'node:fs/promises'
import {engineRequest, type ClientTls} from '../bootstrap/engine-api.js'
import {ExitCode, UserError, oneLine} from '../errors.js'
import {certPaths} from '../pki/paths.js'
import {mapSettled} from '../scheduler/pool.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import {seconds} from '../ui/reporter.js'

/** The engine URL of a bootstrapped host (`tcp://ADDRESS:2376`); an environment error before the bootstrap. */
export function engineUrl(r: HostRecord): string {
  if (!r.engine)
    throw new UserError(`${r.name} has no engine yet (its state is ${r.phase})`, {code: 'E_NO_ENGINE', exit: ExitCode.environment, hint: `bootstrap it with: belt provision ${r.name}`})
  return r.engine.url
}

/** `tcp://HOST:PORT` with the host lower-cased and the default port spelt out, for comparing DOCKER_HOST with records. */
export function normalizeDockerHost(url: string): string | undefined {
  const m = /^(?:tcp|https?):\/\/\[?([^\]/]+?)\]?(?::(\d+))?\/?$/i.exec(url.trim())
  if (!m) return undefined
  return `tcp://${m[1]!.toLowerCase()}:${m[2] ?? '2376'}`
}

/**
 * The host DOCKER_HOST points at (docker-machine's `active`), or undefined. Only bootstrapped hosts
 * have a URL; with several records on one URL (a stale copy), the first in name order wins.
 */
export function activeHost(records: readonly HostRecord[], dockerHost: string | undefined): HostRecord | undefined {
  if (!dockerHost) return undefined
  const want = normalizeDockerHost(dockerHost)
  if (!want) return undefined
  return records.find((r) => r.engine && normalizeDockerHost(r.engine.url) === want)
}

/** The error of `belt active` when DOCKER_HOST names no host of the store (docker-machine: "No active host found", exit 1). */
export function noActiveHost(dockerHost: string | undefined): UserError {
  return new UserError(dockerHost ? `No active host found: DOCKER_HOST=${dockerHost} is no host of this store` : 'No active host found: DOCKER_HOST is not set', {
    code: 'E_NO_ACTIVE_HOST',
    exit: ExitCode.bug,
    hint: 'point the docker CLI at a host with: eval "$(belt env NAME)"',
  })
}

/**
 * The docker CLI's TLS options for a host, one per line (docker-machine's `config`), for
 * `docker $(belt config node1) info`. The paths are printed bare so that the shell's word splitting
 * hands them to docker as they are (docker-machine quoted them, which only works with `eval`); a
 * path the shell would split or expand is refused rather than printed wrong.
 */
export function configArgs(r: HostRecord, store: Store): string[] {
  const url = engineUrl(r)
  const p = certPaths(store)
  for (const f of [p.caCert, p.clientCert, p.clientKey])
    if (!/^[A-Za-z0-9_./:@%+,=-]+$/.test(f))
      throw new UserError(`the store path ${JSON.stringify(f)} has characters the shell would split or expand`, {
        code: 'E_CONFIG_PATH',
        exit: ExitCode.environment,
        hint: 'use belt env (quoted per shell) or a store path without spaces or shell characters',
      })
  return ['--tlsverify', `--tlscacert=${p.caCert}`, `--tlscert=${p.clientCert}`, `--tlskey=${p.clientKey}`, `-H=${url}`]
}

/** The store's client certificate, read as it is (never created: reading commands change nothing). */
export async function readClientTls(store: Store): Promise<ClientTls> {
  const p = certPaths(store)
  try {
    const [ca, cert, key] = await Promise.all([readFile(p.caCert, 'utf8'), readFile(p.clientCert, 'utf8'), readFile(p.clientKey, 'utf8')])
    return {ca, cert, key}
  } catch (e) {
    throw new UserError(`the store has no client certificate (${oneLine(e)})`, {
      code: 'E_NO_CLIENT_CERT',
      exit: ExitCode.environment,
      hint: 'it is made by the first bootstrap: belt provision NAME',
    })
  }
}

/** What `GET /version` says of one engine. */
export interface EngineVersion {
  version: string
  apiVersion: string
  os?: string
  arch?: string
  /** How long the engine took to answer, ms. */
  ms: number
}

/** Where a record's engine answers, from its URL. */
function endpoint(r: HostRecord): {address: string; port: number} {
  const u = new URL(engineUrl(r).replace(/^tcp:/, 'https:'))
  return {address: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 2376)}
}

/** `GET /version` of one host's engine over mutual TLS. */
export async function engineVersion(r: HostRecord, tls: ClientTls, timeoutMs = 10_000): Promise<EngineVersion> {
  const {address, port} = endpoint(r)
  const t0 = Date.now()
  const v = await engineRequest<{Version: string; ApiVersion: string; Os?: string; Arch?: string}>(address, port, tls, 'GET', '/version', undefined, timeoutMs)
  return {version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch, ms: Date.now() - t0}
}

/** One host's DOCKER column: the version, or why there is none (`Unknown` with the reason). */
export type DockerColumn = {version: string; ms: number} | {version: 'Unknown'; error: string} | {version: ''}

export interface EngineVersionsOptions {
  /** Bound of the whole query: versions not read by then are Unknown (default 10 s). */
  timeoutMs: number
  /** Engine API calls at once (default 16). */
  concurrency?: number
  /** Reads the client certificate (e.g. {@link readClientTls} of the store); called once, and only when some engine is to be asked. */
  tls: () => Promise<ClientTls>
  /** Read one engine's version (injectable for tests). */
  read?: (r: HostRecord, tls: ClientTls, timeoutMs: number) => Promise<{version: string; ms: number}>
}

/**
 * The engine version of each host for `ls` (docker-machine's DOCKER column): one `GET /version` per
 * running, bootstrapped host, through a bounded window, the whole bounded by `timeoutMs`. A host
 * that is not running or has no engine is not called ('', as docker-machine shows it); a version
 * that could not be read is `Unknown` with the reason.
 */
export async function engineVersions(records: readonly HostRecord[], running: readonly boolean[], o: EngineVersionsOptions): Promise<DockerColumn[]> {
  // docker-machine leaves the column empty for a host that is not running: nothing to ask.
  const out: Array<DockerColumn | undefined> = records.map((r, i) => (r.engine && running[i] ? undefined : {version: ''}))
  const todo = records.map((_, i) => i).filter((i) => out[i] === undefined)
  if (todo.length === 0) return out as DockerColumn[]
  let tls: ClientTls
  try {
    tls = await o.tls()
  } catch (e) {
    for (const i of todo) out[i] = {version: 'Unknown', error: oneLine(e)}
    return out as DockerColumn[]
  }
  const read = o.read ?? engineVersion
  const signal = AbortSignal.timeout(o.timeoutMs)
  const work = mapSettled(
    todo,
    async (i) => {
      try {
        const v = await read(records[i]!, tls, o.timeoutMs)
        out[i] ??= {version: v.version, ms: v.ms}
      } catch (e) {
        out[i] ??= {version: 'Unknown', error: `engine version: ${oneLine(e)}`}
      }
    },
    {concurrency: o.concurrency ?? 16, signal},
  )
  let timer: NodeJS.Timeout | undefined
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, o.timeoutMs)))])
  clearTimeout(timer)
  const late = `engine version not read within ${seconds(o.timeoutMs).replace(/\.0+ s$/, ' s')}`
  return out.map((x) => x ?? {version: 'Unknown', error: late})
}

/**
 * docker-machine's `env --no-proxy`: NO_PROXY (or no_proxy, whichever the environment uses) with
 * the host's address added once, so that a proxy set for the shell is not used for the engine.
 */
export function noProxyVariable(env: NodeJS.ProcessEnv, address: string): [string, string] {
  const key = env.NO_PROXY !== undefined ? 'NO_PROXY' : env.no_proxy !== undefined ? 'no_proxy' : 'NO_PROXY'
  const list = (env[key] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (!list.includes(address)) list.push(address)
  return [key, list.join(',')]
}
