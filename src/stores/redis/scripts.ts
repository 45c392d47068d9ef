import { createHash } from 'node:crypto'

/** A Lua script, sent as `EVALSHA` and, once per server after a `NOSCRIPT`, as `EVAL`. */
export interface Script {
  readonly source: string
  readonly sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/**
 * Write-if-newer. KEYS[1] token key. ARGV: value, its expiry (epoch ms), PX, channel, message,
 * and optionally a stored value the writer could not decode (an unknown key id, tampered, not a
 * record): that exact value is replaced whatever it claims. Keeps any other stored record with
 * more time left (its PTTL against this PX: Redis' own countdown, which writers whose clocks
 * disagree cannot fool, unlike their `exp`); otherwise writes and publishes `message`. Returns 1
 * when written, 0 when not. A key of another Redis type (a hash, a list: GET answers WRONGTYPE) is
 * not a record either: it is replaced.
 */
export const SET_IF_NEWER = script(`
local current = redis.pcall('GET', KEYS[1])
if type(current) == 'table' then current = false end
if current and current ~= ARGV[6] then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' then
    if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[3]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

/**
 * Compare-and-delete. KEYS[1] token key. ARGV: '0' (any token) or '1' .. token id, channel,
 * cache key, origin. Publishes a delete event naming the deleted token id, and also when nothing was
 * deleted (naming the given id): other processes may still hold that token in memory. Returns the
 * deleted token id ('' if unreadable, or a key of another Redis type), or nil when nothing was deleted.
 */
export const DELETE_IF = script(`
local current = redis.pcall('GET', KEYS[1])
if type(current) == 'table' then current = '' end
local id = nil
if current then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' and type(record.id) == 'string' then id = record.id end
end
local wanted = nil
if ARGV[1] ~= '0' then wanted = string.sub(ARGV[1], 2) end
local event = { t = 'delete', k = ARGV[3], o = ARGV[4] }
if current and (wanted == nil or id == wanted) then
  redis.call('DEL', KEYS[1])
  if id then event.id = id end
  redis.call('PUBLISH', ARGV[2], cjson.encode(event))
  return id or ''
end
if wanted then event.id = wanted end
redis.call('PUBLISH', ARGV[2], cjson.encode(event))
return false
`)

/**
 * Releases a lock its owner still holds. KEYS[1] lock key. ARGV: owner, channel, message. A lock
 * key of another Redis type is not the owner's (pcall: its WRONGTYPE is no failure).
 */
export const RELEASE_LOCK = script(`
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`)
