import type { IncomingMessage, ServerResponse } from 'node:http'

/** A response computed by a handler, written by {@link writeResponse}. @internal */
export interface PlannedResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** An RFC 6749 §5.2 error, as a handler result. @internal */
export interface OAuthErrorResult {
  readonly status: number
  readonly error: string
  readonly errorDescription: string
  readonly headers?: Readonly<Record<string, string>>
}

/** The headers every token endpoint response carries (RFC 6749 §5.1). @internal */
export const TOKEN_RESPONSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json',
  'cache-control': 'no-store',
  pragma: 'no-cache',
})

/** Builds a JSON response with the token endpoint's no-store headers. @internal */
export function jsonResponse(
  status: number,
  json: unknown,
  headers: Readonly<Record<string, string>> = {},
): PlannedResponse {
  return { status, headers: { ...TOKEN_RESPONSE_HEADERS, ...headers }, body: JSON.stringify(json) }
}

/** Builds an RFC 6749 §5.2 error response. @internal */
export function oauthErrorResponse(result: OAuthErrorResult): PlannedResponse {
  return jsonResponse(
    result.status,
    { error: result.error, error_description: result.errorDescription },
    result.headers,
  )
}

/** Writes a planned response unless the socket is already gone. @internal */
export function writeResponse(res: ServerResponse, response: PlannedResponse): void {
  if (res.destroyed || res.headersSent) return
  res.writeHead(response.status, { ...response.headers, 'content-length': Buffer.byteLength(response.body) })
  res.end(response.body)
}

/** Thrown by {@link readBody} when the body exceeds its limit. @internal */
export class BodyTooLargeError extends Error {
  constructor() {
    super('request body too large')
    this.name = 'BodyTooLargeError'
  }
}

/** Reads a request body as UTF-8, up to `limitBytes`. @internal */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limitBytes) throw new BodyTooLargeError()
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The media type of a `Content-Type` header, lower-cased, without parameters. @internal */
export function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined
  return contentType.split(';', 1)[0]?.trim().toLowerCase()
}

/** Resolves after `ms` of real time, or at once when `ms` is 0. @internal */
export function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve()
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Request headers safe to keep in a log: credential-bearing values (`Authorization`, `DPoP`) are
 * reduced to a marker, and cookies are dropped. @internal
 */
export function sanitizeHeaders(req: IncomingMessage): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'cookie') continue
    if (name === 'authorization' || name === 'proxy-authorization') {
      const scheme = (Array.isArray(value) ? value[0] : value)?.split(' ', 1)[0] ?? ''
      headers[name] = `${scheme} [redacted]`
      continue
    }
    if (name === 'dpop') {
      headers[name] = '[redacted]'
      continue
    }
    headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return headers
}
