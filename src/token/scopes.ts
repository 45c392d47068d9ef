/**
 * Scopes as a set: split on whitespace, empty entries dropped, de-duplicated and sorted, so that
 * `['write', 'read', 'read']` and `['read', 'write']` name the same request (RFC 6749 §3.3:
 * the order of scopes does not matter).
 *
 * @example
 * ```ts
 * normalizeScopes(['write', ' read', 'read']) // ['read', 'write']
 * ```
 */
export function normalizeScopes(scopes: Iterable<string>): readonly string[] {
  const set = new Set<string>()
  for (const entry of scopes) {
    for (const scope of entry.split(/\s+/)) if (scope.length > 0) set.add(scope)
  }
  return Object.freeze([...set].sort())
}

/** Checks that a scope token uses only the characters RFC 6749 §3.3 allows. */
export function isValidScopeToken(scope: string): boolean {
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)
}
