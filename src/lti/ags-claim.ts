import { normalizeScopes } from '../token/scopes.js'
import { checkServiceUrl } from './links.js'
import type { AgsClaim } from './types.js'

/**
 * The endpoint part of an AGS claim, for `GradeService.withEndpoint`. With `scope`, the service
 * also checks that the new claim still offers every scope it requests.
 *
 * @example
 * ```ts
 * import type { GradeEndpoint } from 'tokenkeeper/lti'
 * const next: GradeEndpoint = { lineitems: 'https://lms.example/api/lti/courses/9/line_items' }
 * ```
 */
export type GradeEndpoint = Pick<AgsClaim, 'lineitems' | 'lineitem'> & {
  /** The scopes the new claim offers; when given, each scope the service requests must be among them. */
  readonly scope?: readonly string[]
}

/** The checked URLs of an AGS claim: at least one of them, https (or loopback http). @internal */
export function checkEndpoint(endpoint: GradeEndpoint, what: string): { lineItems?: URL; lineItem?: URL } {
  if (typeof endpoint !== 'object' || endpoint === null)
    throw new TypeError(`${what}: an AGS claim object is required`)
  const blank = (value: unknown): boolean => value === undefined || value === null || value === ''
  const lineItems = blank(endpoint.lineitems)
    ? undefined
    : checkServiceUrl(endpoint.lineitems, `${what}: lineitems`)
  const lineItem = blank(endpoint.lineitem)
    ? undefined
    : checkServiceUrl(endpoint.lineitem, `${what}: lineitem`)
  if (lineItems === undefined && lineItem === undefined) {
    throw new TypeError(`${what}: the AGS claim has neither lineitems nor lineitem`)
  }
  return {
    ...(lineItems === undefined ? {} : { lineItems }),
    ...(lineItem === undefined ? {} : { lineItem }),
  }
}

/** The claim's scopes, normalised; `TypeError` unless an array of strings. @internal */
export function offeredScopes(claim: GradeEndpoint, what: string): readonly string[] {
  if (!Array.isArray(claim.scope) || !claim.scope.every((scope) => typeof scope === 'string')) {
    throw new TypeError(`${what}: the AGS claim's scope must be an array of scope URIs`)
  }
  return normalizeScopes(claim.scope)
}

/** Checks a `limit` query value: a positive integer. @internal */
export function checkLimit(limit: number | undefined): number | undefined {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new TypeError('tokenkeeper/lti: limit must be a positive integer')
  }
  return limit
}
