/**
 * Secrets in outputs: the one place that knows every form in which tokenkeeper itself sends a
 * secret (client secret, Basic credentials, client or JWT-bearer assertion, access token, secret
 * header, parameter or query values), and that removes those forms from text that leaves the
 * library: error messages and `cause`s, server text kept in errors (`error_description`,
 * `WWW-Authenticate`), and the CLI's stderr. A fix to this path has no second copy to miss.
 *
 * A secret is removed in each form the library produced or a server may echo back:
 * - raw;
 * - percent-encoded in any way: `application/x-www-form-urlencoded` (how a form body carries it:
 *   space as `+`), `encodeURIComponent`, or any other mix of encoded and plain characters (as
 *   Python's `quote`, Java's `URLEncoder` or a strict RFC 3986 encoder write them), with upper- or
 *   lower-case hex digits;
 * - JSON-escaped, as a server quotes it in a JSON string inside another one (`\/` for `/`,
 *   `\"`, `\u00e9` for non-ASCII characters), and HTML-escaped (`&amp;`, `&#x2F;`, `&#47;`);
 * - base64 and base64url (with or without padding), each of them also percent-encoded or
 *   JSON-escaped;
 * - for Basic credentials (RFC 6749 §2.3.1): the base64 of `id:secret` (each part form-encoded
 *   first) and its decoded form; the id is not a secret and stays;
 * - for a URL: the decoded user-info and every query value, as sent and decoded.
 *
 * Text from elsewhere whose secrets are not known here (an injected `fetch`'s error that quotes
 * its request) is also cleared of what looks like a credential: `Bearer`/`Basic`/`DPoP`
 * credentials, `authorization` header values, and the values of credential form fields and JSON
 * members (`client_secret=`, `"access_token":`, ...).
 */

/** What replaces a secret. */
export const REDACTED = '[redacted]'

/** Shorter values are not treated as secrets: removing them would garble every message. */
const MIN_SECRET_LENGTH = 4

/** Longest source of one scrubbing regular expression: V8 refuses much larger ones. */
const MAX_PATTERN_SOURCE = 20_000

/** `application/x-www-form-urlencoded` encoding of one value (WHATWG URL, as `URLSearchParams` writes it). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1)
}

/**
 * The value of an RFC 6749 §2.3.1 `client_secret_basic` header: `Basic ` and the base64 of the
 * form-encoded client id, `:`, and the form-encoded secret.
 */
export function basicAuthorization(clientId: string, secret: string): { header: string; secrets: string[] } {
  const userInfo = `${formEncode(clientId)}:${formEncode(secret)}`
  const credentials = Buffer.from(userInfo).toString('base64')
  return { header: `Basic ${credentials}`, secrets: [secret, credentials, formEncode(secret)] }
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

/** The forms of one secret value the library may have sent or a server may echo. */
function formsOf(secret: string): string[] {
  const base64 = Buffer.from(secret).toString('base64')
  return [
    secret,
    formEncode(secret),
    encodeURIComponent(secret),
    base64,
    base64.replace(/=+$/, ''),
    Buffer.from(secret).toString('base64url'),
  ]
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const hexDigit = (digit: string): string =>
  /[0-9]/.test(digit) ? digit : `[${digit.toLowerCase()}${digit.toUpperCase()}]`

/** A regular expression source matching `hex` (digits only) with its letters in either case. */
function hexPattern(hex: string): string {
  return [...hex].map(hexDigit).join('')
}

/** The two-character JSON escapes (RFC 8259 §7), as regular expression sources. */
const JSON_SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\\\"',
  '\\': '\\\\\\\\',
  '/': '\\\\/',
  '\b': '\\\\b',
  '\f': '\\\\f',
  '\n': '\\\\n',
  '\r': '\\\\r',
  '\t': '\\\\t',
}

/** The named HTML character references an HTML-escaping encoder writes. */
const HTML_NAMED_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
}

/**
 * A regular expression source matching one character of a secret as any encoder may write it:
 * raw, percent-encoded (its UTF-8 bytes, hex digits in either case: a form body, a query, any
 * mix of encoded and plain characters as Python's, Java's or a strict RFC 3986 encoder writes
 * them), `+` for a space (a form body), JSON-escaped (`\/`, `\"`, `\u00e9`: how a server's JSON
 * quotes it inside another JSON string), or HTML-escaped (`&amp;`, `&#x2F;`, `&#47;`). Letters and digits are never encoded, so they stay
 * themselves and the pattern stays small.
 */
function charPattern(char: string): string {
  if (/^[A-Za-z0-9]$/.test(char)) return char
  const ways = [escapeRegExp(char)]
  ways.push(
    [...Buffer.from(char)].map((byte) => `%${hexPattern(byte.toString(16).padStart(2, '0'))}`).join(''),
  )
  if (char === ' ') ways.push('\\+')
  const short = JSON_SHORT_ESCAPES[char]
  if (short !== undefined) ways.push(short)
  const named = HTML_NAMED_ENTITIES[char]
  if (named !== undefined) ways.push(named)
  const codePoint = char.codePointAt(0) ?? 0
  ways.push(`&#0*${codePoint};`, `&#[xX]0*${hexPattern(codePoint.toString(16))};`)
  let units = ''
  for (let i = 0; i < char.length; i++)
    units += `\\\\u${hexPattern(char.charCodeAt(i).toString(16).padStart(4, '0'))}`
  ways.push(units)
  return `(?:${ways.join('|')})`
}

/** A regular expression source matching `form` with each character in any of its encodings ({@link charPattern}). */
function patternOf(form: string): string {
  let pattern = ''
  for (const char of form) pattern += charPattern(char)
  return pattern
}

/**
 * The secrets one operation holds (a token request, a call with a token, a CLI run), and a
 * scrubber for them. Values shorter than 4 characters are ignored.
 *
 * @internal
 */
export class SecretSet {
  readonly #forms = new Set<string>()
  /** Regular expressions over the forms, longest forms first; `null` until the next scrub. */
  #patterns: readonly RegExp[] | null = null
  /** Forms too long for a regular expression: replaced as they are (and with `/` JSON-escaped). */
  #literals: readonly string[] = []

  constructor(values: Iterable<string | undefined> = []) {
    for (const value of values) this.add(value)
  }

  /** Adds a secret value in all its forms. */
  add(value: string | undefined): this {
    if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return this
    for (const form of formsOf(value)) this.#forms.add(form)
    // A Basic credential: its decoded `id:secret` form too (the secret part is added raw and
    // decoded; the id is not a secret).
    if (/^[A-Za-z0-9+/]{4,}={0,2}$/.test(value) && value.length % 4 === 0) {
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon >= 0 && /^[\x20-\x7e]+$/.test(decoded) && Buffer.from(decoded).toString('base64') === value) {
        const secretPart = decoded.slice(colon + 1)
        if (secretPart.length >= MIN_SECRET_LENGTH) {
          this.#forms.add(secretPart)
          const plain = safeDecode(secretPart)
          if (plain !== undefined && plain.length >= MIN_SECRET_LENGTH) {
            for (const form of formsOf(plain)) this.#forms.add(form)
          }
        }
      }
    }
    this.#patterns = null
    return this
  }

  /** Adds a URL's user-info and query values, as written in the URL and decoded. */
  addUrl(url: URL | string): this {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return this
    }
    for (const part of [parsed.username, parsed.password]) this.add(part).add(safeDecode(part))
    for (const pair of parsed.search.replace(/^\?/, '').split('&')) {
      const value = pair.slice(pair.indexOf('=') + 1)
      if (pair.includes('=')) this.add(value).add(safeDecode(value))
    }
    return this
  }

  /** Adds the secrets of another set. */
  addAll(other: SecretSet): this {
    for (const form of other.#forms) this.#forms.add(form)
    this.#patterns = null
    return this
  }

  /** How many forms are known (for tests). */
  get size(): number {
    return this.#forms.size
  }

  /** `text` with every known form of every secret replaced by `[redacted]`. */
  scrub(text: string): string {
    if (this.#patterns === null) this.#compile()
    let result = text
    for (const literal of this.#literals) result = result.split(literal).join(REDACTED)
    for (const pattern of this.#patterns ?? []) result = result.replace(pattern, REDACTED)
    return result
  }

  /**
   * Builds the scrubber: the forms' patterns joined into expressions of at most
   * {@link MAX_PATTERN_SOURCE} characters each (V8 refuses a regular expression that is too
   * large, with a `SyntaxError` whose message quotes the source: the secret), longest forms first.
   * A form whose own pattern is longer (a secret of thousands of characters, such as a large
   * platform-issued JWT) is replaced as it is and with its `/` JSON-escaped; its other encodings
   * are forms of their own (percent-encoded, base64).
   */
  #compile(): void {
    const forms = [...this.#forms].sort((a, b) => b.length - a.length)
    const literals: string[] = []
    const patterns: RegExp[] = []
    let batch: string[] = []
    let size = 0
    const flush = () => {
      if (batch.length > 0) patterns.push(new RegExp(batch.join('|'), 'g'))
      batch = []
      size = 0
    }
    for (const form of forms) {
      const pattern = patternOf(form)
      if (pattern.length > MAX_PATTERN_SOURCE) {
        literals.push(form)
        if (form.includes('/')) literals.push(form.replaceAll('/', '\\/'))
        continue
      }
      if (size + pattern.length + 1 > MAX_PATTERN_SOURCE) flush()
      batch.push(pattern)
      size += pattern.length + 1
    }
    flush()
    this.#literals = literals
    this.#patterns = patterns
  }
}

const NO_SECRETS = new SecretSet()

const CREDENTIAL_SCHEME = /\b(Bearer|Basic|DPoP)(\s+)(?![A-Za-z_][\w-]*\s*=\s*")[A-Za-z0-9\-._~+/]{8,}=*/gi
const AUTHORIZATION_VALUE =
  /\b((?:proxy-)?authorization|x-api-key|api[-_]key|cookie|dpop)(["']?\s*[:=]\s*["']?)[^"'\r\n,;}\]]+/gi
const CREDENTIAL_FIELD =
  /\b(client_secret|client_assertion|assertion|subject_token|actor_token|access_token|refresh_token|id_token|password|code_verifier)=[^&\s"']+/gi
const CREDENTIAL_MEMBER =
  /"(client_secret|client_assertion|assertion|subject_token|actor_token|access_token|refresh_token|id_token|password|authorization)"(\s*:\s*)"(?:[^"\\]|\\.)*"/gi

/**
 * The same members (and the token of tokenkeeper's own stored form, `"value"`, see
 * `serializeToken`) inside another JSON string, their quotes escaped once or more: how a store's
 * error may quote a record whose payload is a serialized token. Unescaped `"value"` members are
 * left alone (a common JSON name); escaped ones are what a stored record looks like.
 */
const ESCAPED_CREDENTIAL_MEMBER =
  /("(?:client_secret|client_assertion|assertion|subject_token|actor_token|access_token|refresh_token|id_token|password|authorization|value)\\+"\s*:\s*)\\+"[^\s"]*"/gi

/** The token of tokenkeeper's own stored form (`serializeToken`) quoted as it is: `{"v":1,"value":"..."`. */
const SERIALIZED_TOKEN_VALUE = /("v"\s*:\s*1\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"/g

/**
 * `text` without anything that looks like a credential, whatever its value: `Bearer ...` and
 * `Basic ...` credentials, `authorization:` header values, credential form fields and JSON
 * members, also inside another JSON string (as a store's error may quote a record). For text
 * whose secrets are not known (another library's error message).
 */
export function scrubCredentialShapes(text: string): string {
  return text
    .replace(CREDENTIAL_MEMBER, `"$1"$2"${REDACTED}"`)
    .replace(ESCAPED_CREDENTIAL_MEMBER, `$1"${REDACTED}"`)
    .replace(SERIALIZED_TOKEN_VALUE, `$1"${REDACTED}"`)
    .replace(CREDENTIAL_FIELD, `$1=${REDACTED}`)
    .replace(AUTHORIZATION_VALUE, `$1$2${REDACTED}`)
    .replace(CREDENTIAL_SCHEME, `$1$2${REDACTED}`)
}

/**
 * Text from outside (a server's `error_description`, a header value) fit for a message: every
 * known secret removed, control characters (line breaks, C1 controls, the Unicode line and
 * paragraph separators U+2028 and U+2029, the bidirectional overrides and isolates that reorder
 * what a log viewer shows) blanked, at most
 * `maxLength` characters. Secrets are removed before the text is cut, so a cut never leaves part
 * of one. `shapes` also removes {@link scrubCredentialShapes} (for another library's text).
 */
export function scrubText(
  text: string,
  secrets: SecretSet = NO_SECRETS,
  maxLength = 200,
  shapes = false,
): string {
  const bounded = text.length > 64 * 1024 ? text.slice(0, 64 * 1024) : text
  const known = secrets.scrub(bounded)
  return (
    (shapes ? scrubCredentialShapes(known) : known)
      // eslint-disable-next-line no-control-regex -- control characters are what is removed
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, ' ')
      .slice(0, maxLength)
  )
}

/** An error and its `cause`s, outermost first, at most 5 deep (a cycle cannot loop). */
interface ErrorLink {
  readonly code?: unknown
  readonly message?: unknown
  readonly cause?: unknown
}

/** The links of an error's `cause` chain, outermost first, at most 5 (a cycle cannot loop). */
export function* causeChain(error: unknown): Generator<ErrorLink> {
  let current = error as ErrorLink | null | undefined
  for (let depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    yield current
    current = current.cause as typeof current
  }
}

/**
 * What is kept of a foreign error (an injected `fetch`'s failure) as `cause`: its name, its
 * scrubbed message and the first system error code in its chain. Never the error itself: errors
 * of HTTP client adapters carry the request, with its `Authorization` header or form body.
 */
export function safeCause(error: unknown, secrets: SecretSet = NO_SECRETS): Error {
  const failure = error as { name?: unknown; message?: unknown } | null | undefined
  const message = typeof failure?.message === 'string' ? failure.message : 'failure'
  const cause = new Error(scrubText(message, secrets, 500, true))
  if (typeof failure?.name === 'string') cause.name = scrubText(failure.name, secrets, 64, true)
  for (const { code } of causeChain(error)) {
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) {
      Object.defineProperty(cause, 'code', { value: code, enumerable: true })
      break
    }
  }
  return cause
}
