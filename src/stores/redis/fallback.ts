/**
 * What the store does when Redis refuses its Lua scripts (an ACL without `EVAL`/`EVALSHA`, or
 * the commands renamed away): the same rules with plain commands. They are not atomic; the
 * worst a race between two processes can do is keep an earlier-expiring token, delete a token
 * written a moment later, or release a lock that had just expired and been taken by another
 * process: each costs at most one extra token request, never a wrong or expired token.
 */
import type { CommandSender } from './client.js'
import { replyString } from './client.js'
import { isWrongType } from './errors.js'

/** Whether `error` says that Redis will not run scripts for this user (as opposed to a failing script). */
export function scriptsRefused(error: unknown): boolean {
  const message = error instanceof Error ? error.message : ''
  return (
    /^NOPERM\b.*'(evalsha|eval)'/i.test(message) || /^ERR unknown command .?(evalsha|eval)\b/i.test(message)
  )
}

type Send = (args: readonly string[]) => Promise<unknown>

/**
 * `GET key` as the scripts read it: the string, undefined when there is none, and `wrongType` when
 * the key holds another Redis type (WRONGTYPE: foreign data, not a record).
 */
async function read<W>(send: Send, key: string, wrongType: W): Promise<string | undefined | W> {
  try {
    return replyString(await send(['GET', key]))
  } catch (error) {
    if (isWrongType(error)) return wrongType
    throw error
  }
}

function isRecordText(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text)
    return typeof parsed === 'object' && parsed !== null
  } catch {
    return false
  }
}

function storedId(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { id?: unknown }
    return typeof parsed === 'object' && parsed !== null && typeof parsed.id === 'string'
      ? parsed.id
      : undefined
  } catch {
    return undefined
  }
}

/** {@link SET_IF_NEWER} without Lua. Same arguments and reply. */
export async function setIfNewer(
  send: Send,
  keys: readonly string[],
  args: readonly string[],
): Promise<number> {
  const [key] = keys as [string]
  const [value, , px, channel, message, replaceable] = args as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ]
  // A key of another type is replaced, whatever its TTL.
  const current = await read(send, key, undefined)
  if (current !== undefined && current !== replaceable) {
    if (isRecordText(current) && Number(await send(['PTTL', key])) > Number(px)) return 0
  }
  await send(['SET', key, value, 'PX', px])
  await send(['PUBLISH', channel, message])
  return 1
}

/** {@link DELETE_IF} without Lua. Same arguments and reply (the deleted id, '' or null). */
export async function deleteIf(
  send: Send,
  keys: readonly string[],
  args: readonly string[],
): Promise<string | null> {
  const [key] = keys as [string]
  const [match, channel, cacheKey, origin] = args as [string, string, string, string]
  const current = await read(send, key, '')
  const id = current === undefined ? undefined : storedId(current)
  const wanted = match === '0' ? undefined : match.slice(1)
  if (current !== undefined && (wanted === undefined || id === wanted)) {
    await send(['DEL', key])
    await send(['PUBLISH', channel, JSON.stringify({ t: 'delete', k: cacheKey, o: origin, id })])
    return id ?? ''
  }
  await send(['PUBLISH', channel, JSON.stringify({ t: 'delete', k: cacheKey, o: origin, id: wanted })])
  return null
}

/** {@link RELEASE_LOCK} without Lua: deletes the lock if it still names `owner`. Same reply. */
export async function releaseLock(
  send: Send,
  keys: readonly string[],
  args: readonly string[],
): Promise<number> {
  const [key] = keys as [string]
  const [owner, channel, message] = args as [string, string, string]
  if ((await read(send, key, undefined)) !== owner) return 0
  await send(['DEL', key])
  await send(['PUBLISH', channel, message])
  return 1
}

/** A sender's `send` bound to a route key (cluster slot). */
export function routed(connection: CommandSender, route: string | undefined): Send {
  return (args) => connection.send(args, route)
}
