import {spawn} from 'node:child_process'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseFastPath} from '../../src/fast-path.js'
import {SHELLS} from '../../src/services/engine-env.js'
import {beltBin, repoRoot, type CliResult} from '../helpers/cli.js'

// The start-up fast path (src/fast-path.ts) runs `belt --version` and the plain forms of `belt ip` and
// `belt env` without oclif. For every argv below, the real binary must print the same bytes on stdout
// and stderr and exit with the same code as oclif alone does (test/fixtures/oclif-only.mjs: bin/run.js
// without the fast path), and the forms it claims must really skip oclif.

let tmp: string
let store: string
const at = '2026-01-01T00:00:00.000Z'

function record(name: string, fields: Record<string, unknown>): Record<string, unknown> {
  return {schemaVersion: 1, name, cluster: 'default', driver: 'local', driverOptions: {}, phase: 'reserved', resources: [], times: {}, createdAt: at, updatedAt: at, ...fields}
}
const machine = (address: string) => ({id: `belt-${address}`, address, ssh: {user: 'root', port: 22}, data: {}})
const engine = (address: string, name: string) => ({
  url: `tcp://${address}:2376`,
  id: 'engine-id',
  name,
  serverVersion: '20.10.24',
  labels: ['provider=local'],
  config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []},
})

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-fast-path-'))
  store = path.join(tmp, 'store')
  await mkdir(path.join(store, 'hosts'), {recursive: true, mode: 0o700})
  const records = [
    record('node1', {phase: 'bootstrapped', machine: machine('10.234.1.1'), engine: engine('10.234.1.1', 'node1')}),
    record('node2', {phase: 'created', machine: machine('10.234.1.2')}),
    record('node3', {phase: 'creating'}),
    record('node10', {phase: 'bootstrapped', machine: machine('10.234.1.10'), engine: engine('10.234.1.10', 'node10')}),
    record('do1', {
      phase: 'bootstrapped',
      driver: 'digitalocean',
      driverOptions: {'api-url': 'http://127.0.0.1:1'},
      machine: machine('203.0.113.5'),
      engine: engine('203.0.113.5', 'do1'),
    }),
  ]
  for (const r of records) await writeFile(path.join(store, 'hosts', `${r.name as string}.json`), JSON.stringify(r, null, 2) + '\n', {mode: 0o600})
  await writeFile(path.join(store, 'hosts', 'bad1.json'), JSON.stringify(record('bad1', {machine: {}})), {mode: 0o600})
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** Runs `script` (the binary, or oclif alone) as test/helpers/cli.ts runs belt; records the modules it loads. */
function run(script: string, args: readonly string[], env: NodeJS.ProcessEnv, modulesFile: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const preload = pathToFileURL(path.join(repoRoot, 'test/fixtures/loaded-modules.mjs')).href
    const e: NodeJS.ProcessEnv = {...process.env, BELT_STORE: store, CI: 'true', NO_COLOR: '1', SHELL: '/bin/bash', NODE_OPTIONS: `--import="${preload}"`, BELT_TEST_LOADED_MODULES: modulesFile, ...env}
    delete e.NODE_ENV
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k]
    const child = spawn(process.execPath, [script, ...args], {env: e, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

let n = 0
/** Both ways; returns the binary's result and whether it loaded oclif. */
async function both(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{fast: CliResult; oclif: CliResult; loadedOclif: boolean}> {
  const mods = path.join(tmp, `modules-${++n}.txt`)
  const fast = await run(beltBin, args, env, mods)
  const oclif = await run(path.join(repoRoot, 'test/fixtures/oclif-only.mjs'), args, env, path.join(tmp, `modules-${n}-oclif.txt`))
  const loaded = await readFile(mods, 'utf8')
  expect(loaded).toContain('/dist/src/fast-path.js') // the recorder works
  return {fast, oclif, loadedOclif: loaded.includes('/node_modules/@oclif/core/')}
}

// [argv, extra environment, taken by the fast path?]
const CASES: [string[], NodeJS.ProcessEnv, boolean][] = [
  [['--version'], {}, true],
  [['ip', 'node1'], {}, true],
  [['ip', 'node1', 'node2'], {}, true],
  [['ip', 'node[1:2]', 'node10'], {}, true],
  [['ip', 'node*'], {}, true],
  [['ip', '--json', 'node1', 'node10'], {}, true],
  [['ip', 'node1', '--json'], {}, true],
  [['ip', `--store=${'STORE'}`, 'node1'], {BELT_STORE: undefined}, true],
  [['ip', '--store', 'STORE', 'node1'], {BELT_STORE: undefined}, true],
  [['ip', 'nothere'], {}, true], // not found: exit 3
  [['ip', '--json', 'nothere'], {}, true], // the error as JSON too
  [['ip', 'node3'], {}, true], // no address yet: exit 5
  [['ip', 'bad1'], {}, true], // corrupt record: exit 5, naming the field
  [['ip', 'node[*'], {}, true], // malformed pattern: exit 2
  [['ip'], {}, true], // no name: exit 2
  [['ip', 'do1'], {DIGITALOCEAN_API_URL: 'http://127.0.0.1:2'}, true], // a pinned option moved: exit 2
  [['env', 'node1'], {}, true],
  [['env', 'node1'], {SHELL: '/usr/bin/fish'}, true],
  [['env', '--shell', 'fish', 'node1'], {}, true],
  [['env', '--shell=powershell', 'node1'], {}, true],
  [['env', '--json', 'node10'], {}, true],
  [['env', '-u'], {}, true],
  [['env', '--unset', '--shell', 'cmd'], {}, true],
  [['env', '--unset', '--json'], {}, true],
  [['env', 'node2'], {}, true], // no engine yet: exit 5
  [['env', 'nothere'], {}, true],
  [['env', '--json', 'bad1'], {}, true],
  [['env', 'do1'], {DIGITALOCEAN_API_URL: 'http://127.0.0.1:2'}, true],
  // oclif's: help, unknown or repeated flags, bad values, missing or extra arguments, --context, debug.
  [['ip', '--help'], {}, false],
  [['ip', '--nope', 'node1'], {}, false],
  [['ip', '--json', '--json', 'node1'], {}, false],
  [['ip', '--store'], {}, false],
  [['ip', '--', 'node1'], {}, false],
  [['env'], {}, false],
  [['env', 'node1', 'node2'], {}, false],
  [['env', '--shell', 'tcsh', 'node1'], {}, false],
  [['env', '-h'], {}, false],
  [['env', '--context', 'node1'], {}, false],
  [['ip', 'node1'], {BELT_CONTENT_TYPE: 'json'}, false],
  [['ip', 'node1'], {BELT_STORE: ''}, false],
  [['ls'], {}, false],
  [[], {}, false],
]

describe('the start-up fast path prints and exits as oclif does', () => {
  it.each(CASES.map(([args, env, fast]) => [args.join(' ') || '(no arguments)', args, env, fast] as const))('belt %s', async (_, rawArgs, env, fast) => {
    const args = rawArgs.map((a) => a.replace('STORE', store))
    const r = await both(args, env)
    expect(r.loadedOclif, 'oclif loaded').toBe(!fast)
    expect(r.fast.stderr).toBe(r.oclif.stderr)
    expect(r.fast.stdout).toBe(r.oclif.stdout)
    expect(r.fast.code).toBe(r.oclif.code)
    if (fast) expect(r.fast.stdout + r.fast.stderr).not.toBe('') // every case prints something
  })

  it('a case of each outcome is in the table: success, not found, corrupt, no address, usage', async () => {
    const codes = new Set<number | null>()
    for (const args of [['ip', 'node1'], ['ip', 'nothere'], ['ip', 'bad1'], ['ip', 'node[*']]) codes.add((await both(args)).fast.code)
    expect([...codes].sort()).toEqual([0, 2, 3, 5])
  })

  it('knows the same shells as belt env', () => {
    for (const s of SHELLS) expect(parseFastPath(['env', '--shell', s, 'node1'], {})).toMatchObject({kind: 'env', shell: s})
    expect(parseFastPath(['env', '--shell', 'tcsh', 'node1'], {})).toBeUndefined()
  })
})
