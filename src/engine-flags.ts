import {Errors, Flags} from '@oclif/core'
import {KERNEL_PROFILES, engineEnvProblem, type EngineConfig} from './bootstrap/commands.js'
import {installUrlProblem} from './install-url.js'

/**
 * `--engine-*` flags, shared by create and provision (docker-machine's names). The repeatable ones
 * take one value per occurrence, as docker-machine's do: `--engine-label a=b node1` names node1.
 */
export const engineFlags = {
  'engine-label': Flags.string({description: 'engine label KEY=VALUE (repeatable); provider=<driver> is always set', multiple: true, multipleNonGreedy: true, helpGroup: 'ENGINE'}),
  'engine-opt': Flags.string({description: 'daemon.json option KEY=VALUE, e.g. log-level=warn (repeatable)', multiple: true, multipleNonGreedy: true, helpGroup: 'ENGINE'}),
  'engine-insecure-registry': Flags.string({description: 'registry reached without TLS verification (repeatable)', multiple: true, multipleNonGreedy: true, helpGroup: 'ENGINE'}),
  'engine-registry-mirror': Flags.string({description: 'registry mirror URL (repeatable)', multiple: true, multipleNonGreedy: true, helpGroup: 'ENGINE'}),
  'engine-storage-driver': Flags.string({description: 'storage driver, e.g. overlay2 [default: the engine\'s choice]', helpGroup: 'ENGINE'}),
  'engine-version': Flags.string({description: 'engine package version to install where none is present, e.g. 20.10.24 [default: the distribution\'s]', helpGroup: 'ENGINE'}),
  'engine-install-url': Flags.string({
    description: 'install the engine with this script (e.g. https://get.docker.com) instead of the distribution\'s packages; https only (http from loopback or private addresses)',
    helpGroup: 'ENGINE',
    // Checked at parsing, before anything is created: the script runs as root on every host.
    parse: async (url) => {
      const problem = installUrlProblem(url)
      // A CLIError: rendered as the other flag parsing errors, one line, exit 2.
      if (problem) throw new Errors.CLIError(problem)
      return url
    },
  }),
  'engine-env': Flags.string({
    description: 'environment variable KEY=VALUE of the engine\'s service, e.g. HTTP_PROXY=http://10.0.0.1:3128 (repeatable)',
    multiple: true,
    multipleNonGreedy: true,
    helpGroup: 'ENGINE',
    parse: async (kv) => {
      const problem = engineEnvProblem(kv)
      if (problem) throw new Errors.CLIError(`--engine-env: ${problem}`)
      return kv
    },
  }),
  'engine-install-proxy': Flags.string({description: 'HTTP proxy for the package manager during the engine install, e.g. http://10.0.0.1:3142', helpGroup: 'ENGINE'}),
  'engine-kernel-profile': Flags.string({
    description: 'opt-in kernel settings written to /etc/sysctl.d and applied: large-swarm raises the ARP/NDP table limits (gc_thresh1-3) and conntrack for swarms of hundreds of nodes',
    options: Object.keys(KERNEL_PROFILES),
    helpGroup: 'ENGINE',
  }),
}

type EngineFlagValues = {
  'engine-label'?: string[]
  'engine-opt'?: string[]
  'engine-insecure-registry'?: string[]
  'engine-registry-mirror'?: string[]
  'engine-storage-driver'?: string
  'engine-version'?: string
  'engine-install-url'?: string
  'engine-install-proxy'?: string
  'engine-env'?: string[]
  'engine-kernel-profile'?: string
}

/** True when any `--engine-*` flag was given. */
export function engineFlagsGiven(f: EngineFlagValues): boolean {
  return Object.entries(f).some(([k, v]) => k.startsWith('engine-') && v !== undefined && (!Array.isArray(v) || v.length > 0))
}

/** The EngineConfig that the flags describe. */
export function engineConfigFrom(f: EngineFlagValues): EngineConfig {
  return {
    labels: f['engine-label'] ?? [],
    opts: f['engine-opt'] ?? [],
    insecureRegistries: f['engine-insecure-registry'] ?? [],
    registryMirrors: f['engine-registry-mirror'] ?? [],
    storageDriver: f['engine-storage-driver'],
    version: f['engine-version'],
    installUrl: f['engine-install-url'],
    installProxy: f['engine-install-proxy'],
    ...(f['engine-env']?.length ? {env: f['engine-env']} : {}),
    ...(f['engine-kernel-profile'] ? {kernelProfile: f['engine-kernel-profile']} : {}),
  }
}
