/*
 * The start-up fast path (README "Benchmarks", start-up): `belt --version`, `belt ip NAMES` and
 * `belt env NAME` are what scripts and shell prompts run over and over, and loading oclif (its
 * configuration, ~150 modules) cost more than everything else they do. bin/run.js hands argv here
 * first; when it is one of the plain forms below, the command runs without oclif, through the same
 * functions as its oclif command (src/commands/ip.ts, env.ts) and the same error rendering as
 * BaseCommand.catch. Anything else (help, a flag this parser does not know, a repeated flag, a
 * missing or extra argument, --context, the debug and content-type variables) returns false and
 * oclif handles it, errors included: the fast path never prints a usage error of its own.
 * test/integration/fast-path.test.ts checks that both ways print the same bytes and exit codes.
 *
 * Only node: modules are imported statically: this module is loaded on every start.
 */
import {readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {Shell} from './services/engine-env.js'
import type {Store} from './store/store.js'

/** A command the fast path runs; undefined argv forms go to oclif. */
export type FastCommand =
  | {kind: 'version'}
  | {kind: 'ip'; store?: string; json: boolean; names: string[]}
  | {kind: 'env'; store?: string; json: boolean; shell?: Shell; unset: boolean; name?: string}

const SHELL_NAMES: readonly string[] = ['bash', 'zsh', 'sh', 'fish', 'powershell', 'cmd'] // SHELLS of engine-env.ts (test-checked)

/**
 * The fast-path form of `argv` (the arguments after `belt`), or undefined when oclif must handle it.
 * Pure: `env` is only read for the variables that change how oclif would parse or print.
 */
export function parseFastPath(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): FastCommand | undefined {
  // oclif's debug output, its JSON switch, and an empty BELT_STORE (which oclif passes on as '') are its own;
  // so is docker-machine's MACHINE_STORAGE_PATH (the --store flag's default when BELT_STORE is unset).
  if (env.DEBUG || env.BELT_DEBUG || env.BELT_CONTENT_TYPE !== undefined || env.BELT_STORE === '' || (env.MACHINE_STORAGE_PATH && env.BELT_STORE === undefined)) return undefined
  const [id, ...rest] = argv
  if (id === '--version') return process.platform === 'linux' && !isWsl() ? {kind: 'version'} : undefined
  if (id !== 'ip' && id !== 'env') return undefined
  const seen = new Set<string>()
  const values: Record<string, string> = {}
  const positional: string[] = []
  const valued = id === 'env' ? ['--store', '--shell'] : ['--store']
  const booleans = id === 'env' ? ['--json', '--unset'] : ['--json']
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    if (!a.startsWith('-')) {
      positional.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const flag = a === '-u' && id === 'env' ? '--unset' : eq > 0 ? a.slice(0, eq) : a
    if (seen.has(flag)) return undefined
    seen.add(flag)
    if (valued.includes(flag)) {
      const value = eq > 0 ? a.slice(eq + 1) : rest[++i]
      if (value === undefined || value === '' || value.startsWith('-')) return undefined
      values[flag] = value
    } else if (booleans.includes(flag) && eq < 0) values[flag] = ''
    else return undefined // --help, --context, `--`, anything unknown: oclif's
  }
  const store = values['--store']
  const json = '--json' in values
  if (id === 'ip') return {kind: 'ip', store, json, names: positional}
  const shell = values['--shell']
  if (shell !== undefined && !SHELL_NAMES.includes(shell)) return undefined
  const unset = '--unset' in values
  if (positional.length > 1 || (positional.length === 0 && !unset)) return undefined
  return {kind: 'env', store, json, shell: shell as Shell | undefined, unset, name: positional[0]}
}

/** oclif says `wsl` for the platform there; the fast path leaves that to it. */
function isWsl(): boolean {
  return os.release().toLowerCase().includes('microsoft') || process.env.WSL_DISTRO_NAME !== undefined
}

/**
 * Runs `argv` on the fast path when it is a fast-path form: prints what the oclif command prints,
 * sets process.exitCode as BaseCommand.catch does, and returns true. False: nothing was done.
 */
export async function runFastPath(argv: readonly string[], packageRoot: string): Promise<boolean> {
  const cmd = parseFastPath(argv)
  if (!cmd) return false
  if (cmd.kind === 'version') {
    const pjson = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {name: string; version: string}
    process.stdout.write(`${pjson.name}/${pjson.version} ${process.platform}-${os.arch() === 'ia32' ? 'x86' : os.arch()} node-${process.version}\n`)
    return true
  }
  const [{Store, defaultStoreDir}, {UserError, userErrorOutput, bugOutput}] = await Promise.all([import('./store/store.js'), import('./errors.js')])
  const store = new Store(cmd.store ?? defaultStoreDir())
  try {
    const result = cmd.kind === 'ip' ? await ipCommand(store, cmd.names, cmd.json) : await envCommand(store, cmd)
    if (cmd.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  } catch (e) {
    const {code, line, body} = e instanceof UserError ? userErrorOutput(e) : bugOutput(e as Error)
    process.exitCode = code
    if (cmd.json) process.stdout.write(JSON.stringify({error: body}, null, 2) + '\n')
    process.stderr.write(line + '\n')
  }
  return true
}

/** `belt ip NAMES`: the address of each host; prints the text form unless `json`. */
export async function ipCommand(store: Store, patterns: readonly string[], json: boolean): Promise<{name: string; address: string}[]> {
  const [{selectHosts}, {UserError}] = await Promise.all([import('./services/select-hosts.js'), import('./errors.js')])
  const hosts = await selectHosts(store, patterns)
  const out = hosts.map((r) => {
    if (!r.machine) throw new UserError(`${r.name} has no address yet (its state is ${r.phase})`, {code: 'E_NO_ADDRESS', exit: 5})
    return {name: r.name, address: r.machine.address}
  })
  if (!json) process.stdout.write(out.map((o) => (hosts.length > 1 ? `${o.name} ${o.address}` : o.address) + '\n').join(''))
  return out
}

/**
 * `belt env [--shell S] [--unset] NAME` without --context: the variables for the host's engine (or
 * the lines that clear them); prints them for the shell unless `json`. `name` is required unless unset.
 */
export async function envCommand(store: Store, opts: {json: boolean; shell?: Shell; unset: boolean; name?: string; noProxy?: boolean}): Promise<Record<string, string>> {
  const [{detectShell, engineVariables, renderEnv}, {refuseMovedHosts}, {certPaths}] = await Promise.all([
    import('./services/engine-env.js'),
    import('./services/driver-context.js'),
    import('./pki/paths.js'),
  ])
  const shell = opts.shell ?? detectShell()
  const command = `belt env${opts.shell ? ` --shell ${shell}` : ''}${opts.unset ? ' --unset' : ''}${opts.noProxy ? ' --no-proxy' : ''}${opts.name ? ` ${opts.name}` : ''}`
  if (opts.unset) {
    const vars: [string, string][] = ['DOCKER_TLS_VERIFY', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_MACHINE_NAME'].map((k) => [k, ''])
    if (!opts.json) process.stdout.write(renderEnv(shell, vars, {unset: true, command}))
    return {}
  }
  const record = await store.get(opts.name!)
  refuseMovedHosts([record])
  const vars = engineVariables(record, certPaths(store).dir)
  // docker-machine's --no-proxy (oclif's path only): the host's address added to NO_PROXY.
  if (opts.noProxy) vars.push((await import('./services/machine-info.js')).noProxyVariable(process.env, record.machine!.address))
  if (!opts.json) process.stdout.write(renderEnv(shell, vars, {unset: false, command}))
  return Object.fromEntries(vars)
}
