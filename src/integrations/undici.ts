/**
 * `tokenkeeper/undici`: {@link tokenInterceptor}, an interceptor for undici 7's
 * `Dispatcher.compose` that sends the manager's tokens by route (also through Node's global
 * `fetch` with `setGlobalDispatcher`) and renews once on a 401. See `docs/INTEGRATIONS.md`.
 *
 * @packageDocumentation
 * @module tokenkeeper/undici
 */
import type { Dispatcher } from 'undici'
import type { Authorization, Authorizer } from '../http/authorizer.js'
import type { TokenManager } from '../manager/manager.js'
import type { TokenSource } from '../sources/types.js'
import { authorizerCache, sourceChooser, type SourceChooser, type SourceRoutes } from './routes.js'
import { BoundedMap } from '../bounded.js'
import { REDIRECT_STATUSES, redirectStep, sameOrigin } from '../http/redirect.js'

export type { RouteRequest, SourceChooser, SourceRoutes } from './routes.js'

type Headers = Dispatcher.DispatchOptions['headers']
type Controller = Dispatcher.DispatchController
type Handler = Dispatcher.DispatchHandler
type ResponseHeaders = Parameters<NonNullable<Handler['onResponseStart']>>[2]

/** The request headers as a flat `[name, value, ...]` list, in any of undici's header forms. */
function flatHeaders(headers: Headers): string[] {
  const flat: string[] = []
  if (headers === undefined || headers === null) return flat
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [name, value] of headers as unknown as [string, string | string[]][]) {
        for (const one of [value].flat()) flat.push(String(name), String(one))
      }
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) flat.push(String(headers[i]), String(headers[i + 1]))
    }
    return flat
  }
  const entries: Iterable<[string, unknown]> =
    Symbol.iterator in headers
      ? (headers as Iterable<[string, unknown]>)
      : Object.entries(headers as Record<string, unknown>)
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue
    for (const one of [value as string | string[]].flat()) flat.push(name, String(one))
  }
  return flat
}

function hasAuthorization(flat: readonly string[]): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === 'authorization') return true
  return false
}

function withAuthorization(flat: readonly string[], sent: Authorization): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    // Own keys only: `in` would also find `constructor`, `tostring`... on the prototype.
    if (!Object.hasOwn(sent.headers, flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!)
  }
  for (const [name, value] of Object.entries(sent.headers)) out.push(name, value)
  return out
}

/** A body undici can send again unchanged: none, a string, bytes or a Blob (not a stream or iterator). */
function isReplayable(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob
  )
}

function firstHeader(headers: ResponseHeaders, name: string): string | null {
  const value = headers?.[name]
  if (value === undefined) return null
  return Array.isArray(value) ? value.join(', ') : String(value)
}

/**
 * The controller handed downstream for the life of a request: it forwards to the connection of
 * the current attempt, so pausing, resuming and aborting reach the retry too.
 */
class AttemptController implements Controller {
  target: Controller | undefined
  #paused = false
  #abortedWith: Error | undefined

  attach(target: Controller): void {
    this.target = target
    if (this.#abortedWith !== undefined) target.abort(this.#abortedWith)
    else if (this.#paused) target.pause()
  }

  get aborted(): boolean {
    return this.#abortedWith !== undefined || (this.target?.aborted ?? false)
  }
  get paused(): boolean {
    return this.#paused
  }
  get reason(): Error | null {
    return this.#abortedWith ?? this.target?.reason ?? null
  }
  get rawHeaders(): NonNullable<Controller['rawHeaders']> | null {
    return this.target?.rawHeaders ?? null
  }
  get rawTrailers(): NonNullable<Controller['rawTrailers']> | null {
    return this.target?.rawTrailers ?? null
  }
  abort(reason: Error): void {
    this.#abortedWith ??= reason
    this.target?.abort(reason)
  }
  pause(): void {
    this.#paused = true
    this.target?.pause()
  }
  resume(): void {
    this.#paused = false
    this.target?.resume()
  }
}

/**
 * The redirects answered to authorized requests, by target URL, until a client follows them:
 * undici's `fetch` (and its redirect interceptor) sends each hop as a new request, which the
 * interceptor must know for one. A hop to another origin than the request's goes without
 * credentials (routes, a chooser or one source notwithstanding); a hop to the same origin gets
 * the token again with a new DPoP proof for its URL. A mark nobody follows lapses after
 * {@link REDIRECT_MARK_MS}.
 */
class RedirectMarks {
  readonly #marks = new BoundedMap<string, { offOrigin: boolean; count: number; until: number }>(1024)

  /** Records the redirect an authorized request to `from` was answered with, if it is one. */
  note(from: URL, method: string, status: number, location: string | null): void {
    if (!REDIRECT_STATUSES.has(status)) return
    const step = redirectStep(status, method, location, from)
    if (step === undefined || step === 'invalid') return
    const key = step.url.href
    const offOrigin = !sameOrigin(step.url, from)
    const mark = this.#marks.peek(key)
    const until = performance.now() + REDIRECT_MARK_MS
    if (mark === undefined || mark.offOrigin !== offOrigin)
      this.#marks.set(key, { offOrigin, count: 1, until })
    else this.#marks.set(key, { offOrigin, count: mark.count + 1, until })
  }

  /** Whether a request to `url` is a redirect hop: `'off-origin'`, `'same-origin'`, or `undefined`. */
  take(url: URL): 'off-origin' | 'same-origin' | undefined {
    const key = url.href
    const mark = this.#marks.peek(key)
    if (mark === undefined) return undefined
    if (mark.count <= 1 || performance.now() > mark.until) this.#marks.delete(key)
    else this.#marks.set(key, { ...mark, count: mark.count - 1 })
    if (performance.now() > mark.until) return undefined
    return mark.offOrigin ? 'off-origin' : 'same-origin'
  }
}

/** How long a redirect answered to an authorized request marks its target (ms). */
const REDIRECT_MARK_MS = 30_000

/** The request headers without the credentials a redirect must not carry on (our token and proof). */
function withoutCredentials(flat: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase()
    if (name !== 'authorization' && name !== 'dpop') out.push(flat[i]!, flat[i + 1]!)
  }
  return out
}

type Phase =
  | { readonly kind: 'pass' }
  | { readonly kind: 'deciding'; readonly chunks: Buffer[]; ended?: ResponseHeaders; failed?: Error }
  | { readonly kind: 'retry'; ended: boolean }
  | { readonly kind: 'refuse'; readonly error: unknown; ended: boolean }

/** One authorized request, through its first attempt and at most one retry. */
class TokenDispatch implements Handler {
  readonly #dispatch: Dispatcher.Dispatch
  readonly #opts: Dispatcher.DispatchOptions
  readonly #handler: Handler
  readonly #authorizer: Authorizer
  readonly #target: { readonly method: string; readonly url: string }
  readonly #headers: string[]
  readonly #replayable: boolean
  readonly #controller = new AttemptController()
  readonly #marks: RedirectMarks
  readonly #url: URL
  #sent: Authorization | undefined
  #retried = false
  #started = false
  #done = false
  #phase: Phase = { kind: 'pass' }

  constructor(
    dispatch: Dispatcher.Dispatch,
    opts: Dispatcher.DispatchOptions,
    handler: Handler,
    authorizer: Authorizer,
    url: URL,
    headers: string[],
    marks: RedirectMarks,
  ) {
    this.#marks = marks
    this.#url = url
    this.#dispatch = dispatch
    this.#opts = opts
    this.#handler = handler
    this.#authorizer = authorizer
    this.#target = { method: opts.method, url: url.href }
    this.#headers = headers
    this.#replayable = isReplayable(opts.body)
  }

  /** Gets a token and sends the request (the first attempt or the retry). */
  async send(): Promise<void> {
    try {
      const signal = (this.#opts as { signal?: unknown }).signal
      this.#sent = await this.#authorizer.authorize(this.#target, {
        signal: signal instanceof AbortSignal ? signal : undefined,
      })
      if (this.#controller.aborted) throw this.#controller.reason ?? new Error('aborted')
      this.#phase = { kind: 'pass' }
      this.#dispatch({ ...this.#opts, headers: withAuthorization(this.#headers, this.#sent) }, this)
    } catch (error) {
      this.#fail(error)
    }
  }

  #fail(error: unknown): void {
    if (this.#done) return
    this.#done = true
    this.#handler.onResponseError?.(
      this.#controller,
      error instanceof Error ? error : new Error(String(error)),
    )
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#controller.attach(controller)
    if (this.#started) return
    this.#started = true
    this.#handler.onRequestStart?.(this.#controller, context)
  }

  onRequestUpgrade(
    _controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    socket: Parameters<NonNullable<Handler['onRequestUpgrade']>>[3],
  ): void {
    this.#handler.onRequestUpgrade?.(this.#controller, statusCode, headers, socket)
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    statusMessage?: string,
  ): void {
    if (this.#sent !== undefined) {
      this.#marks.note(this.#url, this.#opts.method, statusCode, firstHeader(headers, 'location'))
    }
    if ((statusCode !== 401 && statusCode !== 403 && !this.#retried) || this.#sent === undefined) {
      if (this.#sent !== undefined) {
        this.#authorizer.observe(this.#target, this.#sent, {
          status: statusCode,
          dpopNonce: firstHeader(headers, 'dpop-nonce'),
        })
      }
      this.#handler.onResponseStart?.(this.#controller, statusCode, headers, statusMessage)
      return
    }
    // The answer waits (paused, and anything that still arrives is held) until the authorizer
    // has decided: return it, retry with a renewed token, or refuse it.
    const deciding: Phase & { kind: 'deciding' } = { kind: 'deciding', chunks: [] }
    this.#phase = deciding
    controller.pause()
    this.#authorizer
      .afterResponse(
        this.#target,
        this.#sent,
        {
          status: statusCode,
          wwwAuthenticate: firstHeader(headers, 'www-authenticate'),
          dpopNonce: firstHeader(headers, 'dpop-nonce'),
        },
        { retried: this.#retried, replayable: this.#replayable },
      )
      .then(
        (next) => {
          if (next === 'retry' && !this.#controller.aborted) {
            this.#phase = { kind: 'retry', ended: false }
            if (deciding.failed !== undefined || deciding.ended !== undefined) this.#retry()
            else controller.resume()
            return
          }
          this.#phase = { kind: 'pass' }
          this.#handler.onResponseStart?.(this.#controller, statusCode, headers, statusMessage)
          for (const chunk of deciding.chunks) this.#handler.onResponseData?.(this.#controller, chunk)
          if (deciding.failed !== undefined)
            this.#handler.onResponseError?.(this.#controller, deciding.failed)
          else if (deciding.ended !== undefined)
            this.#handler.onResponseEnd?.(this.#controller, deciding.ended)
          else if (!this.#controller.paused) controller.resume()
        },
        (error: unknown) => {
          const refuse: Phase = { kind: 'refuse', error, ended: false }
          this.#phase = refuse
          if (deciding.failed !== undefined || deciding.ended !== undefined) this.#fail(error)
          else controller.resume()
        },
      )
  }

  #retry(): void {
    this.#retried = true
    void this.send()
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    const phase = this.#phase
    if (phase.kind === 'pass') this.#handler.onResponseData?.(this.#controller, chunk)
    else if (phase.kind === 'deciding') phase.chunks.push(chunk)
  }

  onResponseEnd(_controller: Controller, trailers: ResponseHeaders): void {
    const phase = this.#phase
    if (phase.kind === 'pass') {
      this.#done = true
      this.#handler.onResponseEnd?.(this.#controller, trailers)
    } else if (phase.kind === 'deciding') phase.ended = trailers
    else if (phase.kind === 'retry') this.#retry()
    else this.#fail(phase.error)
  }

  onResponseError(_controller: Controller, error: Error): void {
    const phase = this.#phase
    if (phase.kind === 'deciding') phase.failed = error
    else if (phase.kind === 'retry' && !this.#controller.aborted) this.#retry()
    else if (phase.kind === 'refuse') this.#fail(phase.error)
    else this.#fail(error)
  }
}

/**
 * An undici interceptor (`Dispatcher.compose`, undici 7) that sends tokens: each request whose
 * URL one of `routes` covers gets `Authorization` for that route's source; a 401 invalidates
 * exactly the token that was sent (compare-and-delete: 50 concurrent 401s cause one token
 * request) and the request is sent once more with a renewed token when its body can be sent
 * again (none, a string, bytes, a Blob); a 403 `insufficient_scope` fails the request with
 * `InsufficientScopeError`. A request that already carries `Authorization` is left alone.
 *
 * `routes` is a map of URL prefixes to sources (`{ 'https://api.example': source }`), a chooser
 * `({ method, url }) => TokenSource | undefined`, or one source for every request. Routes must
 * not cover your token endpoint unless its requests carry `Authorization` (client_secret_basic):
 * a token request that waits for a token deadlocks until its timeout.
 *
 * @example
 * ```ts
 * import { Agent, setGlobalDispatcher } from 'undici'
 * import { tokenInterceptor } from 'tokenkeeper/undici'
 * setGlobalDispatcher(new Agent().compose(tokenInterceptor(tokens, { 'https://api.example': source })))
 * ```
 */
export function tokenInterceptor(
  tokens: TokenManager,
  routes: SourceRoutes | SourceChooser | TokenSource,
): Dispatcher.DispatchInterceptor {
  const choose = sourceChooser(routes, 'tokenInterceptor')
  const authorizerFor = authorizerCache(tokens)
  const marks = new RedirectMarks()
  return (dispatch) =>
    function tokenkeeperInterceptor(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
      if (opts.origin === undefined || opts.upgrade) return dispatch(opts, handler)
      const url = new URL(opts.path, opts.origin)
      let headers: string[] | undefined
      const hop = marks.take(url)
      if (hop === 'off-origin') {
        // A hop off the origin the token was asked for: no token, and not the old proof.
        return dispatch({ ...opts, headers: withoutCredentials(flatHeaders(opts.headers)) }, handler)
      }
      // A hop on the origin still carries the old token and proof (for the old URL): both are ours.
      if (hop === 'same-origin') headers = withoutCredentials(flatHeaders(opts.headers))
      const source = choose({ method: opts.method, url })
      if (source === undefined) return dispatch(headers === undefined ? opts : { ...opts, headers }, handler)
      headers ??= flatHeaders(opts.headers)
      if (hasAuthorization(headers)) return dispatch(opts, handler)
      void new TokenDispatch(dispatch, opts, handler, authorizerFor(source), url, headers, marks).send()
      return true
    }
}
