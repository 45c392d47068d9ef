// Scenario 5, memory: heap bytes per cached entry at 100,000 keys.
//
//   node --expose-gc bench/memory.js          prints a table
//   node --expose-gc bench/memory.js --json   prints one JSON line (used by bench/run.js)
//
// No network: the keys are `tokenSource()` function sources that return a raw RFC 6749 token
// response (`{ access_token, token_type, expires_in }`), so the manager parses and caches real
// AccessToken objects exactly as for an HTTP source. Each case is measured as the growth of
// `process.memoryUsage().heapUsed` after full garbage collections, before and after filling.
// The key strings (and the source objects) exist before each "before" snapshot and are shared
// by every case, so they are not counted; the token strings are made during the fill in every case.
/* global console, process, setImmediate */
import { randomBytes } from 'node:crypto'
import { parseTokenResponse, TokenManager, tokenSource } from '../dist/index.js'

const KEYS = 100_000
const CHUNK = 5_000

if (typeof globalThis.gc !== 'function') {
  console.error('bench/memory.js needs --expose-gc: node --expose-gc bench/memory.js')
  process.exit(2)
}

async function heapUsed() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

/** Heap growth per key while `fill()` builds a structure that stays referenced until measured. */
async function measure(fill) {
  const before = await heapUsed()
  const kept = await fill()
  const after = await heapUsed()
  return { bytesPerEntry: (after - before) / KEYS, kept }
}

/** An opaque token value shaped like the test server's (`tkt_` + 32 random bytes, base64url). */
const tokenValue = () => `tkt_${randomBytes(32).toString('base64url')}`
const response = () => ({ access_token: tokenValue(), token_type: 'Bearer', expires_in: 3600 })

const sources = Array.from({ length: KEYS }, (_, i) => tokenSource(`bench-memory-${i}`, response))
const keys = sources.map((source) => source.key)

// Baseline: the smallest cache that still knows when a token expires.
const baseline = await measure(() => {
  const map = new Map()
  const expiresAt = Date.now() + 3_600_000
  for (const key of keys) map.set(key, { value: tokenValue(), expiresAt })
  return map
})

// What a cached AccessToken costs by itself (held in an array: 8 bytes of the array per entry).
const accessTokens = await measure(() => {
  const issuedAt = Date.now()
  return keys.map(() => parseTokenResponse(response(), { issuedAt, endpoint: 'bench' }))
})
accessTokens.kept = undefined

async function fill(tokens) {
  for (let i = 0; i < KEYS; i += CHUNK) {
    await Promise.all(sources.slice(i, i + CHUNK).map((source) => tokens.get(source)))
  }
  return tokens
}

// The TokenManager, every key fetched once through get().
const manager = await measure(() => fill(new TokenManager({ maxEntries: KEYS })))
const managerEntries = manager.kept.stats().entries

// The same manager, forgotten (clear) and filled again: as many entries as before, 100,000 more
// token requests. Whatever the heap keeps of this is held per token request, not per entry, and
// grows for as long as the manager lives.
const refetch = await measure(async () => {
  await manager.kept.clear()
  return fill(manager.kept)
})
await manager.kept.close()

const result = {
  keys: KEYS,
  managerEntries,
  baselineBytesPerEntry: baseline.bytesPerEntry,
  accessTokenBytesPerEntry: accessTokens.bytesPerEntry,
  managerBytesPerEntry: manager.bytesPerEntry,
  retainedBytesPerRequest: refetch.bytesPerEntry,
  ratio: manager.bytesPerEntry / baseline.bytesPerEntry,
  baselineSize: baseline.kept.size,
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(result))
} else {
  const fmt = (n) => n.toFixed(0).padStart(6)
  console.log(`Memory at ${KEYS.toLocaleString('en-US')} keys (heapUsed growth after gc, per entry)`)
  console.log(
    `  Map<string, { value, expiresAt }>  [baseline]  ${fmt(result.baselineBytesPerEntry)} B  1.00x`,
  )
  console.log(`  AccessToken alone  [diagnostic]               ${fmt(result.accessTokenBytesPerEntry)} B`)
  console.log(
    `  TokenManager (${managerEntries} entries)                ${fmt(result.managerBytesPerEntry)} B  ${result.ratio.toFixed(2)}x`,
  )
  console.log(`  retained per extra token request (same entries) ${fmt(result.retainedBytesPerRequest)} B`)
}
