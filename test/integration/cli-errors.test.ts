import {chmod, chown, mkdir, mkdtemp, readdir, rm} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, repoRoot} from '../helpers/cli.js'

let tmp: string
let store: string

beforeAll(async () => {
  expect(existsSync(path.join(repoRoot, 'dist/src/commands/create.js')), 'run `npm run build` first').toBe(true)
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-cli-'))
  store = path.join(tmp, 'store')
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** A bad command: one line on stderr, no stack trace, the given exit code, nothing created. */
async function expectOneLineError(args: string[], code: number, pattern: RegExp, extra: {uid?: number; gid?: number; store?: string; env?: NodeJS.ProcessEnv} = {}) {
  const r = await belt(args, {store: extra.store ?? store, uid: extra.uid, gid: extra.gid, env: extra.env})
  expect(r.code, r.stderr).toBe(code)
  const lines = r.stderr.trim().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: /)
  expect(lines[0]).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  expect(r.stdout).toBe('')
  return r
}

describe('belt refuses bad input with one clear line and changes nothing', () => {
  it('a range that counts down', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'node[5:1]'], 2, /range \[5:1\] in 'node\[5:1\]' counts down.*\[1:5\]/)
  })

  it('an invalid name', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'bad_name!'], 2, /'bad_name!' is not a valid host name/)
  })

  it('a duplicate name', async () => {
    await expectOneLineError(['create', '--driver', 'local', 'node[1:3]', 'node2'], 2, /node2 named more than once/)
  })

  it('no driver and no terminal: names the flag instead of prompting', async () => {
    await expectOneLineError(['create', 'node1'], 2, /missing --driver: choose one of local/)
  })

  it('an unknown flag', async () => {
    await expectOneLineError(['create', '--driver', 'local', '--nope', 'node1'], 2, /--nope/)
  })

  it('rm of a host that does not exist', async () => {
    await expectOneLineError(['rm', '-y', 'nosuch'], 3, /no host named nosuch/)
  })

  it('rm without -y and without a terminal', async () => {
    await expectOneLineError(['rm', 'nosuch'], 3, /no host named nosuch/)
  })

  it('the local driver run as a non-root user', async () => {
    // nobody's own home, with the store where belt puts it by default.
    const home = path.join(tmp, 'nobody-home')
    await chmod(tmp, 0o755)
    await mkdir(home, {mode: 0o700})
    await chown(home, 65534, 65534)
    const userStore = path.join(home, '.belt')
    await expectOneLineError(['create', '--driver', 'local', 'node1'], 5, /the local driver needs root/, {uid: 65534, gid: 65534, store: userStore, env: {HOME: home}})
    expect(await readdir(path.join(userStore, 'hosts')).catch(() => [])).toEqual([])
  })

  it('left no host record behind', async () => {
    const r = await belt(['ls', '--json'], {store})
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual([])
  })
})

describe('help', () => {
  it('every command has a summary and an example', async () => {
    const r = await belt(['--help'], {store})
    expect(r.code).toBe(0)
    for (const c of ['create', 'ls', 'inspect', 'ip', 'status', 'ssh', 'scp', 'rm', 'start', 'stop', 'restart', 'kill']) expect(r.stdout).toContain(c)
    const h = await belt(['create', '--help'], {store})
    expect(h.stdout).toMatch(/EXAMPLES/)
    expect(h.stdout).toMatch(/--local-subnet/)
    expect(h.stdout).toMatch(/BELT_LOCAL_SUBNET/)
  })
})
