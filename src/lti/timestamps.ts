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
    const micros = Math.max(Math.floor(nowMs) * 1000, this.#lastMicros + 1)
    this.#lastMicros = micros
    return formatMicros(micros)
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
