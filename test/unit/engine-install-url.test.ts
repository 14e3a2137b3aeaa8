/**
 * The engine install path (issue 9, item 6): install URLs are https (http only from loopback or
 * private addresses), and the install script and the installer it downloads live at distinct,
 * unpredictable paths of a private directory that the remote command makes and removes: the old
 * wrapper downloaded the installer over itself while sh was still reading it.
 */
import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {emptyEngineConfig, installEngineCommand, installScript, parseOsRelease} from '../../src/bootstrap/commands.js'
import {installUrlProblem, isLoopbackOrPrivate} from '../../src/install-url.js'
import {repoRoot} from '../helpers/cli.js'

const templates = {
  debian: readFileSync(path.join(repoRoot, 'templates/engine/install-debian.sh'), 'utf8'),
  script: readFileSync(path.join(repoRoot, 'templates/engine/install-script.sh'), 'utf8'),
}
const debian = parseOsRelease('ID=debian\nVERSION_ID="12"\n')
const alpine = parseOsRelease('ID=alpine\n')
const withUrl = (installUrl: string, version?: string) => ({...emptyEngineConfig(), installUrl, version})

describe('install URLs', () => {
  it.each([
    ['https://get.docker.com', true],
    ['HTTPS://GET.DOCKER.COM/install.sh', true],
    ['http://127.0.0.1:8080/get.sh', true],
    ['http://127.8.9.10/get.sh', true],
    ['http://localhost/get.sh', true],
    ['http://10.231.0.1:4000/get.sh', true],
    ['http://172.16.0.1/get.sh', true],
    ['http://172.31.255.1/get.sh', true],
    ['http://192.168.1.1/get.sh', true],
    ['http://[::1]:8080/get.sh', true],
    ['http://[fd12:3456::1]/get.sh', true],
    ['http://get.docker.com', false],
    ['http://172.32.0.1/get.sh', false],
    ['http://172.15.0.1/get.sh', false],
    ['http://192.0.2.10/get.sh', false],
    ['http://169.254.169.254/latest', false],
    ['http://[2001:db8::1]/get.sh', false],
    ['http://mirror.internal/get.sh', false],
    ['ftp://10.0.0.1/get.sh', false],
    ['file:///tmp/get.sh', false],
    ['get.docker.com', false],
  ])('%s allowed: %s', (url, ok) => {
    const problem = installUrlProblem(url)
    if (ok) expect(problem).toBeUndefined()
    else expect(problem).toMatch(/^(\S+ is plain http and the script runs as root on every host: use https:\/\/ \(http:\/\/ only from a loopback or private-network address\)|\S+ is not an https:\/\/ URL|'\S+' is not a URL)$/)
  })

  it('isLoopbackOrPrivate takes bracketed IPv6 as URL.hostname gives it', () => {
    expect(isLoopbackOrPrivate('[::1]')).toBe(true)
    expect(isLoopbackOrPrivate('::2')).toBe(false)
  })
})

describe('installScript and installEngineCommand', () => {
  it('the command makes a private directory, runs the script from stdin with an installer path beside it, and removes the directory', () => {
    expect(installEngineCommand).toBe(
      'd=$(mktemp -d /tmp/belt-install.XXXXXXXX) || exit 1; cat > "$d/install.sh" && sh "$d/install.sh" "$d/installer.sh" </dev/null; rc=$?; rm -rf -- "$d"; exit $rc',
    )
  })

  it.each([
    // [url, version, its line in the script, the download, the last line]
    ['https://get.docker.com', undefined, 'url=https://get.docker.com', 'curl -fsSL --proto =https "$url" -o "$installer"', ' sh "$installer"'],
    ["https://example.com/it's.sh", '24.0', "url='https://example.com/it'\\''s.sh'", 'curl -fsSL --proto =https "$url" -o "$installer"', 'VERSION=24.0 sh "$installer"'],
    ['http://10.231.0.1:4000/get.sh', undefined, 'url=http://10.231.0.1:4000/get.sh', 'curl -fsSL  "$url" -o "$installer"', ' sh "$installer"'],
  ])('install script for %s (version %s)', (url, version, urlLine, curl, lastLine) => {
    const s = installScript(debian, withUrl(url, version), templates)
    const lines = s.trimEnd().split('\n')
    expect(lines).toContain(urlLine)
    expect(s).toContain(curl)
    expect(lines.at(-1)).toBe(lastLine)
    expect(s).toContain('installer=${1:?')
    expect(s).not.toMatch(/\/tmp\//)
    expect(s).not.toMatch(/\{\{/)
  })

  it('refuses a recorded plain-http public URL and an OS it cannot install on', () => {
    expect(() => installScript(debian, withUrl('http://get.docker.com'), templates)).toThrow(/^--engine-install-url: http:\/\/get\.docker\.com is plain http/)
    expect(() => installScript(alpine, emptyEngineConfig(), templates)).toThrow(/belt installs only on Debian\/Ubuntu/)
  })
})

/**
 * A real shell runs installEngineCommand with the wrapper on stdin, downloading from a server on
 * 127.0.0.1 an installer longer than a pipe buffer that fails if it runs twice and writes a marker
 * at its end. The old wrapper (downloading over itself) ran its tail a second time.
 */
describe('installEngineCommand in a real shell', () => {
  let tmp: string
  let server: http.Server
  let url: string
  let served = 0
  let body = ''

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'belt-install-url-'))
    const m = path.join(tmp, 'marker')
    const padding = Array.from({length: 3000}, (_, i) => `# padding line ${String(i).padStart(5, '0')} ${'x'.repeat(60)}`).join('\n')
    body = [
      '#!/bin/sh',
      'set -eu',
      `m=${m}`,
      'if [ -e "$m.started" ]; then echo twice >> "$m.twice"; exit 1; fi',
      'echo "$0" > "$m.started"',
      padding,
      'echo "VERSION=${VERSION:-}" >> "$m.end"',
      '',
    ].join('\n')
    server = http.createServer((req, res) => {
      if (req.url === '/fail.sh') {
        res.end('exit 3\n')
        return
      }
      served++
      res.end(body)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((r) => server?.close(r))
    await rm(tmp, {recursive: true, force: true})
  })

  const runCommand = (script: string) =>
    new Promise<{code: number; stderr: string}>((resolve) => {
      const child = execFile('/bin/sh', ['-c', installEngineCommand], (err, _stdout, stderr) => resolve({code: err ? Number(err.code ?? 1) : 0, stderr}))
      child.stdin!.end(script)
    })

  it('runs the installer exactly once, to its end, from a path that is not the script and is gone afterwards', async () => {
    expect(body.length).toBeGreaterThan(128 * 1024)
    const r = await runCommand(installScript(debian, withUrl(`${url}/get.sh`, '24.0'), templates))
    expect(r.code, r.stderr).toBe(0)
    const m = path.join(tmp, 'marker')
    expect(served).toBe(1)
    expect(existsSync(`${m}.twice`)).toBe(false)
    expect(readFileSync(`${m}.end`, 'utf8')).toBe('VERSION=24.0\n')
    const installer = readFileSync(`${m}.started`, 'utf8').trim()
    expect(installer).toMatch(/^\/tmp\/belt-install\.[A-Za-z0-9]{8}\/installer\.sh$/)
    expect(existsSync(path.dirname(installer))).toBe(false)
  })

  it("keeps the installer's exit status and still removes its directory", async () => {
    const r = await runCommand(installScript(debian, withUrl(`${url}/fail.sh`), templates))
    expect(r.code).toBe(3)
  })
})
