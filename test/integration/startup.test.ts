import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {belt, repoRoot} from '../helpers/cli.js'

// Start-up cost is mostly module loading (README "Benchmarks"): these check what is loaded, never
// how long it takes. Every module a run loads is recorded by test/fixtures/loaded-modules.mjs.

/** Libraries that only some commands need, and only at the point of use. */
const HEAVY = ['@aws-sdk/', 'ssh2', '@peculiar/x509', 'listr2', '@inquirer/', 'yaml', 'fast-xml-parser']

let tmp: string
let store: string
let n = 0

beforeAll(async () => {
  expect(existsSync(path.join(repoRoot, 'oclif.manifest.json')), 'run `npm run build` first (it writes oclif.manifest.json)').toBe(true)
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-startup-'))
  store = path.join(tmp, 'store')
  // A bootstrapped host's record, so that `ip` and `env` go all the way to their output.
  await mkdir(path.join(store, 'hosts'), {recursive: true, mode: 0o700})
  const at = '2026-01-01T00:00:00.000Z'
  const record = {
    schemaVersion: 1,
    name: 'node1',
    cluster: 'default',
    driver: 'local',
    driverOptions: {},
    phase: 'bootstrapped',
    resources: [],
    times: {},
    createdAt: at,
    updatedAt: at,
    machine: {id: 'belt-node1', address: '10.234.1.1', ssh: {user: 'root', port: 22}, data: {}},
    engine: {
      url: 'tcp://10.234.1.1:2376',
      id: 'engine-id',
      name: 'node1',
      serverVersion: '20.10.24',
      labels: ['provider=local'],
      config: {labels: [], opts: [], insecureRegistries: [], registryMirrors: []},
    },
  }
  await writeFile(path.join(store, 'hosts', 'node1.json'), JSON.stringify(record, null, 2) + '\n', {mode: 0o600})
})
afterAll(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** Runs belt with the recorder preloaded; the paths of the loaded files, relative to the repository. */
async function loaded(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{stdout: string; modules: string[]}> {
  const out = path.join(tmp, `modules-${++n}.txt`)
  const preload = pathToFileURL(path.join(repoRoot, 'test/fixtures/loaded-modules.mjs')).href
  const r = await belt(args, {store, env: {NODE_OPTIONS: `--import="${preload}"`, BELT_TEST_LOADED_MODULES: out, ...env}})
  expect(r.code, r.stderr).toBe(0)
  const modules = (await readFile(out, 'utf8'))
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => path.relative(repoRoot, new URL(u).pathname))
  // The recorder works: the entry point's first module was seen.
  expect(modules).toContain('dist/src/fast-path.js')
  return {stdout: r.stdout, modules}
}

const heavyIn = (modules: string[]) => HEAVY.filter((h) => modules.some((m) => m.startsWith(`node_modules/${h}`)))
const commandsIn = (modules: string[]) => modules.filter((m) => m.startsWith('dist/src/commands/'))
const oclifIn = (modules: string[]) => modules.some((m) => m.startsWith('node_modules/@oclif/'))

describe('start-up loads only what the command uses', () => {
  it('belt --version loads no command, not oclif, and none of the heavy libraries', async () => {
    const {stdout, modules} = await loaded(['--version'])
    expect(stdout).toMatch(/^@belt-cli\/belt\/\d+\.\d+\.\d+ /)
    expect(commandsIn(modules)).toEqual([])
    expect(oclifIn(modules)).toBe(false)
    expect(heavyIn(modules)).toEqual([])
  })

  it('belt ip runs on the fast path: no command file, not oclif, none of the heavy libraries', async () => {
    const {stdout, modules} = await loaded(['ip', 'node1'])
    expect(stdout).toBe('10.234.1.1\n')
    expect(commandsIn(modules)).toEqual([])
    expect(oclifIn(modules)).toBe(false)
    expect(heavyIn(modules)).toEqual([])
  })

  it('belt env runs on the fast path: no command file, not oclif, none of the heavy libraries (no X.509 library to name the certificate directory)', async () => {
    const {stdout, modules} = await loaded(['env', '--shell', 'bash', 'node1'])
    expect(stdout).toContain('export DOCKER_HOST="tcp://10.234.1.1:2376"')
    expect(commandsIn(modules)).toEqual([])
    expect(oclifIn(modules)).toBe(false)
    expect(heavyIn(modules)).toEqual([])
  })

  it('through oclif (a form the fast path leaves to it), belt ip loads its own command file only: the manifest lists the others', async () => {
    const {stdout, modules} = await loaded(['ip', 'node1'], {BELT_CONTENT_TYPE: 'json'})
    expect(JSON.parse(stdout)).toEqual([{name: 'node1', address: '10.234.1.1'}])
    expect(oclifIn(modules)).toBe(true)
    expect(commandsIn(modules)).toEqual(['dist/src/commands/ip.js'])
    expect(heavyIn(modules)).toEqual([])
  })
})
