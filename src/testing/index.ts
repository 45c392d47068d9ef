/**
 * `tokenkeeper/testing`: a real OAuth 2.0 token endpoint on 127.0.0.1 with fault injection, and a
 * controllable clock, for tokenkeeper's own tests and for yours.
 *
 * @example
 * ```ts
 * import { startTokenServer, createTestClock } from 'tokenkeeper/testing'
 * const clock = createTestClock()
 * const server = await startTokenServer({ clients: [{ clientId: 'a', clientSecret: 's' }], clock })
 * await server.close()
 * ```
 *
 * @packageDocumentation
 * @module tokenkeeper/testing
 */
export { startTokenServer } from './token-server.js'
export { createTestClock, type TestClock } from './test-clock.js'
export { grantAllowedSubset, type JwtBearerIssuer, type ScopeGrantPolicy } from './token-endpoint.js'
export type { ClientAuthMethod, TestClient } from './client-auth.js'
export type { FaultHandle, TokenServerFault } from './faults.js'
export type { TokenIntrospection } from './issued-tokens.js'
export type { VerificationKeys } from './assertions.js'
export type { TokenServerDpopOptions } from './dpop.js'
export type {
  HoldHandle,
  TokenRequestRecord,
  TokenServer,
  TokenServerDiscoveryOptions,
  TokenServerOptions,
  TokenServerStats,
} from './types.js'
export {
  startGoogleTokenEndpoint,
  type GoogleTestServiceAccount,
  type GoogleTokenEndpoint,
  type GoogleTokenEndpointOptions,
  type GoogleTokenRequestRecord,
} from './google-endpoint.js'
export { startLtiPlatform } from './lti/platform.js'
export type { LtiRateLimit, LtiServiceFault } from './lti/throttling.js'
export type {
  LtiContextSeed,
  LtiMemberSeed,
  LtiPlatform,
  LtiPlatformContext,
  LtiPlatformOptions,
  LtiPlatformStats,
  LtiRecordedScore,
  LtiServiceRequestRecord,
  LtiTokenRequestRecord,
  LtiTool,
} from './lti/types.js'
