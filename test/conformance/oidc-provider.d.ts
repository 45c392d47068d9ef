// oidc-provider ships no type declarations. This declares only the surface the conformance
// suite uses, so that the suite type-checks under the project's strict settings.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** The per-request context oidc-provider hands to grant handlers (a Koa context). */
  export interface GrantContext {
    readonly oidc: {
      readonly params: Readonly<Record<string, unknown>>
      readonly client: unknown
    }
    body: unknown
  }

  export interface ClientCredentialsToken {
    scope: string | undefined
    readonly expiration: number
    save(): Promise<string>
  }

  export class Provider {
    constructor(issuer: string, configuration?: Readonly<Record<string, unknown>>)
    readonly issuer: string
    /** Koa's request listener, for `http.createServer`. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    registerGrantType(
      name: string,
      handler: (ctx: GrantContext) => Promise<void>,
      parameters?: string | readonly string[],
      /** Parameters that may be repeated (sent as an array to the handler). */
      allowedDuplicateParameters?: string | readonly string[],
    ): void
    readonly ClientCredentials: new (init: { client: unknown; scope?: string }) => ClientCredentialsToken
    on(event: string, listener: (...args: unknown[]) => void): this
  }

  type OAuthErrorClass = new (description?: string) => Error
  export const errors: {
    readonly InvalidGrant: OAuthErrorClass
    readonly InvalidTarget: OAuthErrorClass
    readonly InvalidRequest: OAuthErrorClass
  }

  export default Provider
}
