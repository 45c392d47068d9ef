/**
 * Score timestamps (AGS 2.0 §3.4.9): ISO 8601 with sub-second precision and a `Z` designator,
 * strictly increasing. A millisecond clock cannot do that alone (two scores in one millisecond
 * would share a timestamp and the platform would drop the second), so timestamps carry
 * microseconds and each is at least one microsecond after the previous one.
 *
 * One generator serves every score posted through one {@link TokenManager}, so timestamps are
 * strictly increasing across all of them: in particular per user and line item, which is what
 * the spec requires. It also keeps increasing if the wall clock steps back.
 *
 * @internal
 */
export class ScoreTimestamps {
  #lastMicros = 0

  /** The next timestamp at or after `nowMs`. */
  next(nowMs: number): string {
    return formatMicros(this.nextMicros(nowMs))
  }

  /** The next timestamp at or after `nowMs`, in epoch microseconds. */
  nextMicros(nowMs: number): number {
    const micros = Math.max(Math.floor(nowMs) * 1000, this.#lastMicros + 1)
    this.#lastMicros = micros
    return micros
  }
}

/** `2026-01-01T00:00:00.123456Z` for an instant in epoch microseconds. @internal */
export function formatMicros(micros: number): string {
  const ms = Math.floor(micros / 1000)
  const extra = String(micros - ms * 1000).padStart(3, '0')
  return new Date(ms).toISOString().replace('Z', `${extra}Z`)
}

const shared = new WeakMap<object, ScoreTimestamps>()

/** The generator shared by everything posting through `owner` (a TokenManager). @internal */
export function timestampsFor(owner: object): ScoreTimestamps {
  let timestamps = shared.get(owner)
  if (timestamps === undefined) {
    timestamps = new ScoreTimestamps()
    shared.set(owner, timestamps)
  }
  return timestamps
}

/** How many (line item, user) pairs {@link PostedScores} remembers; the oldest are forgotten first. */
const MAX_REMEMBERED_SCORES = 100_000

/**
 * The newest score posted (2xx) per (line item, user), by the timestamp it was first sent with:
 * a retry of an older score is dropped once a newer one was posted (AGS 2.0 §3.4.9), so a retry
 * never overwrites a newer grade. Bounded: the pairs least recently posted are forgotten first.
 *
 * @internal
 */
export class PostedScores {
  readonly #newest = new Map<string, number>()
  readonly #max: number

  constructor(max = MAX_REMEMBERED_SCORES) {
    this.#max = max
  }

  /** Records that the score first stamped `micros` for `key` was posted. */
  posted(key: string, micros: number): void {
    const known = this.#newest.get(key)
    this.#newest.delete(key)
    this.#newest.set(key, known === undefined ? micros : Math.max(known, micros))
    if (this.#newest.size > this.#max) {
      const oldest = this.#newest.keys().next().value
      if (oldest !== undefined) this.#newest.delete(oldest)
    }
  }

  /** Whether a score newer than the one first stamped `micros` was posted for `key`. */
  superseded(key: string, micros: number): boolean {
    const known = this.#newest.get(key)
    return known !== undefined && known > micros
  }
}

const posted = new WeakMap<object, PostedScores>()

/** The record shared by everything posting through `owner` (a TokenManager). @internal */
export function postedScoresFor(owner: object): PostedScores {
  let record = posted.get(owner)
  if (record === undefined) {
    record = new PostedScores()
    posted.set(owner, record)
  }
  return record
}
