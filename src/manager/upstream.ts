import type { Clock } from '../clock.js'
import { raceAbort } from '../abort.js'
import type { TokenSource } from '../sources/types.js'
import type { AccessToken } from '../token/access-token.js'
import { closedError } from './checks.js'

/** A token for a key, and where it came from. */
export interface Obtained {
  readonly token: AccessToken
  /** `fetch`: the source was asked; `store`: another process's token was read from the store. */
  readonly origin: 'fetch' | 'store'
}

/**
 * What the manager asks for tokens, and tells of invalidations: without a store, the source
 * itself ({@link SourceUpstream}); with one, the `StoreCoordinator`, which reads, locks, waits
 * and writes around the same {@link SourceUpstream}.
 */
export interface Upstream {
  /** A token for `key` from `source`, newer than `current` when one is given. */
  obtain(key: string, source: TokenSource, current: AccessToken | undefined): Promise<Obtained>
  /**
   * Whether `token` (of `key`) was refused anywhere (here, or by another process through the
   * store): such a token is never adopted. Synchronous, so that the manager can ask right before
   * it adopts a token, with no wait in between in which a refusal could arrive unseen.
   */
  refuses(key: string, token: AccessToken): boolean
  /**
   * This process no longer trusts the token `tokenId` of `key` (its clock was stepped back, so
   * how old the token is cannot be told): never adopt it again, but leave it to the others.
   */
  distrust(key: string, tokenId: string): void
  /** The token `tokenId` (any, when undefined) of `key` was refused: forget it upstream too. */
  invalidate(key: string, tokenId: string | undefined, heldId: string | undefined): Promise<boolean>
  /** Every token was forgotten here: forget them upstream too. */
  clear(): Promise<void>
  /** The manager closed: release what the upstream holds. */
  close(): Promise<void>
}

/** What a {@link SourceUpstream} needs from its manager. */
export interface SourceUpstreamOptions {
  readonly clock: Clock
  /** Aborted when the manager closes. */
  readonly signal: AbortSignal
  /** Called once for every request a source is asked to make (`stats().fetches`). */
  readonly onFetch: () => void
}

/** The source itself: one `fetchToken` per `obtain`, ended by the manager's `close()`. */
export class SourceUpstream implements Upstream {
  readonly #options: SourceUpstreamOptions

  constructor(options: SourceUpstreamOptions) {
    this.#options = options
  }

  async obtain(_key: string, source: TokenSource): Promise<Obtained> {
    return { token: await this.fetch(source), origin: 'fetch' }
  }

  /** Asks `source` for a fresh token. */
  fetch(source: TokenSource): Promise<AccessToken> {
    const { clock, signal, onFetch } = this.#options
    // A flight that outlived close() (say, waiting on another process's lock) never calls the source.
    if (signal.aborted) return Promise.reject(closedError())
    onFetch()
    // raceAbort: close() settles every waiter even if a source ignores its signal.
    return raceAbort(source.fetchToken({ signal, clock }), signal)
  }

  refuses(): boolean {
    return false
  }

  distrust(): void {
    // Nothing to read the token from again.
  }

  invalidate(): Promise<boolean> {
    return Promise.resolve(false)
  }

  clear(): Promise<void> {
    return Promise.resolve()
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
