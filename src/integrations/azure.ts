/**
 * `tokenkeeper/azure`: {@link tokenCredential}, an Azure SDK `TokenCredential` backed by a
 * manager, so every Azure client shares one cached token per scope set. See
 * `docs/INTEGRATIONS.md`.
 *
 * @packageDocumentation
 * @module tokenkeeper/azure
 */
import type { AccessToken as AzureAccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth'
import type { TokenManager } from '../manager/manager.js'
import { computeWindows, DEFAULT_REFRESH_POLICY, type RefreshPolicy } from '../manager/policy.js'
import type { TokenSource } from '../sources/types.js'

/** Makes the source for one scope set (sorted and de-duplicated). Called once per scope set. */
export type ScopeSourceFactory = (scopes: readonly string[]) => TokenSource

/** Options of {@link tokenCredential}. */
export interface TokenCredentialOptions {
  /**
   * The refresh policy of the manager (default: `DEFAULT_REFRESH_POLICY`): the earliest instant
   * it would renew a token becomes `refreshAfterTimestamp`.
   */
  readonly refreshPolicy?: RefreshPolicy
}

/**
 * An Azure SDK `TokenCredential` (`@azure/core-auth`) backed by a {@link TokenManager}: every
 * Azure client given it shares the manager's cached token for a scope set (and, with a Redis
 * store, the fleet's), instead of each pipeline fetching its own. `getToken` answers from the
 * cache; it returns `expiresOnTimestamp` (the token's expiry) and `refreshAfterTimestamp` (the
 * earliest point at which the manager would renew it), which the pipeline's token cycler honours.
 * Continuous-access-evaluation `claims` and `tenantId` are not passed to the source: a source
 * stands for one tenant and asks for no claims.
 *
 * @example
 * ```ts
 * import { tokenCredential } from 'tokenkeeper/azure'
 * const credential = tokenCredential(tokens, (scopes) =>
 *   clientCredentials({ tokenUrl, clientId, auth, scopes }),
 * )
 * const client = new BlobServiceClient(accountUrl, credential)
 * ```
 */
export function tokenCredential(
  tokens: TokenManager,
  sourceFor: ScopeSourceFactory,
  options: TokenCredentialOptions = {},
): TokenCredential {
  if (typeof sourceFor !== 'function') {
    throw new TypeError('tokenCredential: give a function (scopes) => TokenSource')
  }
  const policy = options.refreshPolicy ?? DEFAULT_REFRESH_POLICY
  const sources = new Map<string, TokenSource>()
  return {
    async getToken(scopes: string | string[], getOptions?: GetTokenOptions): Promise<AzureAccessToken> {
      const list = [...new Set([scopes].flat())].sort()
      const id = list.join(' ')
      let source = sources.get(id)
      if (source === undefined) {
        source = sourceFor(list)
        sources.set(id, source)
      }
      const signal = getOptions?.abortSignal
      const token = await tokens.get(source, { signal: signal instanceof AbortSignal ? signal : undefined })
      const { refreshAt } = computeWindows(token, policy, () => 0)
      return {
        token: token.value,
        expiresOnTimestamp: token.expiresAt,
        refreshAfterTimestamp: refreshAt,
        ...(token.type === 'Bearer' ? { tokenType: 'Bearer' as const } : {}),
      }
    },
  }
}
