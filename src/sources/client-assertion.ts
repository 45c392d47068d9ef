import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { inspect } from 'node:util'
import { TokenkeeperError } from '../errors.js'
import type { ClientAuth, ClientAuthContext } from './auth.js'
import { fingerprint } from './fingerprint.js'
import { MAX_CREDENTIAL_FILE_BYTES, readFailure, readSmallFile, stampOf } from './small-file.js'

/** What a client assertion provider is told about the request it is for. */
export interface ClientAssertionContext {
  /** The client's `client_id` as configured (an empty string when the source has none). */
  readonly clientId: string
  /** The token endpoint URL: the `aud` a platform-issued assertion is usually minted for. */
  readonly tokenUrl: string
  /** The current time in epoch milliseconds (wall clock). */
  readonly now: number
}

/** Returns the current client assertion (a JWT another party issued). Called for every token request. */
export type ClientAssertionProvider = (context: ClientAssertionContext) => string | Promise<string>

/** Options of {@link clientAssertion}. */
export interface ClientAssertionOptions {
  /**
   * A stable, non-secret name for where the assertions come from (such as `'k8s-sa'` or
   * `'github-oidc'`). It is part of the cache key and of error messages; the assertion never is.
   */
  readonly id: string
}

const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const VISIBLE_ASCII = /^[\x21-\x7e]+$/

/** A JWT's `exp` in epoch seconds, when the value is a JWT that has one. Never verifies. @internal */
export function expiryOf(assertion: string): number | undefined {
  const parts = assertion.split('.')
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined
  } catch {
    return undefined
  }
}

/**
 * A JWT's `exp` (seconds) for a message: its ISO date, or the number itself when it is outside
 * the range of dates (`-1e20`), which `toISOString()` would throw a `RangeError` for.
 */
export function describeExp(exp: number): string {
  const date = new Date(exp * 1000)
  return Number.isNaN(date.getTime()) ? String(exp) : date.toISOString()
}

/**
 * Checks an assertion before it is sent: a non-empty visible-ASCII string, and not expired when
 * it is a JWT with `exp`. Errors name `where`, never the assertion.
 */
function checked(assertion: unknown, where: string, now: number): string {
  if (typeof assertion !== 'string' || assertion.trim() === '') {
    throw new TokenkeeperError('ASSERTION_UNAVAILABLE', `the client assertion from ${where} is empty`, {
      retryable: true,
    })
  }
  const value = assertion.trim()
  if (!VISIBLE_ASCII.test(value)) {
    throw new TokenkeeperError(
      'ASSERTION_UNAVAILABLE',
      `the client assertion from ${where} holds characters a JWT cannot hold (spaces, control or non-ASCII characters)`,
      { retryable: true },
    )
  }
  const exp = expiryOf(value)
  if (exp !== undefined && exp * 1000 <= now) {
    const ago = Math.round((now - exp * 1000) / 1000)
    throw new TokenkeeperError(
      'ASSERTION_EXPIRED',
      `the client assertion from ${where} expired ${ago} s ago (exp ${describeExp(exp)}); the platform should have replaced it`,
      { retryable: true },
    )
  }
  return value
}

/** Sends assertions another party issued, as `private_key_jwt` does with its own (RFC 7523 §2.2). */
class IssuedAssertion implements ClientAuth {
  readonly method = 'private_key_jwt'
  readonly fingerprint: string
  readonly #where: string
  readonly #next: (context: ClientAssertionContext) => Promise<string>

  constructor(kind: string, where: string, next: (context: ClientAssertionContext) => Promise<string>) {
    this.#where = where
    this.#next = next
    this.fingerprint = fingerprint(kind, where)
  }

  async apply(context: ClientAuthContext): Promise<readonly string[]> {
    const { clientId, tokenUrl, now } = context
    const assertion = checked(await this.#next({ clientId, tokenUrl, now }), this.#where, now)
    context.body.set('client_id', clientId)
    context.body.set('client_assertion_type', JWT_BEARER_ASSERTION)
    context.body.set('client_assertion', assertion)
    return [assertion]
  }

  toJSON(): Record<string, string> {
    return { method: this.method, fingerprint: this.fingerprint, from: this.#where }
  }

  [inspect.custom](): string {
    return `ClientAuth ${inspect(this.toJSON())}`
  }
}

/**
 * Authenticates with a client assertion someone else issues (workload identity federation: a
 * platform-issued JWT sent as `client_assertion`). `provider` is called for every token request,
 * so a rotated assertion is used at once. The assertion is a secret: it is never part of the key,
 * an error, an event, `inspect` or JSON; an expired JWT is refused before any request
 * (`ASSERTION_EXPIRED`), an empty answer is `ASSERTION_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * const auth = clientAssertion(() => readGitHubOidcToken(), { id: 'github-oidc' })
 * ```
 */
export function clientAssertion(
  provider: ClientAssertionProvider,
  options: ClientAssertionOptions,
): ClientAuth {
  if (typeof provider !== 'function') throw new TypeError('clientAssertion: provider must be a function')
  const id = (options as Partial<ClientAssertionOptions> | undefined)?.id
  if (typeof id !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(id)) {
    throw new TypeError(
      'clientAssertion: options.id must name where the assertions come from (1-200 visible characters)',
    )
  }
  const where = `provider "${id}"`
  return new IssuedAssertion('client-assertion', where, fromProvider(provider, where))
}

/**
 * Authenticates with a client assertion the platform writes to a file: a Kubernetes projected
 * service-account token, `AZURE_FEDERATED_TOKEN_FILE`, a file a CI job writes. The file is read
 * for every token request (a `stat` skips the read while the file is unchanged), so a rotated
 * assertion is used at once and an expired one is never sent from memory. An unreadable or
 * empty file is `ASSERTION_UNAVAILABLE`, an expired JWT `ASSERTION_EXPIRED`; both are retryable
 * (the platform replaces the file) and name the path, never the content.
 *
 * @example
 * ```ts
 * const source = clientCredentials({
 *   tokenUrl: `https://login.microsoftonline.com/${process.env.AZURE_TENANT_ID}/oauth2/v2.0/token`,
 *   clientId: process.env.AZURE_CLIENT_ID!,
 *   auth: clientAssertionFile(process.env.AZURE_FEDERATED_TOKEN_FILE!),
 *   scopes: ['https://management.azure.com/.default'],
 * })
 * ```
 */
export function clientAssertionFile(path: string): ClientAuth {
  if (typeof path !== 'string' || path === '')
    throw new TypeError('clientAssertionFile: path must be a non-empty string')
  const absolute = resolve(path)
  const where = `file ${absolute}`
  return new IssuedAssertion('client-assertion-file', where, fromFile(absolute, where))
}

function fromProvider(
  provider: ClientAssertionProvider,
  where: string,
): (context: ClientAssertionContext) => Promise<string> {
  return async (context) => {
    try {
      return await provider(context)
    } catch (error) {
      throw new TokenkeeperError(
        'ASSERTION_UNAVAILABLE',
        `the client assertion ${where} failed (its own error is error.cause)`,
        {
          retryable: true,
          cause: error,
        },
      )
    }
  }
}

function fromFile(absolute: string, where: string): () => Promise<string> {
  let cached: { readonly stamp: string; readonly value: string } | undefined
  return async () => {
    try {
      if (cached !== undefined && stampOf(await stat(absolute)) === cached.stamp) return cached.value
      // Only a regular file of at most 64 KiB: a FIFO would hold a thread until someone writes
      // to it, a device such as /dev/zero never ends. The stamp is the open file's own.
      const { text, stamp } = await readSmallFile(absolute, MAX_CREDENTIAL_FILE_BYTES)
      cached = { stamp, value: text }
      return text
    } catch (error) {
      cached = undefined
      throw new TokenkeeperError(
        'ASSERTION_UNAVAILABLE',
        `the client assertion ${where} cannot be read (${readFailure(error)})`,
        { retryable: true },
      )
    }
  }
}

/**
 * An assertion issued by someone else, for the JWT-bearer grant (RFC 7523 §2.1): read from a
 * provider or a file for every request, with the same checks as a client assertion.
 *
 * @internal
 */
export interface IssuedAssertionReader {
  /** `provider "id"` or `file /path`: for messages and `toJSON`, never the assertion. */
  readonly where: string
  /** A fingerprint of `where`, for the source's key. */
  readonly fingerprint: string
  read(context: ClientAssertionContext): Promise<string>
}

/** Builds an {@link IssuedAssertionReader}; `TypeError` on bad input. @internal */
export function issuedAssertionReader(
  input: ClientAssertionProvider | { readonly file: string },
  id: string | undefined,
  what: string,
): IssuedAssertionReader {
  let where: string
  let next: (context: ClientAssertionContext) => Promise<string>
  if (typeof input === 'function') {
    if (typeof id !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(id)) {
      throw new TypeError(
        `${what}: assertionId must name where the assertions come from (1-200 visible characters)`,
      )
    }
    where = `provider "${id}"`
    next = fromProvider(input, where)
  } else if (
    typeof input === 'object' &&
    input !== null &&
    typeof input.file === 'string' &&
    input.file !== ''
  ) {
    const absolute = resolve(input.file)
    where = `file ${absolute}`
    next = fromFile(absolute, where)
  } else {
    throw new TypeError(`${what}: assertion must be a function or { file: path }`)
  }
  return {
    where,
    fingerprint: fingerprint('issued-assertion', where),
    read: async (context) => checked(await next(context), where, context.now),
  }
}
