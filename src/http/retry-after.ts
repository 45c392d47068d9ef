/**
 * Reads a `Retry-After` header (RFC 9110 §10.2.3): a number of seconds or an HTTP-date.
 * Returns the delay in milliseconds, or undefined when the header is absent or unreadable.
 * A date in the past gives 0.
 *
 * @example
 * ```ts
 * parseRetryAfter('120', Date.now()) // 120000
 * ```
 */
export function parseRetryAfter(header: string | null | undefined, now: number): number | undefined {
  if (header === null || header === undefined) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (text === '' || /^[\d.+-]/.test(text)) return undefined
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}
