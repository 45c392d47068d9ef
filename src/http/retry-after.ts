/**
 * The longest delay a `Retry-After` gives: 2^31 - 1 ms (about 24.8 days), the longest a
 * `setTimeout` can wait. A larger value (`99999999999`, a date in the year 9999) is clamped to
 * it, so that `retryAfterMs` is a finite delay a caller can hand to a timer.
 */
export const MAX_RETRY_AFTER_MS = 2 ** 31 - 1

/**
 * Reads a `Retry-After` header (RFC 9110 §10.2.3): a number of seconds or an HTTP-date.
 * Returns the delay in milliseconds, or undefined when the header is absent or unreadable.
 * A date in the past gives 0; a delay beyond {@link MAX_RETRY_AFTER_MS} gives that.
 *
 * @example
 * ```ts
 * parseRetryAfter('120', Date.now()) // 120000
 * ```
 */
export function parseRetryAfter(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS)
  if (text === '' || /^[\d.+-]/.test(text)) return undefined
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS)
}
