import type { IncomingMessage } from 'node:http'
import { presentedCredentials } from './client-auth.js'
import { sanitizeHeaders } from './http.js'
import { parseScope, type TokenRequestInput } from './token-endpoint.js'
import type { TokenRequestRecord } from './types.js'

/** A record the server fills in as the request progresses. @internal */
export type MutableRecord = { -readonly [K in keyof TokenRequestRecord]: TokenRequestRecord[K] }

/**
 * The token request log: one record per request, created synchronously on arrival, never holding a
 * secret, assertion or token. Keeps the newest `max` records. @internal
 */
export class RequestLog {
  readonly records: MutableRecord[] = []
  readonly #byClient = new Map<string, number>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  /** Logs an arriving request (headers sanitized, body not yet read). */
  start(req: IncomingMessage, at: number): MutableRecord {
    const record: MutableRecord = {
      at,
      method: req.method ?? 'GET',
      clientId: undefined,
      grantType: undefined,
      authMethod: undefined,
      scopes: [],
      status: undefined,
      error: undefined,
      fault: undefined,
      headers: sanitizeHeaders(req),
      contentType: req.headers['content-type'],
    }
    this.records.push(record)
    if (this.records.length > this.#max) this.records.shift()
    return record
  }

  /** Adds what the body says (claimed client, grant type, method, requested scopes). */
  describe(record: MutableRecord, input: TokenRequestInput): void {
    const credentials = presentedCredentials(input.authorization, input.form)
    record.clientId = credentials.claimedClientId
    record.authMethod = credentials.method
    record.grantType = input.form.get('grant_type') ?? undefined
    record.scopes = parseScope(input.form.get('scope')) ?? []
    if (record.clientId !== undefined) {
      this.#byClient.set(record.clientId, (this.#byClient.get(record.clientId) ?? 0) + 1)
    }
  }

  byClient(): Record<string, number> {
    return Object.fromEntries(this.#byClient)
  }
}
