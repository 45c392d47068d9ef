/* global URL, process, setImmediate */
// One process of the benchmark fleet (see bench/redis.js): a TokenManager with a Redis store on
// the built package, driven over IPC.
import { Redis } from 'ioredis'

const root = new URL('../', import.meta.url)
const core = await import(new URL('dist/index.js', root).href)
const { redisStore } = await import(new URL('dist/stores/redis/index.js', root).href)

let manager
let client
let config
const sources = new Map()
const invalidations = []

function send(message) {
  if (process.connected) process.send(message)
}

function source(scope) {
  let made = sources.get(scope)
  if (made === undefined) {
    made = core.clientCredentials({
      tokenUrl: config.tokenUrl,
      clientId: 'bench',
      auth: core.clientSecretBasic('bench-secret'),
      scopes: [scope],
    })
    sources.set(scope, made)
  }
  return made
}

const handlers = {
  async setup(message) {
    config = message
    client = new Redis(config.redisPort, '127.0.0.1')
    client.on('error', () => {})
    const store = redisStore({ client, prefix: 'bench', encryptionKeys: [{ id: 'bench', key: config.key }] })
    manager = new core.TokenManager({ store })
    manager.on('invalidate', (event) => {
      if (event.origin === 'remote') invalidations.push({ key: event.key, at: Date.now() })
    })
    await store.ready()
    return {}
  },

  /** `n` concurrent gets of one scope; the token ids seen. */
  async burst({ scope, n }) {
    const results = await Promise.allSettled(Array.from({ length: n }, () => manager.get(source(scope))))
    const ids = new Set(results.filter((r) => r.status === 'fulfilled').map((r) => core.tokenId(r.value)))
    return { ids: [...ids], failed: results.filter((r) => r.status === 'rejected').length }
  },

  /** `n` gets spread over `scopes`, `concurrency` at a time. */
  async gets({ scopes, n, concurrency }) {
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        await manager.get(source(scopes[i % scopes.length]))
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return {}
  },

  async invalidate({ scope }) {
    const token = manager.peek(source(scope))
    const at = Date.now()
    await manager.invalidate(source(scope), { token })
    return { at }
  },

  /** When this process dropped `scope`'s token because of someone else's invalidation. */
  async invalidatedAt({ scope, after }) {
    const key = source(scope).key
    return { at: invalidations.find((i) => i.key === key && i.at >= after)?.at ?? null }
  },

  async close() {
    await manager.close()
    client.disconnect()
    setImmediate(() => process.exit(0))
    return {}
  },
}

process.on('message', (message) => {
  Promise.resolve()
    .then(() => handlers[message.cmd](message))
    .then(
      (result) => send({ ...result, type: 'reply', id: message.id }),
      (error) => send({ type: 'reply', id: message.id, error: String(error?.stack ?? error) }),
    )
})
// Never outlive the parent (a killed test run must not leave processes behind).
process.on('disconnect', () => process.exit(0))
send({ type: 'started' })
