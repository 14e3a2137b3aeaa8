import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readdir, stat} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** One request the repository answered. */
export interface RepoRequest {
  method: string
  /** The decoded path, e.g. `/Packages` or `/docker.io_20.10.24+dfsg1-1_amd64.deb`. */
  path: string
  status: number
  /** Who asked (a test host's address, when the host's apt fetched it). */
  remoteAddress: string
  /** True once the whole response was handed to the connection. */
  complete: boolean
}

/** A flat APT repository (`deb [trusted=yes] URL ./`) served over HTTP by the test process. */
export interface AptRepo {
  /** `http://HOST:PORT/` */
  url: string
  /** The sources.list line that points apt at this repository. */
  sourcesLine: string
  /** The .deb files served, by file name. */
  debs: ReadonlyMap<string, {package: string; version: string; size: number}>
  /** Every request, in order. */
  requests: RepoRequest[]
  /** How many times `fileName` was sent in full (GET, 200, complete). */
  served(fileName: string): number
  close(): Promise<void>
}

interface Entry {
  body: Buffer | {file: string}
  size: number
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/**
 * The Packages stanza of one .deb: its control fields as `dpkg-deb -f` prints them (multi-line
 * Description included), plus what apt needs to fetch and verify it.
 */
async function stanza(file: string): Promise<{text: string; package: string; version: string; size: number}> {
  const control = (await run('dpkg-deb', ['-f', file], {maxBuffer: 4 * 1024 * 1024})).stdout.replace(/\n+$/, '')
  const field = (name: string) => new RegExp(`^${name}: *(.*)$`, 'm').exec(control)?.[1]?.trim()
  const pkg = field('Package')
  const version = field('Version')
  if (!pkg || !version) throw new Error(`${file}: not a Debian package (no Package/Version in its control file)`)
  const {size} = await stat(file)
  const text = `${control}\nFilename: ./${path.basename(file)}\nSize: ${size}\nSHA256: ${await sha256File(file)}\n`
  return {text, package: pkg, version, size}
}

/**
 * Serves every `*.deb` of `debDir` as a flat repository on `host` (an address of this machine) and a
 * free port: `Packages` generated here from the packages' own control fields, and an unsigned
 * `Release` listing it (the sources line says `trusted=yes`). Only those files exist; anything else
 * is a 404. Requests are recorded so that a test can tell what a host really downloaded.
 */
export async function serveAptRepo(debDir: string, host: string): Promise<AptRepo> {
  const names = (await readdir(debDir)).filter((f) => f.endsWith('.deb')).sort()
  if (names.length === 0) throw new Error(`no .deb files in ${debDir}`)
  const files = new Map<string, Entry>()
  const debs = new Map<string, {package: string; version: string; size: number}>()
  const stanzas: string[] = []
  for (const name of names) {
    const file = path.join(debDir, name)
    const s = await stanza(file)
    stanzas.push(s.text)
    debs.set(name, {package: s.package, version: s.version, size: s.size})
    files.set(name, {body: {file}, size: s.size})
  }
  const packages = Buffer.from(stanzas.join('\n'))
  const sha = createHash('sha256').update(packages).digest('hex')
  const release = Buffer.from(
    [
      'Origin: belt-test',
      'Label: belt-test',
      `Date: ${new Date().toUTCString()}`,
      'SHA256:',
      ` ${sha} ${packages.length} Packages`,
      '',
    ].join('\n'),
  )
  files.set('Packages', {body: packages, size: packages.length})
  files.set('Release', {body: release, size: release.length})

  const requests: RepoRequest[] = []
  const server = http.createServer((req, res) => {
    let rel: string
    try {
      rel = path.posix.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '')
    } catch {
      rel = ''
    }
    const entry = files.get(rel)
    const status = req.method !== 'GET' && req.method !== 'HEAD' ? 405 : entry ? 200 : 404
    const record: RepoRequest = {method: req.method ?? '', path: `/${rel}`, status, remoteAddress: req.socket.remoteAddress ?? '', complete: false}
    requests.push(record)
    res.once('finish', () => (record.complete = true))
    if (status !== 200 || !entry) {
      res.writeHead(status, {'content-type': 'text/plain', connection: 'close'}).end(status === 404 ? 'not found\n' : 'method not allowed\n')
      return
    }
    res.writeHead(200, {'content-type': 'application/octet-stream', 'content-length': entry.size})
    if (req.method === 'HEAD') res.end()
    else if (Buffer.isBuffer(entry.body)) res.end(entry.body)
    else createReadStream(entry.body.file).once('error', () => res.destroy()).pipe(res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${host}:${port}/`
  return {
    url,
    sourcesLine: `deb [trusted=yes] ${url} ./`,
    debs,
    requests,
    served: (fileName) => requests.filter((r) => r.method === 'GET' && r.status === 200 && r.complete && r.path === `/${fileName}`).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
