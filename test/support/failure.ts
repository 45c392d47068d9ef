import { isTokenkeeperError, type TokenkeeperError } from '../../src/index.js'

/** The TokenkeeperError `promise` rejects with; throws when it resolves or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<TokenkeeperError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  if (!isTokenkeeperError(error)) throw new Error(`expected a TokenkeeperError, got ${String(error)}`)
  return error
}
