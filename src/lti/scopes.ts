import { normalizeScopes } from '../token/scopes.js'
import { LtiScopes } from './constants.js'
import { ScopeMismatchError } from './errors.js'

/**
 * What a {@link GradeService} is built to do. Each use needs one scope (AGS 2.0 §3.2–3.4):
 *
 * | use               | scope requested                                                      |
 * | ----------------- | -------------------------------------------------------------------- |
 * | `scores`          | `…/scope/score`                                                      |
 * | `readLineItems`   | `…/scope/lineitem.readonly`, or `…/scope/lineitem` when only it is offered (it covers reads) |
 * | `manageLineItems` | `…/scope/lineitem` (which also covers `readLineItems`)               |
 * | `readResults`     | `…/scope/result.readonly`                                            |
 *
 * @example
 * ```ts
 * import type { GradeUse } from 'tokenkeeper/lti'
 * const uses: GradeUse[] = ['scores'] // a score-only job: asks for the score scope alone
 * ```
 */
export type GradeUse = 'scores' | 'readLineItems' | 'manageLineItems' | 'readResults'

const ALL_USES: readonly GradeUse[] = ['scores', 'readLineItems', 'manageLineItems', 'readResults']

/** Scopes that satisfy a use, best (least privilege) first. */
const SATISFIED_BY: Readonly<Record<GradeUse, readonly string[]>> = {
  scores: [LtiScopes.score],
  readLineItems: [LtiScopes.lineItemReadOnly, LtiScopes.lineItem],
  manageLineItems: [LtiScopes.lineItem],
  readResults: [LtiScopes.resultReadOnly],
}

/** Whether `scopes` (granted or offered) satisfy `use`. Exact token comparison. @internal */
export function covers(use: GradeUse, scopes: readonly string[]): boolean {
  return SATISFIED_BY[use].some((scope) => scopes.includes(scope))
}

/** Checks a `uses` option: a non-empty array of known uses. @internal */
export function checkUses(uses: unknown): readonly GradeUse[] {
  if (!Array.isArray(uses) || uses.length === 0 || !uses.every((use) => ALL_USES.includes(use as GradeUse))) {
    throw new TypeError(`tokenkeeper/lti: uses must be a non-empty array of ${ALL_USES.join(', ')}`)
  }
  return ALL_USES.filter((use) => (uses as GradeUse[]).includes(use))
}

/**
 * The scopes to request for `uses`, given what the AGS claim offers: never a scope the claim
 * does not list, and the least one that serves each use (`lineitem` covers reads, so with
 * `manageLineItems` no read-only scope is added). Without `uses`, every use the claim allows.
 * Throws {@link ScopeMismatchError} (`not-offered`) when a use cannot be served. Pure.
 *
 * @example
 * ```ts
 * import { deriveGradeScopes, LtiScopes } from 'tokenkeeper/lti'
 * deriveGradeScopes([LtiScopes.lineItem, LtiScopes.score], ['scores', 'readLineItems'])
 * // { uses: ['scores', 'readLineItems'], scopes: [lineitem, score] }
 * ```
 */
export function deriveGradeScopes(
  offered: readonly string[],
  uses?: readonly GradeUse[],
): {
  /** The uses served: `uses` as given, or every use the claim allows. */
  readonly uses: readonly GradeUse[]
  /** The scopes to request for them. */
  readonly scopes: readonly string[]
} {
  const chosen = uses === undefined ? ALL_USES.filter((use) => covers(use, offered)) : checkUses(uses)
  if (chosen.length === 0) {
    throw new ScopeMismatchError('the AGS claim offers none of the Assignment and Grade Services scopes', {
      reason: 'not-offered',
      missingScopes: [
        LtiScopes.score,
        LtiScopes.lineItemReadOnly,
        LtiScopes.lineItem,
        LtiScopes.resultReadOnly,
      ],
      offeredScopes: offered,
    })
  }
  const scopes: string[] = []
  const unserved: GradeUse[] = []
  const pick = (use: GradeUse): void => {
    if (covers(use, scopes)) return
    const scope = SATISFIED_BY[use].find((candidate) => offered.includes(candidate))
    if (scope === undefined) unserved.push(use)
    else scopes.push(scope)
  }
  // manageLineItems first, so that its lineitem scope also serves readLineItems.
  for (const use of ['manageLineItems', 'scores', 'readLineItems', 'readResults'] as const) {
    if (chosen.includes(use)) pick(use)
  }
  if (unserved.length > 0) {
    const missing = normalizeScopes(unserved.flatMap((use) => SATISFIED_BY[use]))
    throw new ScopeMismatchError(
      `the AGS claim does not offer the scope ${unserved.join(' and ')} needs (${missing.join(' or ')})`,
      { reason: 'not-offered', missingScopes: missing, offeredScopes: offered },
    )
  }
  return { uses: chosen, scopes: normalizeScopes(scopes) }
}

/**
 * Throws {@link ScopeMismatchError} (`not-granted`) unless the granted scopes serve every use.
 * @internal
 */
export function requireGranted(
  uses: readonly GradeUse[],
  granted: readonly string[],
  offered: readonly string[],
  where: string,
): void {
  const unserved = uses.filter((use) => !covers(use, granted))
  if (unserved.length === 0) return
  const missing = normalizeScopes(unserved.flatMap((use) => SATISFIED_BY[use]))
  throw new ScopeMismatchError(
    `${where}: the token was not granted the scope ${unserved.join(' and ')} needs (${missing.join(' or ')}); ` +
      `granted: ${granted.join(' ') || '(none)'}`,
    { reason: 'not-granted', missingScopes: missing, offeredScopes: offered, grantedScopes: granted },
  )
}

/** The scope a use needs, for messages. @internal */
export function scopesFor(use: GradeUse): readonly string[] {
  return SATISFIED_BY[use]
}
