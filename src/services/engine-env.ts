import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {ExitCode, UserError, environmentError, usageError} from '../errors.js'
import {certPaths} from '../pki/paths.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'

export const SHELLS = ['bash', 'zsh', 'sh', 'fish', 'powershell', 'cmd'] as const
export type Shell = (typeof SHELLS)[number]

/** The variables that point the docker CLI at a host's engine (docker-machine's set). */
export function engineVariables(r: HostRecord, certDir: string): [string, string][] {
  if (!r.engine)
    throw new UserError(`${r.name} has no engine yet (its state is ${r.phase})`, {
      code: 'E_NO_ENGINE',
      exit: ExitCode.environment,
      hint: `bootstrap it with: belt provision ${r.name}`,
    })
  return [
    ['DOCKER_TLS_VERIFY', '1'],
    ['DOCKER_HOST', r.engine.url],
    ['DOCKER_CERT_PATH', certDir],
    ['DOCKER_MACHINE_NAME', r.name],
  ]
}

/** The shell named by $SHELL (or the platform), for `belt env` without --shell. */
export function detectShell(env: NodeJS.ProcessEnv = process.env, platform = process.platform): Shell {
  const base = (env.SHELL ?? '').split(/[\\/]/).pop() ?? ''
  if (base === 'fish') return 'fish'
  if (base === 'zsh') return 'zsh'
  if (/^(pwsh|powershell)/.test(base)) return 'powershell'
  if (platform === 'win32') return env.PSModulePath ? 'powershell' : 'cmd'
  return 'bash'
}

/** A value quoted for `shell`. */
function quote(shell: Shell, v: string): string {
  switch (shell) {
    case 'fish':
      return `"${v.replace(/[\\"$]/g, '\\$&')}"`
    case 'powershell':
      return `"${v.replace(/[`"$]/g, '`$&')}"`
    case 'cmd':
      return v
    default:
      return `"${v.replace(/[\\"$`]/g, '\\$&')}"`
  }
}

/** The lines `belt env` prints: set (or, with `unset`, clear) each variable, then how to apply them. */
export function renderEnv(shell: Shell, vars: readonly [string, string][], opts: {unset: boolean; command: string}): string {
  const lines: string[] = []
  for (const [k, v] of vars) {
    if (opts.unset) {
      lines.push(
        shell === 'fish' ? `set -e ${k};` : shell === 'powershell' ? `Remove-Item Env:\\${k}` : shell === 'cmd' ? `SET ${k}=` : `unset ${k}`,
      )
    } else {
      lines.push(
        shell === 'fish'
          ? `set -gx ${k} ${quote(shell, v)};`
          : shell === 'powershell'
            ? `$Env:${k} = ${quote(shell, v)}`
            : shell === 'cmd'
              ? `SET ${k}=${v}`
              : `export ${k}=${quote(shell, v)}`,
      )
    }
  }
  const how =
    shell === 'fish'
      ? `# Run this command to configure your shell:\n# eval (${opts.command})`
      : shell === 'powershell'
        ? `# Run this command to configure your shell:\n# & ${opts.command} | Invoke-Expression`
        : shell === 'cmd'
          ? `REM Run this command to configure your shell:\nREM \t@FOR /f "tokens=*" %i IN ('${opts.command}') DO @%i`
          : `# Run this command to configure your shell:\n# eval "$(${opts.command})"`
  return lines.join('\n') + '\n' + how + '\n'
}

const run = promisify(execFile)

/**
 * Creates (or updates) a docker context named after the host that points at its engine with the
 * store's client certificate, through the docker CLI itself.
 */
export async function ensureDockerContext(store: Store, r: HostRecord, name = r.name): Promise<string> {
  const [, url] = engineVariables(r, '').find(([k]) => k === 'DOCKER_HOST')!
  const p = certPaths(store)
  const endpoint = `host=${url},ca=${p.caCert},cert=${p.clientCert},key=${p.clientKey}`
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/.test(name)) throw usageError(`'${name}' is not a valid docker context name`, 'E_CONTEXT_NAME')
  try {
    const exists = await run('docker', ['context', 'inspect', name]).then(
      () => true,
      () => false,
    )
    await run('docker', ['context', exists ? 'update' : 'create', name, '--description', `belt host ${r.name}`, '--docker', endpoint])
  } catch (e) {
    const err = e as NodeJS.ErrnoException & {stderr?: string}
    if (err.code === 'ENOENT') throw environmentError('the docker CLI is not installed', 'E_NO_DOCKER_CLI', 'install it (apt-get install docker.io), or use belt env without --context')
    throw environmentError(`docker context ${name}: ${(err.stderr ?? err.message).trim()}`, 'E_DOCKER_CONTEXT')
  }
  return name
}
