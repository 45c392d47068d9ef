import type { Clock } from '../../clock.js'
import { describeClientError, isErrorReply, RedisStoreError, type RedisStoreOperation } from './errors.js'

/**
 * Options of the Redis store's circuit breaker.
 *
 * @example
 * ```ts
 * import { redisStore, type CircuitBreakerOptions } from 'tokenkeeper/redis'
 * const circuitBreaker: CircuitBreakerOptions = { failureThreshold: 5, cooldownMs: 2_000 }
 * const store = redisStore({ client, encryptionKeys, circuitBreaker })
 * ```
 */
export interface CircuitBreakerOptions {
  /** Consecutive failed commands (errors or timeouts) that open the circuit. Default 3. */
  readonly failureThreshold?: number
  /** How long an open circuit fails every command at once before one probe is let through. Default 1 000 ms. */
  readonly cooldownMs?: number
}

/**
 * The breaker's state: closed (commands go out), open (they fail fast), half-open (one probe is out).
 *
 * @example
 * ```ts
 * const healthy = store.circuit === 'closed' // for a readiness probe
 * ```
 */
export type CircuitState = 'closed' | 'open' | 'half-open'

/**
 * A small circuit breaker as a pure state machine of (events, now): after `failureThreshold`
 * consecutive failures every command fails at once for `cooldownMs`; then a single probe goes
 * out, and its outcome closes the circuit or opens it for another cool-down.
 */
export class CircuitBreaker {
  readonly #threshold: number
  readonly #cooldownMs: number
  #failures = 0
  #openUntil = 0
  #state: CircuitState = 'closed'

  constructor(options: Required<CircuitBreakerOptions>) {
    this.#threshold = options.failureThreshold
    this.#cooldownMs = options.cooldownMs
  }

  get state(): CircuitState {
    return this.#state
  }

  /** 'pass' (closed), 'probe' (the one half-open attempt: report its outcome) or 'reject'. */
  admit(now: number): 'pass' | 'probe' | 'reject' {
    if (this.#state === 'closed') return 'pass'
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#state = 'half-open'
      return 'probe'
    }
    return 'reject'
  }

  success(): void {
    this.#failures = 0
    this.#state = 'closed'
  }

  /** Records a failure; returns true when this failure opened the circuit. */
  failure(now: number, admission: 'pass' | 'probe'): boolean {
    if (admission === 'probe' || this.#state === 'half-open') {
      this.#state = 'open'
      this.#openUntil = now + this.#cooldownMs
      return false
    }
    this.#failures++
    if (this.#state === 'closed' && this.#failures >= this.#threshold) {
      this.#state = 'open'
      this.#openUntil = now + this.#cooldownMs
      return true
    }
    return false
  }
}

/** Options of {@link CommandRunner}. */
export interface CommandRunnerOptions {
  readonly clock: Clock
  readonly timeoutMs: number
  readonly breaker: CircuitBreaker | undefined
  readonly onOpen: (error: RedisStoreError) => void
}

/**
 * Runs store commands with a timeout each and through the circuit breaker. A command that
 * times out keeps running in the client; `abandoned` sees its late result (to release a lock
 * that was acquired too late, for example). Every client promise gets a handler. An error reply
 * of Redis (`WRONGTYPE`, `OOM`, `READONLY`, ...) fails its command but counts as an answer for
 * the breaker: the circuit is for a Redis that is slow or unreachable, not for one that answers.
 * `close()` ends every command still waiting (`STORE_CLOSED`), but the lock releases.
 */
export class CommandRunner {
  readonly #options: CommandRunnerOptions
  #closed = false
  /** Ends each command in progress that `close()` ends (all but those bypassing the breaker). */
  readonly #pending = new Set<() => void>()

  constructor(options: CommandRunnerOptions) {
    this.#options = options
  }

  close(): void {
    this.#closed = true
    for (const end of [...this.#pending]) end()
  }

  run<T>(
    operation: RedisStoreOperation,
    call: () => Promise<T>,
    options: { readonly abandoned?: (value: T) => void; readonly bypassBreaker?: boolean } = {},
  ): Promise<T> {
    if (this.#closed && options.bypassBreaker !== true)
      return Promise.reject(new RedisStoreError('STORE_CLOSED', operation, 'the Redis store is closed'))
    const { clock, timeoutMs } = this.#options
    const breaker = options.bypassBreaker === true ? undefined : this.#options.breaker
    const admission = breaker?.admit(clock.now()) ?? 'pass'
    if (admission === 'reject') {
      return Promise.reject(
        new RedisStoreError(
          'REDIS_UNAVAILABLE',
          operation,
          `Redis is unavailable (circuit open): ${operation} not sent`,
        ),
      )
    }
    const failed = (): void => {
      if (breaker?.failure(clock.now(), admission) === true) {
        this.#options.onOpen(
          new RedisStoreError(
            'REDIS_UNAVAILABLE',
            operation,
            'Redis failed repeatedly: the store fails fast until a probe succeeds (tokens are fetched per process meanwhile)',
          ),
        )
      }
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const end = (): void => {
        if (settled) return
        settled = true
        timer.cancel()
        this.#pending.delete(end)
        reject(new RedisStoreError('STORE_CLOSED', operation, 'the Redis store is closed'))
      }
      const timer = clock.setTimer(() => {
        if (settled) return
        settled = true
        this.#pending.delete(end)
        failed()
        reject(
          new RedisStoreError(
            'REDIS_TIMEOUT',
            operation,
            `Redis did not answer ${operation} within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      let pending: Promise<T>
      try {
        pending = call()
      } catch (error) {
        pending = Promise.reject(error instanceof Error ? error : new Error('the client threw a non-error'))
      }
      if (options.bypassBreaker !== true) this.#pending.add(end)
      pending.then(
        (value) => {
          if (settled) return options.abandoned?.(value)
          settled = true
          timer.cancel()
          this.#pending.delete(end)
          breaker?.success()
          resolve(value)
        },
        (error: unknown) => {
          if (settled) return
          settled = true
          timer.cancel()
          this.#pending.delete(end)
          if (isErrorReply(error)) breaker?.success()
          else failed()
          reject(
            new RedisStoreError(
              'REDIS_COMMAND_FAILED',
              operation,
              `Redis ${operation} failed: ${describeClientError(error)}`,
            ),
          )
        },
      )
    })
  }
}
