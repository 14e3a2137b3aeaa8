import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {HostRecord} from '../../src/store/types.js'
import {belt} from '../helpers/cli.js'
import {systemSnapshot, type SystemSnapshot} from '../helpers/system.js'

/**
 * `--engine-install-url` for real (issue 9, item 6): a host whose engine is absent runs an install
 * script served by this test on the gateway of the host's private network (plain http is allowed
 * from a private address; tests never reach the internet). The installer is longer than a pipe
 * buffer, fails when it is run a second time, writes a marker at its end and then puts dockerd
 * back. The old wrapper downloaded it over itself while sh was still reading: its tail ran again
 * and the install failed. Plain http from a public address is refused at flag parsing.
 */

const SUBNET = '10.231.0.0/16'
const GATEWAY = '10.231.0.1'
const NAME = 'iurl1'
const MARK = '/var/tmp/belt-test-installer'

let tmp: string
let store: string
let before: SystemSnapshot
let server: http.Server | undefined
let installerUrl: string
const served: string[] = []
let installer = ''

const ssh = (...argv: string[]) => belt(['ssh', NAME, '--', ...argv], {store})
const inspect = async (): Promise<HostRecord> => {
  const r = await belt(['inspect', NAME], {store})
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as HostRecord
}
const ours = (s: SystemSnapshot) => ({netns: s.netns.filter((n) => n.includes('10-231')), links: s.links.filter((l) => l.includes('10-231')), mounts: s.mounts.filter((m) => m.includes('10-231'))})

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-install-url-'))
  store = path.join(tmp, 'store')
  before = await systemSnapshot()
  const padding = Array.from({length: 3000}, (_, i) => `# padding line ${String(i).padStart(5, '0')} ${'x'.repeat(60)}`).join('\n')
  installer = [
    '#!/bin/sh',
    '# A stand-in for get.docker.com: puts dockerd back, once.',
    'set -eu',
    `m=${MARK}`,
    'if [ -e "$m.started" ]; then echo twice >> "$m.twice"; exit 1; fi',
    'echo "$0" > "$m.started"',
    padding,
    'echo end >> "$m.end"',
    'mv /usr/sbin/dockerd.belt-test /usr/sbin/dockerd',
    '',
  ].join('\n')
})

afterAll(async () => {
  if (!tmp) return
  await new Promise((r) => (server ? server.close(r) : r(undefined)))
  await belt(['rm', '-y', '--force', 'iurl*'], {store}).catch(() => undefined)
  await rm(tmp, {recursive: true, force: true})
})

describe('belt provision --engine-install-url', () => {
  it('refuses plain http from a public address at flag parsing: one line, exit 2, nothing created', async () => {
    for (const args of [
      ['create', '--driver', 'local', '--local-subnet', SUBNET, '--engine-install-url', 'http://192.0.2.7/get.sh', NAME],
      ['provision', '--engine-install-url', 'http://get.docker.com', NAME],
    ]) {
      const r = await belt(args, {store})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(/^Error: Parsing --engine-install-url http:\/\/\S+ is plain http and the script runs as root on every host: use https:\/\/ \(http:\/\/ only from a loopback or private-network address\)/)
    }
    expect(existsSync(store)).toBe(false)
  })

  it('a host without dockerd', async () => {
    const r = await belt(['create', '--driver', 'local', '--local-subnet', SUBNET, '--no-bootstrap', NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    // The host's /usr is copy-on-write: this machine's dockerd stays.
    const hide = await ssh('sh', '-c', `mv /usr/sbin/dockerd /usr/sbin/dockerd.belt-test && rm -f ${MARK}.* && ! command -v dockerd`)
    expect(hide.code, hide.stderr).toBe(0)
    expect(existsSync('/usr/sbin/dockerd')).toBe(true)
  })

  it('downloads the installer beside the script, not over it: it runs once, to its end, and leaves nothing in /tmp', async () => {
    server = http.createServer((req, res) => {
      served.push(req.url ?? '')
      res.end(installer)
    })
    await new Promise<void>((resolve) => server!.listen(0, GATEWAY, resolve))
    installerUrl = `http://${GATEWAY}:${(server.address() as AddressInfo).port}/get-engine.sh`
    expect(installer.length).toBeGreaterThan(128 * 1024)

    const r = await belt(['provision', '--engine-install-url', installerUrl, NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^iurl1: installing the Docker engine on /m)
    expect(r.stderr).toMatch(/^iurl1: engine \S+ ready at tcp:\/\/10\.231\.\d+\.\d+:2376 \(engine installed, /m)
    expect(served).toEqual(['/get-engine.sh'])

    const marks = await ssh('sh', '-c', `cat ${MARK}.end; cat ${MARK}.started; test -e ${MARK}.twice && echo TWICE; ls -a /tmp`)
    expect(marks.code, marks.stderr).toBe(0)
    const [end, started, ...rest] = marks.stdout.trim().split('\n')
    expect(end).toBe('end')
    expect(started).toMatch(/^\/tmp\/belt-install\.[A-Za-z0-9]{8}\/installer\.sh$/)
    expect(rest).not.toContain('TWICE')
    expect(rest.filter((f) => f.startsWith('belt'))).toEqual([])
    const rec = await inspect()
    expect(rec.engine?.installed).toBe(true)
    expect(rec.engine?.config.installUrl).toBe(installerUrl)
  })

  it('rm leaves no namespace, link or mount of the subnet', async () => {
    await new Promise((r) => server!.close(r))
    server = undefined
    const r = await belt(['rm', '-y', NAME], {store})
    expect(r.code, r.stderr).toBe(0)
    expect(ours(await systemSnapshot())).toEqual(ours(before))
  })
})
