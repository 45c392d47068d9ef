/**
 * `tokenkeeper`: OAuth 2.0 access tokens, obtained once and kept. A {@link TokenManager} caches
 * the token of each {@link TokenSource}, lets one token request serve every concurrent caller,
 * renews the token in the background before it runs out and rides out an outage of the token
 * endpoint on the token it has. Sources: {@link clientCredentials} (with
 * {@link clientSecretBasic}, {@link clientSecretPost} or {@link privateKeyJwt}), {@link jwtBearer},
 * {@link googleServiceAccount} and {@link tokenSource} for any function of yours. Stores:
 * {@link memoryStore} (the default) or `redisStore` from `tokenkeeper/redis`.
 *
 * @example
 * ```ts
 * import { TokenManager, clientCredentials, clientSecretBasic } from 'tokenkeeper'
 *
 * const tokens = new TokenManager()
 * const source = clientCredentials({
 *   tokenUrl: 'https://idp.example/oauth/token',
 *   clientId: 'svc-a',
 *   auth: clientSecretBasic(process.env.CLIENT_SECRET!),
 * })
 * const api = tokens.fetch(source)
 * const res = await api('https://api.example/v1/things')
 * ```
 *
 * @packageDocumentation
 * @module tokenkeeper
 */
export { systemClock, type Clock, type Timer } from './clock.js'
export {
  InsufficientScopeError,
  isOAuthError,
  isTokenkeeperError,
  OAuthError,
  TokenkeeperError,
  type AnyTokenkeeperError,
  type CoreErrorCode,
  type ErrorResponseInfo,
  type OAuthErrorFields,
  type PlainErrorCode,
  type TokenkeeperErrorCode,
  type TokenkeeperErrorOptions,
} from './errors.js'
export { AccessToken, type AccessTokenInit, type TokenBinding } from './token/access-token.js'
export { DEFAULT_LIFETIME_MS, parseTokenResponse, type ParseTokenResponseOptions } from './token/parse.js'
export { normalizeScopes } from './token/scopes.js'
export { deserializeToken, serializeToken, SERIALIZED_TOKEN_VERSION, tokenId } from './token/serialize.js'
export {
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type FetchLike,
} from './http/token-request.js'
export {
  clientSecretBasic,
  clientSecretPost,
  privateKeyJwt,
  ClientSecretBasic,
  ClientSecretPost,
  PrivateKeyJwt,
  type ClientAuth,
  type ClientAuthContext,
  type ClientAuthMethod,
  type PrivateKeyJwtOptions,
} from './sources/auth.js'
export { clientCredentials, type ClientCredentialsOptions } from './sources/client-credentials.js'
export {
  DiscoveryCache,
  type AuthorizationServerMetadata,
  type MtlsTokenEndpoint,
  type DiscoveryCacheOptions,
  type DiscoveryRequestOptions,
} from './sources/discovery.js'
export {
  clientAssertion,
  clientAssertionFile,
  type ClientAssertionContext,
  type ClientAssertionOptions,
  type ClientAssertionProvider,
} from './sources/client-assertion.js'
export { jwtBearer, type JwtBearerOptions, type JwtBearerAssertionOptions } from './sources/jwt-bearer.js'
export {
  googleServiceAccount,
  type GoogleServiceAccountKey,
  type GoogleServiceAccountOptions,
} from './sources/google.js'
export {
  tokenSource,
  type TokenFunction,
  type TokenFunctionContext,
  type TokenFunctionResult,
  type TokenSourceOptions,
} from './sources/custom.js'
export {
  tokenExchange,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPES,
  type ExchangeTokenContext,
  type ExchangeTokenProvider,
  type TokenExchangeOptions,
} from './sources/token-exchange.js'
export type { EndpointOptions } from './sources/endpoint.js'
export {
  selfSignedTlsClientAuth,
  tlsClientAuth,
  type PemFile,
  type PemInput,
  type TlsClientAuthOptions,
  type TlsClientCertificate,
} from './sources/mtls.js'
export {
  DpopKey,
  dpopKey,
  generateDpopKey,
  type GeneratedDpopKey,
  type DpopAlgorithm,
  type DpopKeyPair,
  type DpopProofClaims,
} from './sources/dpop.js'
export type { PrivateKeyInput, SigningAlgorithm } from './sources/signing.js'
export type { FetchTokenOptions, TokenSource, TokenSourceContext } from './sources/types.js'
export {
  TokenManager,
  type GetTokenOptions,
  type InvalidateOptions,
  type TokenManagerOptions,
  type TokenManagerStats,
} from './manager/manager.js'
export {
  CHANNEL_NAMES,
  subscribeChannel,
  type FailFastEvent,
  type LockWaitEvent,
  type TokenManagerListener,
  type TokenkeeperChannelMessages,
  type TokenkeeperChannelName,
  type HitEvent,
  type InvalidateEvent,
  type MissEvent,
  type RefreshFailureEvent,
  type RefreshMode,
  type RefreshStartEvent,
  type RefreshSuccessEvent,
  type StaleEvent,
  type StoreErrorEvent,
  type TokenManagerEvents,
} from './manager/events.js'
export { type AuthorizedFetchOptions } from './manager/fetch.js'
export type {
  AnswerContext,
  Authorization,
  Authorizer,
  ResourceRequest,
  ResourceResponse,
} from './http/authorizer.js'
export type { LogFields, LogMethod, TokenkeeperLogger } from './manager/logging.js'
export {
  backoffDelayMs,
  computeWindows,
  DEFAULT_BACKOFF_POLICY,
  DEFAULT_REFRESH_POLICY,
  windowAt,
  type BackoffPolicy,
  type FailureFacts,
  type RefreshPolicy,
  type TokenTimes,
  type TokenWindow,
  type TokenWindows,
} from './manager/policy.js'
export { memoryStore, type MemoryStoreOptions } from './stores/memory.js'
export type {
  StoreDeleteOptions,
  StoreEvent,
  StoreLock,
  StoreLockOptions,
  StoreRecord,
  StoreSetOptions,
  TokenStore,
} from './stores/types.js'
