import type { TokenStore } from '../../src/stores/types.js'

/**
 * A view of `inner` with only its four required methods (no lock, no events) unless `overrides`
 * adds or replaces them: how a test shows a manager a store that lacks, breaks or watches a part.
 */
export function storeView(inner: TokenStore, overrides: Partial<TokenStore> = {}): TokenStore {
  return {
    get: (key) => inner.get(key),
    set: (key, record, options) => inner.set(key, record, options),
    delete: (key, options) => inner.delete(key, options),
    clear: () => inner.clear(),
    ...overrides,
  }
}
