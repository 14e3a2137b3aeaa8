import {readFileSync} from 'node:fs'
import path from 'node:path'
import addFormats from 'ajv-formats'
import {OpenAPIBackend} from 'openapi-backend'
import YAML from 'yaml'
import type {Exchange} from '../../drivers/digitalocean/emulator/server.js'

/** DigitalOcean's published OpenAPI document (Apache-2.0), kept in the repository. */
export const DO_SPEC = path.resolve(import.meta.dirname, '../../drivers/digitalocean/spec/digitalocean-openapi.yaml')

/** A validator for DigitalOcean's published OpenAPI document. */
export async function loadDoSpec(): Promise<OpenAPIBackend> {
  const a = new OpenAPIBackend({
    definition: YAML.parse(readFileSync(DO_SPEC, 'utf8')),
    // quick: validators are compiled per operation on first use (the document has ~500 operations).
    quick: true,
    validate: true,
    coerceTypes: true,
    // The document uses a few non-standard formats (uint32, ...): accept them; check the standard ones.
    ajvOpts: {strict: false, unicodeRegExp: false, formats: {uint32: true, int32: true, int64: true, float: true, double: true, string: true}},
    customizeAjv: (ajv: Parameters<typeof addFormats.default>[0]) => {
      addFormats.default(ajv)
      return ajv
    },
  })
  await a.init()
  return a
}

/**
 * Every way one request/response exchange departs from the published document (empty when it
 * conforms): the request, the response body and headers, DigitalOcean's error body shape, and
 * the rate-limit headers every answer carries.
 */
export function specViolations(api: OpenAPIBackend, ex: Exchange): string[] {
  const where = `${ex.method} ${ex.path} -> ${ex.status}`
  const req = {method: ex.method.toLowerCase(), path: ex.path, query: ex.query, headers: ex.headers, body: ex.body}
  const op = api.matchOperation(req)
  if (!op) return [`${where}: no operation in the spec`]
  const out: string[] = []
  const fmt = (errs: unknown) => JSON.stringify(errs).slice(0, 600)
  const r = api.validateRequest(req, op)
  if (!r.valid) out.push(`${where}: request ${fmt(r.errors)}`)
  const body = ex.responseBody === undefined ? null : ex.responseBody
  const s = api.validateResponse(body, op, ex.status)
  if (!s.valid) out.push(`${where}: response body ${fmt(s.errors)}`)
  const h = api.validateResponseHeaders(ex.responseHeaders, op, {statusCode: ex.status})
  if (!h.valid) out.push(`${where}: response headers ${fmt(h.errors)}`)
  if (ex.status >= 400 && ex.status !== 204) {
    const b = ex.responseBody as {id?: unknown; message?: unknown; request_id?: unknown}
    if (typeof b?.id !== 'string' || typeof b?.message !== 'string' || typeof b?.request_id !== 'string') out.push(`${where}: error body is not {id, message, request_id}`)
  }
  for (const hdr of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) if (!(hdr in ex.responseHeaders)) out.push(`${where}: no ${hdr} header`)
  return out
}
