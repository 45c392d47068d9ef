import { inspect } from 'node:util'
import { systemClock, wallTime, type Clock } from '../clock.js'
import { TokenkeeperError } from '../errors.js'
import type { TokenManager } from '../manager/manager.js'
import type { TokenSource } from '../sources/types.js'
import {
  arrayOf,
  checkEntries,
  checkServiceOptions,
  objectOf,
  ServiceClient,
  sourceOptionsOf,
  type CallOptions,
  type LtiServiceOptions,
  type ServiceAnswer,
  type ServiceRequest,
} from './client.js'
import { LtiMediaTypes } from './constants.js'
import { ScopeMismatchError } from './errors.js'
import { checkEndpoint, checkLimit, offeredScopes, type GradeEndpoint } from './ags-claim.js'
import { appendPath, checkSameHost, scoreKey, withQuery } from './links.js'
import type { LtiRegistration } from './registration.js'
import {
  postScoresInBulk,
  type BulkScore,
  type PostScoresOptions,
  type PostScoresResult,
} from './bulk-scores.js'
import { lineItemBody, scoreBody } from './score.js'
import { checkUses, deriveGradeScopes, requireGranted, type GradeUse } from './scopes.js'
import { ltiServiceSource } from './source.js'
import {
  formatMicros,
  postedScoresFor,
  timestampsFor,
  type PostedScores,
  type ScoreTimestamps,
} from './timestamps.js'
import type {
  AgsClaim,
  LineItem,
  LineItemFilters,
  LineItemRef,
  LtiResult,
  NewLineItem,
  ScoreInput,
  ScorePostResult,
} from './types.js'

/**
 * Options of {@link GradeService.fromClaim}.
 *
 * @example
 * ```ts
 * import { GradeService, type GradeServiceOptions } from 'tokenkeeper/lti'
 * const options: GradeServiceOptions = { uses: ['scores'] }
 * const grades = await GradeService.fromClaim(tokens, registration, claim, options)
 * ```
 */
export interface GradeServiceOptions extends LtiServiceOptions {
  /**
   * What the service will be used for; each use adds the scope it needs. Default: every use
   * the claim's scopes allow. Naming only what a job needs keeps its token minimal and its
   * cache key the same across courses whose claims offer different scopes.
   */
  readonly uses?: readonly GradeUse[]
}

interface State {
  readonly tokens: TokenManager
  readonly source: TokenSource
  readonly client: ServiceClient
  readonly uses: readonly GradeUse[]
  readonly scopes: readonly string[]
  readonly offered: readonly string[]
  readonly options: LtiServiceOptions
  readonly timestamps: ScoreTimestamps
  readonly posted: PostedScores
  readonly clock: Clock
}

/**
 * Assignment and Grade Services 2.0 for one context (course), on tokens cached by a
 * {@link TokenManager}: scores, line items and results. Built by {@link GradeService.fromClaim},
 * which resolves a token and checks its granted scopes first, so a scope problem surfaces when
 * the service is built, never halfway through a batch. Every call gets its token from the
 * manager (one token serves every course of the registration); a 401 invalidates that token
 * (compare-and-delete) and retries once. URLs the platform hands back (paging links, line item
 * ids) are used only when they are https on the platform's service host.
 *
 * @example
 * ```ts
 * import { GradeService, LtiClaims } from 'tokenkeeper/lti'
 * const grades = await GradeService.fromClaim(tokens, registration, launch[LtiClaims.ags])
 * await grades.postScore({ userId, scoreGiven: 87, scoreMaximum: 100,
 *   activityProgress: 'Completed', gradingProgress: 'FullyGraded' })
 * for await (const item of grades.lineItems({ tag: 'final' })) console.log(item.label)
 * ```
 */
export class GradeService {
  /** The context's line item container, when the claim has one. */
  readonly lineItemsUrl: string | undefined
  /** The launched resource link's line item, when the claim has one. */
  readonly lineItemUrl: string | undefined
  /** What this service was built for. */
  readonly uses: readonly GradeUse[]
  /** The scopes it requests (sorted). */
  readonly scopes: readonly string[]
  /** The scopes the token had been granted when the service was built or its endpoint swapped. */
  readonly grantedScopes: readonly string[]
  readonly #state: State
  readonly #lineItems: URL | undefined
  readonly #lineItem: URL | undefined
  readonly #hosts: ReadonlySet<string>

  private constructor(
    state: State,
    endpoint: { lineItems?: URL; lineItem?: URL },
    granted: readonly string[],
  ) {
    this.#state = state
    this.#lineItems = endpoint.lineItems
    this.#lineItem = endpoint.lineItem
    this.#hosts = new Set([endpoint.lineItems?.host, endpoint.lineItem?.host].filter((h) => h !== undefined))
    this.lineItemsUrl = endpoint.lineItems?.href
    this.lineItemUrl = endpoint.lineItem?.href
    this.uses = state.uses
    this.scopes = state.scopes
    this.grantedScopes = granted
  }

  /**
   * Builds the service from a launch's AGS claim. Derives the scopes from `options.uses` (default:
   * every use the claim allows) and the claim's `scope` (never requesting one it does not list),
   * then resolves the token and checks the granted scopes. Rejects with
   * {@link ScopeMismatchError} when the claim does not offer, or the platform did not grant, a
   * scope a use needs.
   */
  static async fromClaim(
    tokens: TokenManager,
    registration: LtiRegistration,
    claim: AgsClaim,
    options: GradeServiceOptions = {},
  ): Promise<GradeService> {
    const what = 'GradeService.fromClaim'
    checkServiceOptions(options, what)
    const endpoint = checkEndpoint(claim, what)
    const offered = offeredScopes(claim, what)
    const derived = deriveGradeScopes(
      offered,
      options.uses === undefined ? undefined : checkUses(options.uses),
    )
    const source = ltiServiceSource(registration, derived.scopes, sourceOptionsOf(options))
    const state: State = {
      tokens,
      source,
      client: new ServiceClient(tokens, source, options),
      uses: derived.uses,
      scopes: derived.scopes,
      offered,
      options,
      timestamps: timestampsFor(tokens),
      posted: postedScoresFor(tokens),
      clock: options.clock ?? systemClock,
    }
    return new GradeService(state, endpoint, await GradeService.#granted(state, what, options.signal))
  }

  static async #granted(
    state: State,
    where: string,
    signal: AbortSignal | undefined,
  ): Promise<readonly string[]> {
    const token = await state.tokens.get(state.source, { signal })
    requireGranted(state.uses, token.scopes, state.offered, where)
    return token.scopes
  }

  /**
   * The same service (same token source and uses) on another endpoint: another course's or
   * resource link's claim. Re-checks the token's granted scopes (and, when `endpoint.scope` is
   * given, that it still offers every scope requested) before resolving.
   */
  async withEndpoint(endpoint: GradeEndpoint, options: CallOptions = {}): Promise<GradeService> {
    const what = 'GradeService.withEndpoint'
    const checked = checkEndpoint(endpoint, what)
    const state = this.#state
    if (endpoint.scope !== undefined) {
      const offered = offeredScopes(endpoint, what)
      const missing = state.scopes.filter((scope) => !offered.includes(scope))
      if (missing.length > 0) {
        throw new ScopeMismatchError(`${what}: the new claim does not offer ${missing.join(' ')}`, {
          reason: 'not-offered',
          missingScopes: missing,
          offeredScopes: offered,
        })
      }
    }
    return new GradeService(state, checked, await GradeService.#granted(state, what, options.signal))
  }

  /**
   * Posts a score to `options.lineItem` (default: the claim's `lineitem`) at `{lineitem}/scores`,
   * as `application/vnd.ims.lis.v1.score+json`, with a microsecond timestamp that is strictly
   * increasing across every score posted through this token manager. A retry (see `retry`)
   * sends the same score with a new, later timestamp, and is dropped (outcome `superseded`,
   * nothing more sent) once a newer score for that line item and user has been posted (AGS 2.0
   * §3.4.9). Post the scores of one user and line item one after another, not concurrently, so
   * they also arrive in order (`postScores` does that for you).
   */
  async postScore(
    score: ScoreInput,
    options: CallOptions & { readonly lineItem?: LineItemRef } = {},
  ): Promise<ScorePostResult> {
    this.#require('postScore', 'scores')
    const lineItem = this.#lineItemUrl(options.lineItem, 'postScore')
    return this.#post(score, lineItem, options.signal, {})
  }

  /**
   * Posts many scores (an array, an iterable or an async iterable, read as it goes): at most
   * `concurrency` at once (default 8), fewer while the platform's `X-Rate-Limit-Remaining` /
   * `X-Request-Cost` say its budget runs low or it throttles (see `docs/LTI.md`, "Bulk calls").
   * Each score is posted as by {@link postScore}, with its retries and a new, later timestamp
   * for each; the scores of one line item and user are posted one after another in input
   * order. Resolves when every score read has settled, with what became of each: never
   * rejects for a score (an invalid one is listed as failed with its `TypeError`); rejects only
   * for bad options or when reading the async iterable fails.
   *
   * @example
   * ```ts
   * const result = await grades.postScores(scores, { concurrency: 8, onProgress: (p) => log(p) })
   * console.log(`${result.posted} posted, ${result.failed.length} failed, ${result.throttled} throttled`)
   * ```
   */
  async postScores(
    scores: Iterable<BulkScore> | AsyncIterable<BulkScore>,
    options: PostScoresOptions = {},
  ): Promise<PostScoresResult> {
    this.#require('postScores', 'scores')
    return postScoresInBulk(scores, options, {
      clock: this.#state.clock,
      maxWaitMs: this.#state.client.maxDelayMs,
      lineItemOf: (score) => this.#lineItemUrl(score.lineItem ?? options.lineItem, 'postScores'),
      post: (score, lineItem, signal, hooks) => this.#post(score, lineItem, signal, hooks),
    })
  }

  /** Posts one score to `lineItem` (checked), with the retry and superseded rules. */
  #post(
    score: ScoreInput,
    lineItem: URL,
    signal: AbortSignal | undefined,
    hooks: Pick<ServiceRequest, 'onRetry' | 'onAnswer' | 'pace'>,
  ): Promise<ScorePostResult> {
    const state = this.#state
    let first = 0
    let timestamp = ''
    const stamp = (): string => {
      const micros = state.timestamps.nextMicros(wallTime(state.clock))
      if (first === 0) first = micros
      timestamp = formatMicros(micros)
      return timestamp
    }
    const firstBody = scoreBody(score, stamp()) // checks the score before anything is sent
    const key = scoreKey(lineItem, score.userId)
    return state.client
      .call({
        method: 'POST',
        url: appendPath(lineItem, '/scores'),
        contentType: LtiMediaTypes.score,
        body: (attempt) => (attempt === 1 ? firstBody : scoreBody(score, stamp())),
        signal,
        retry: true,
        beforeRetry: () => !state.posted.superseded(key, first),
        ...hooks,
      })
      .then((answer) => {
        if (!answer.superseded) state.posted.posted(key, first)
        return { outcome: answer.superseded ? 'superseded' : 'posted', attempts: answer.attempts, timestamp }
      })
  }

  /** The context's line items, following `rel="next"` pages; `filters` are sent on the first page only. */
  async *lineItems(filters: LineItemFilters = {}, options: CallOptions = {}): AsyncGenerator<LineItem> {
    this.#require('lineItems', 'readLineItems', 'manageLineItems')
    const container = this.#container('lineItems')
    const url = withQuery(container, {
      resource_link_id: filters.resourceLinkId,
      resource_id: filters.resourceId,
      tag: filters.tag,
      limit: checkLimit(filters.limit),
    })
    for await (const page of this.#state.client.pages(
      url,
      LtiMediaTypes.lineItemContainer,
      this.#hosts,
      options.signal,
    )) {
      const items = arrayOf(page.json, page.url)
      // AGS 2.0 §3.2: a line item's `id` is its URL, the base of its /scores and /results.
      checkEntries(items, page.url, 'line item', (item) =>
        typeof item['id'] === 'string' && item['id'] !== '' ? undefined : 'without a string id',
      )
      for (const item of items) yield item as LineItem
    }
  }

  /** One line item (default: the claim's `lineitem`). */
  async getLineItem(lineItem?: LineItemRef, options: CallOptions = {}): Promise<LineItem> {
    this.#require('getLineItem', 'readLineItems', 'manageLineItems')
    const url = this.#lineItemUrl(lineItem, 'getLineItem')
    const request = {
      method: 'GET',
      url,
      accept: LtiMediaTypes.lineItem,
      signal: options.signal,
      read: 'json',
      retry: true,
    } as const
    return this.#lineItemFrom(await this.#state.client.call(request), request)
  }

  /** Creates a line item in the context's container; resolves to it as the platform stored it (with `id`). */
  async createLineItem(item: NewLineItem, options: CallOptions = {}): Promise<LineItem> {
    this.#require('createLineItem', 'manageLineItems')
    const body = lineItemBody(item, 'createLineItem')
    const url = this.#container('createLineItem')
    const request = {
      method: 'POST',
      url,
      accept: LtiMediaTypes.lineItem,
      contentType: LtiMediaTypes.lineItem,
      body,
      signal: options.signal,
      read: 'json',
      // Not idempotent: a retry after a lost answer may create a second line item.
      retry: this.#state.client.retriesLineItemCreation,
    } as const
    return this.#lineItemFrom(await this.#state.client.call(request), request)
  }

  /** Replaces a line item's definition (a PUT of the whole item to its `id`). */
  async updateLineItem(item: LineItem, options: CallOptions = {}): Promise<LineItem> {
    this.#require('updateLineItem', 'manageLineItems')
    const url = this.#lineItemUrl(item, 'updateLineItem')
    const body = lineItemBody(item, 'updateLineItem')
    const request = {
      method: 'PUT',
      url,
      accept: LtiMediaTypes.lineItem,
      contentType: LtiMediaTypes.lineItem,
      body,
      signal: options.signal,
      read: 'json',
      retry: true,
    } as const
    const answer = await this.#state.client.call(request)
    if (answer.status === 204) return item
    return this.#lineItemFrom(answer, request)
  }

  /** The line item a 2xx answer holds (a JSON object with a string `id`), or `INVALID_SERVICE_RESPONSE`. */
  #lineItemFrom(answer: ServiceAnswer, request: ServiceRequest): LineItem {
    const item = objectOf(answer.json, request.url)
    if (typeof item['id'] !== 'string' || item['id'] === '') {
      throw new TokenkeeperError(
        'INVALID_SERVICE_RESPONSE',
        `${request.method} ${request.url.host}${request.url.pathname} answered with a line item without a string id`,
      )
    }
    return item as LineItem
  }

  /** Deletes a line item. */
  async deleteLineItem(lineItem: LineItemRef, options: CallOptions = {}): Promise<void> {
    this.#require('deleteLineItem', 'manageLineItems')
    const url = this.#lineItemUrl(lineItem, 'deleteLineItem')
    await this.#state.client.call({ method: 'DELETE', url, signal: options.signal, retry: true })
  }

  /** The results of a line item (default: the claim's), at `{lineitem}/results`, following pages. */
  async *results(
    query: { readonly lineItem?: LineItemRef; readonly userId?: string; readonly limit?: number } = {},
    options: CallOptions = {},
  ): AsyncGenerator<LtiResult> {
    this.#require('results', 'readResults')
    const lineItem = this.#lineItemUrl(query.lineItem, 'results')
    const url = withQuery(appendPath(lineItem, '/results'), {
      user_id: query.userId,
      limit: checkLimit(query.limit),
    })
    for await (const page of this.#state.client.pages(
      url,
      LtiMediaTypes.resultContainer,
      this.#hosts,
      options.signal,
    )) {
      const results = arrayOf(page.json, page.url)
      checkEntries(results, page.url, 'result', (result) =>
        typeof result['userId'] === 'string' && result['userId'] !== ''
          ? undefined
          : 'without a string userId',
      )
      for (const result of results) yield result as LtiResult
    }
  }

  /** The token source every call uses: pass it to `tokens.peek(...)` or `tokens.invalidate(...)`. */
  get source(): TokenSource {
    return this.#state.source
  }

  /** `{ lineItemsUrl, lineItemUrl, uses, key }`: what `JSON.stringify` shows; no token, no key material. */
  toJSON(): Record<string, unknown> {
    return {
      lineItemsUrl: this.lineItemsUrl,
      lineItemUrl: this.lineItemUrl,
      uses: this.uses,
      key: this.source.key,
    }
  }

  /** What `util.inspect` and `console.log` show: {@link GradeService.toJSON}. */
  [inspect.custom](): string {
    return `GradeService ${inspect(this.toJSON())}`
  }

  #require(method: string, ...uses: GradeUse[]): void {
    if (uses.some((use) => this.uses.includes(use))) return
    throw new ScopeMismatchError(`GradeService.${method} needs a service built for ${uses.join(' or ')}`, {
      reason: 'not-built-for',
      missingScopes: [],
      offeredScopes: this.#state.offered,
      grantedScopes: this.grantedScopes,
    })
  }

  #container(method: string): URL {
    if (this.#lineItems === undefined)
      throw new TypeError(`GradeService.${method}: the AGS claim has no lineitems URL`)
    return this.#lineItems
  }

  #lineItemUrl(ref: LineItemRef | undefined, method: string): URL {
    if (ref === undefined) {
      if (this.#lineItem === undefined) {
        throw new TypeError(`GradeService.${method}: the AGS claim has no lineitem; pass a line item`)
      }
      return this.#lineItem
    }
    const id = typeof ref === 'string' ? ref : ref.id
    if (typeof id !== 'string') throw new TypeError(`GradeService.${method}: a line item URL is required`)
    const base = this.#lineItems ?? this.#lineItem
    return checkSameHost(id, base ?? id, this.#hosts, `GradeService.${method}: the line item URL`)
  }
}
