import {spawn} from 'node:child_process'
import path from 'node:path'

export const repoRoot = path.resolve(import.meta.dirname, '../..')
export const beltBin = path.join(repoRoot, 'bin/run.js')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the built `belt` (bin/run.js -> dist/) as a user would, with no terminal (stdin closed), so
 * it must never prompt. `npm test` builds first.
 */
export function belt(args: readonly string[], opts: {store: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; input?: string}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {...process.env, BELT_STORE: opts.store, CI: 'true', NO_COLOR: '1', ...opts.env}
    // vitest sets NODE_ENV=test, which makes oclif print developer warnings a user never sees.
    delete env.NODE_ENV
    const child = spawn(process.execPath, [beltBin, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      uid: opts.uid,
      gid: opts.gid,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
    child.stdin.end(opts.input ?? '')
  })
}
