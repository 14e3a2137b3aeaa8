import {spawn, type ChildProcess} from 'node:child_process'
import {beltBin} from './cli.js'

/** A `belt emulator ...` child process and the URL it printed. */
export interface RunningEmulator {
  readonly child: ChildProcess
  /** `DIGITALOCEAN_API_URL` or `AMAZONEC2_ENDPOINT`, as printed on stdout. */
  readonly url: string
  /** SIGTERM, then its exit code once it has removed every host it made (idempotent). */
  stop(): Promise<number | null>
}

const URL_LINE = {digitalocean: /DIGITALOCEAN_API_URL=(http:\/\/127\.0\.0\.1:\d+)/, ec2: /AMAZONEC2_ENDPOINT=(http:\/\/127\.0\.0\.1:\d+)/}

/**
 * Starts `belt emulator <kind> --port 0 ...args` as a user would (its own store, no terminal) and
 * resolves once it printed its URL; rejects with its stderr if it exits first.
 */
export async function startEmulator(kind: 'digitalocean' | 'ec2', args: readonly string[], store: string): Promise<RunningEmulator> {
  const env: NodeJS.ProcessEnv = {...process.env, BELT_STORE: store, CI: 'true', NO_COLOR: '1'}
  delete env.NODE_ENV // vitest's; oclif prints developer warnings under it
  const child = spawn(process.execPath, [beltBin, 'emulator', kind, '--port', '0', ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = URL_LINE[kind].exec(out)
      if (m) resolve(m[1]!)
    })
    child.on('exit', (code) => reject(new Error(`the emulator exited ${code}: ${err}`)))
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return {
    child,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
