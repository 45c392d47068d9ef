import type { ServerResponse } from 'node:http'
import type { TokenServerFault } from './faults.js'
import { TOKEN_RESPONSE_HEADERS, jsonResponse, sleep, writeResponse, type PlannedResponse } from './http.js'

/** Faults that replace the response entirely (no token is issued). @internal */
export type ReplacingFault = Exclude<
  TokenServerFault,
  { kind: 'latency' | 'slow-body' | 'token' | 'hang' | 'reset' }
>

const HTML_PAGE = `<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>tokenkeeper-testing</center></body></html>
`

/** The planned response for a fault with a fixed body. @internal */
function plannedFaultResponse(fault: Exclude<ReplacingFault, { kind: 'huge' }>): PlannedResponse {
  switch (fault.kind) {
    case 'status': {
      const headers: Record<string, string> = { ...fault.headers }
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
      if (fault.error !== undefined) {
        const json: Record<string, string> = { error: fault.error }
        if (fault.errorDescription !== undefined) json.error_description = fault.errorDescription
        if (fault.errorUri !== undefined) json.error_uri = fault.errorUri
        return jsonResponse(fault.status, json, headers)
      }
      return {
        status: fault.status,
        headers: { ...headers, 'content-type': fault.contentType ?? 'text/plain; charset=utf-8' },
        body: fault.body ?? '',
      }
    }
    case 'html':
      return {
        status: fault.status ?? 502,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: HTML_PAGE,
      }
    case 'body':
      return {
        status: fault.status ?? 200,
        headers: { ...TOKEN_RESPONSE_HEADERS, 'content-type': fault.contentType ?? 'application/json' },
        body: fault.body,
      }
    case 'json':
      return {
        status: fault.status ?? 200,
        headers: TOKEN_RESPONSE_HEADERS,
        body: JSON.stringify(fault.json) ?? '',
      }
    case 'redirect':
      return { status: fault.status ?? 302, headers: { location: fault.location }, body: '' }
  }
}

/** Resolves when `res` can take more data, or has closed. */
const drained = (res: ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })

/** Streams `bytes` bytes of a never-ending-looking token response, honouring backpressure. */
async function streamHuge(res: ServerResponse, bytes: number, declareLength: boolean): Promise<void> {
  res.writeHead(200, {
    ...TOKEN_RESPONSE_HEADERS,
    ...(declareLength ? { 'content-length': String(bytes) } : {}),
  })
  const head = '{"access_token":"tkt_'
  const tail = '"}'
  const framed = bytes >= head.length + tail.length
  let remaining = framed ? bytes - head.length - tail.length : bytes
  if (framed) res.write(head)
  const block = Buffer.alloc(64 * 1024, 'x')
  while (remaining > 0 && !res.destroyed) {
    const size = Math.min(block.length, remaining)
    remaining -= size
    if (!res.write(size === block.length ? block : block.subarray(0, size))) await drained(res)
  }
  if (!res.destroyed) res.end(framed ? tail : undefined)
}

/** Writes a response with headers at once and the body in pieces spread over `ms`. @internal */
export async function dripResponse(
  res: ServerResponse,
  response: PlannedResponse,
  ms: number,
): Promise<void> {
  if (res.destroyed || res.headersSent) return
  const body = Buffer.from(response.body)
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) })
  res.flushHeaders()
  const pieces = Math.max(1, Math.min(10, body.length))
  const size = Math.ceil(body.length / pieces)
  for (let offset = 0; offset < body.length; offset += size) {
    await sleep(ms / pieces)
    if (res.destroyed) return
    res.write(body.subarray(offset, offset + size))
  }
  if (!res.destroyed) res.end()
}

/** Sends the response a replacing fault calls for; resolves with the status sent. @internal */
export async function respondWithFault(res: ServerResponse, fault: ReplacingFault): Promise<number> {
  if (fault.kind === 'huge') {
    await streamHuge(res, fault.bytes, fault.declareLength ?? false)
    return 200
  }
  const response = plannedFaultResponse(fault)
  writeResponse(res, response)
  return response.status
}
