import {createReadStream} from 'node:fs'
import {open, stat} from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import type {ClientTls} from '../bootstrap/engine-api.js'
import {EngineApiError} from '../bootstrap/engine-api.js'
import {ExitCode, UserError, oneLine, usageError} from '../errors.js'
import {summarizeNames} from '../names.js'
import {InterruptedError, isInterruption} from '../scheduler/interrupt.js'
import {mapSettled} from '../scheduler/pool.js'
import type {Store} from '../store/store.js'
import type {HostRecord} from '../store/types.js'
import type {EngineEndpoint} from '../swarm/api.js'
import {seconds, type Reporter} from '../ui/reporter.js'
import type {HostOutcome} from './create-hosts.js'
import {endpointOf, storeClientTls} from './swarm.js'

/** Uploads at once by default: each one is bound by the link, and a few fill it. */
export const DEFAULT_LOAD_CONCURRENCY = 8

/** What belt reads of an archive before sending it anywhere. */
export interface ArchiveInfo {
  file: string
  bytes: number
  /** `gzip`, `bzip2`, `xz` or `zstd` when compressed (sent as is: dockerd decompresses), else undefined. */
  compression?: string
  /** The image names the archive's manifest.json tags (empty for a compressed archive or untagged images). */
  tags: string[]
  /** `docker` (manifest.json) or `oci` (index.json only). */
  format?: 'docker' | 'oci'
}

const MAGIC: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
]

/** A tar header's checksum: the sum of its bytes with the checksum field read as spaces. */
function tarChecksumOk(h: Buffer): boolean {
  const recorded = parseInt(h.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8)
  if (!Number.isFinite(recorded)) return false
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!
  return sum === recorded
}

/** A tar size field: octal text, or GNU base-256 (top bit set) for sizes of 8 GiB and more. */
function tarSize(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = 0
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!
    return n
  }
  return parseInt(field.toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8)
}

/**
 * Checks that `file` is an image archive (`docker save` output, or an OCI layout tar) without
 * reading its layers: walks the tar headers (seeking past each entry's data) and reads
 * manifest.json for the image names. A compressed archive is accepted as is (dockerd
 * decompresses gzip, bzip2, xz and zstd). Rejects with a usage error (exit 2) naming the file
 * and what is wrong, before any host is touched.
 */
export async function inspectArchive(file: string): Promise<ArchiveInfo> {
  const abs = path.resolve(file)
  const st = await stat(abs).catch((e: NodeJS.ErrnoException) => {
    throw usageError(`cannot read the image archive ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, 'E_ARCHIVE', 'make one with: docker save -o FILE IMAGE')
  })
  if (!st.isFile()) throw usageError(`the image archive ${file} is not a file`, 'E_ARCHIVE', 'make one with: docker save -o FILE IMAGE')
  const notImage = (why: string) => usageError(`${file} is not an image archive (${why})`, 'E_ARCHIVE', 'make one with docker save -o FILE IMAGE, or scripts/busybox-image.sh')
  const fh = await open(abs, 'r').catch((e: Error) => {
    throw usageError(`cannot read the image archive ${file}: ${e.message}`, 'E_ARCHIVE')
  })
  try {
    const head = Buffer.alloc(512)
    const {bytesRead} = await fh.read(head, 0, 512, 0)
    for (const [name, magic] of MAGIC) if (bytesRead >= magic.length && magic.every((b, i) => head[i] === b)) return {file: abs, bytes: st.size, compression: name, tags: []}
    if (bytesRead < 512 || !tarChecksumOk(head)) throw notImage('not a tar file')
    let offset = 0
    let manifest: string | undefined
    let index = false
    for (;;) {
      const h = Buffer.alloc(512)
      const r = await fh.read(h, 0, 512, offset)
      if (r.bytesRead < 512 || h.every((b) => b === 0)) break
      if (!tarChecksumOk(h)) throw notImage(`a damaged tar header at byte ${offset}`)
      const size = tarSize(h.subarray(124, 136))
      const type = String.fromCharCode(h[156]! || 0x30)
      const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '').replace(/^\.\//, '')
      if ((type === '0' || type === '\0') && name === 'manifest.json') {
        if (size > 16 * 1024 * 1024) throw notImage('its manifest.json is larger than 16 MiB')
        const body = Buffer.alloc(size)
        await fh.read(body, 0, size, offset + 512)
        manifest = body.toString('utf8')
      }
      if (name === 'index.json') index = true
      offset += 512 + Math.ceil(size / 512) * 512
      if (offset > st.size) throw notImage('the tar file is truncated')
    }
    if (manifest === undefined) {
      if (index) return {file: abs, bytes: st.size, tags: [], format: 'oci'}
      throw notImage('no manifest.json in it')
    }
    let entries: {RepoTags?: string[] | null}[]
    try {
      entries = JSON.parse(manifest) as typeof entries
      if (!Array.isArray(entries)) throw new Error('not a list')
    } catch (e) {
      throw notImage(`its manifest.json is not valid: ${oneLine(e)}`)
    }
    return {file: abs, bytes: st.size, tags: entries.flatMap((e) => e.RepoTags ?? []), format: 'docker'}
  } finally {
    await fh.close()
  }
}

/** Sends an archive to one engine and resolves with the names (or IDs) it says it loaded. */
export type ImageUploader = (e: EngineEndpoint, archive: ArchiveInfo, signal?: AbortSignal) => Promise<string[]>

/** How long an upload may go without a byte moving either way before it is given up. */
const IDLE_MS = 120_000

/**
 * `POST /images/load` over the engine's mutual TLS, the archive streamed from disk (never held in
 * memory), once per engine. dockerd answers 200 and then streams JSON messages; an `error` in that
 * stream is a failure. Aborting `signal` destroys the upload (dockerd discards a partial archive).
 */
export function engineImageUploader(tls: ClientTls): ImageUploader {
  return (e, archive, signal) =>
    new Promise<string[]>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? new InterruptedError())
      const req = https.request({
        host: e.address,
        port: e.port,
        method: 'POST',
        path: '/images/load?quiet=1',
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        agent: false,
        timeout: IDLE_MS,
        headers: {'content-type': 'application/x-tar', 'content-length': archive.bytes},
      })
      const onAbort = () => req.destroy(signal!.reason instanceof Error ? signal!.reason : new InterruptedError())
      signal?.addEventListener('abort', onAbort, {once: true})
      const done = (fn: () => void) => {
        signal?.removeEventListener('abort', onAbort)
        fn()
      }
      req.on('timeout', () => req.destroy(new Error(`the engine at ${e.address}:${e.port} moved no data for ${IDLE_MS / 1000} s`)))
      req.on('error', (err) => done(() => reject(err)))
      req.on('response', (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('error', (err) => done(() => reject(err)))
        res.on('end', () =>
          done(() => {
            const status = res.statusCode ?? 0
            const messages = parseJsonStream(text)
            if (status >= 300) {
              const m = messages.find((x) => x.message)?.message ?? text.trim()
              return reject(new EngineApiError(status, '/images/load', m))
            }
            const failed = messages.find((x) => x.error || x.errorDetail?.message)
            if (failed) return reject(new EngineApiError(status, '/images/load', failed.errorDetail?.message ?? failed.error ?? ''))
            resolve(
              messages
                .map((x) => /Loaded image(?: ID)?: (\S+)/.exec(x.stream ?? '')?.[1])
                .filter((x): x is string => Boolean(x)),
            )
          }),
        )
      })
      const body = createReadStream(archive.file)
      body.on('error', (err) => req.destroy(err))
      body.pipe(req)
    })
}

interface LoadMessage {
  stream?: string
  error?: string
  errorDetail?: {message?: string}
  message?: string
}

/** dockerd's answer: JSON objects one after another (newline separated), or plain text. */
export function parseJsonStream(text: string): LoadMessage[] {
  const out: LoadMessage[] = []
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim()
    if (!t) continue
    try {
      out.push(JSON.parse(t) as LoadMessage)
    } catch {
      out.push({stream: t})
    }
  }
  return out
}

/** One host's result; `images` are what its engine said it loaded. */
export interface ImageLoadOutcome extends HostOutcome {
  images?: string[]
}

export interface ImageLoadRequest {
  store: Store
  hosts: readonly HostRecord[]
  archive: ArchiveInfo
  /** Uploads at once (a sliding window). */
  concurrency: number
  reporter: Reporter
  /** The run's Ctrl-C: nothing new starts, uploads in flight are cut (a partial archive loads nothing). */
  signal?: AbortSignal
  /** Injected by unit tests; default {@link engineImageUploader} with the store's client certificate. */
  uploader?: ImageUploader
}

/**
 * `belt image load`: one upload of the archive per host, through a window of `concurrency`, each
 * straight into the host's engine. Every host must have an engine (checked before the first
 * upload: a usage error names the others). A failed host is an outcome, never hiding the others.
 */
export async function loadImageArchive(req: ImageLoadRequest): Promise<ImageLoadOutcome[]> {
  const noEngine = req.hosts.filter((h) => !h.engine).map((h) => h.name)
  if (noEngine.length > 0)
    throw new UserError(`${summarizeNames(noEngine)} ha${noEngine.length === 1 ? 's' : 've'} no engine yet`, {
      code: 'E_NO_ENGINE',
      exit: ExitCode.environment,
      hint: noEngine.length <= 5 ? `bootstrap first with: belt provision ${noEngine.join(' ')}` : 'bootstrap them first with belt provision',
    })
  const upload = req.uploader ?? engineImageUploader(await storeClientTls(req.store))
  const mb = (req.archive.bytes / 1e6).toFixed(1)
  const settled = await mapSettled(
    req.hosts,
    async (h): Promise<ImageLoadOutcome> => {
      const t0 = Date.now()
      const images = await upload(endpointOf(h), req.archive, req.signal)
      const ms = Date.now() - t0
      req.reporter.host(h.name, `loaded ${images.length ? images.join(', ') : 'the archive'} (${mb} MB in ${seconds(ms)})`)
      return {name: h.name, ok: true, phase: h.phase, address: h.machine?.address, ms, images}
    },
    {concurrency: req.concurrency, signal: req.signal},
  )
  return settled.map((s) => {
    if (s.ok) return s.value
    const error = oneLine(s.error)
    if (isInterruption(s.error)) return {name: s.item.name, ok: false, phase: s.item.phase, error: 'interrupted', interrupted: true}
    req.reporter.host(s.item.name, `load failed: ${error}`)
    return {name: s.item.name, ok: false, phase: s.item.phase, error}
  })
}
