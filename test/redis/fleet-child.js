/* global URL, process, setTimeout, setImmediate */
// One process of a test fleet: a TokenManager on the built package (dist/) with a Redis store,
// driven by its parent over IPC. Plain JS so that it runs without a TypeScript loader.

const root = new URL('../../', import.meta.url)
const core = await import(new URL('dist/index.js', root).href)
const { redisStore } = await import(new URL('dist/stores/redis/index.js', root).href)

/** @type {any} */ let manager
/** @type {any} */ let store
/** @type {any} */ let client
/** @type {any} */ let config
const sources = new Map()
/** Store failures seen by the manager (each a miss) and by the store itself, by kind. */
const storeErrors = {}
const countError = (kind) => {
  storeErrors[kind] = (storeErrors[kind] ?? 0) + 1
}

function send(message) {
  if (process.connected) process.send(message)
}

/** The same key in every process; tells the parent when this process sends a token request. */
function source(scope, tokenUrl = config.tokenUrl) {
  let made = sources.get(`${tokenUrl} ${scope}`)
  if (made === undefined) {
    const real = core.clientCredentials({
      tokenUrl,
      clientId: 'fleet',
      auth: core.clientSecretBasic('fleet-secret'),
      scopes: [scope],
    })
    made = {
      key: real.key,
      fetchToken: (options) => {
        send({ type: 'fetching', pid: process.pid, scope })
        return real.fetchToken(options)
      },
    }
    sources.set(`${tokenUrl} ${scope}`, made)
  }
  return made
}

async function connect() {
  // Only the client in use is loaded: node-redis takes a while to import on a busy machine.
  if (config.sentinels !== undefined) {
    // Redis behind Sentinel: the clients ask the sentinels for the primary, with their default
    // reconnect and retry settings; ioredis with `failoverDetector` (docs/REDIS.md says why).
    if (config.client === 'node-redis') {
      const { createSentinel } = await import('redis')
      client = createSentinel({ name: config.sentinelName, sentinelRootNodes: config.sentinels })
      client.on('error', () => {})
      await client.connect()
      return client
    }
    const { Redis } = await import('ioredis')
    client = new Redis({ sentinels: config.sentinels, name: config.sentinelName, failoverDetector: true })
    client.on('error', () => {})
    return client
  }
  if (config.client === 'node-redis') {
    const { createClient } = await import('redis')
    client = createClient({
      url: `redis://127.0.0.1:${config.redisPort}`,
      socket: { reconnectStrategy: () => 100 },
    })
    client.on('error', () => {})
    await client.connect()
    return client
  }
  const { Cluster, Redis } = await import('ioredis')
  if (config.cluster !== undefined) {
    client = new Cluster(config.cluster, { redisOptions: { retryStrategy: () => 100 } })
    client.on('error', () => {})
    return client
  }
  client = new Redis(config.redisPort, '127.0.0.1', { retryStrategy: () => 100 })
  client.on('error', () => {})
  return client
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const handlers = {
  async setup(message) {
    config = message
    store = redisStore({
      client: await connect(),
      prefix: config.prefix,
      encryptionKeys: [{ id: 'fleet', key: config.key }],
      commandTimeoutMs: config.commandTimeoutMs ?? 500,
      onError: (error) => countError(`store:${error.code}`),
    })
    manager = new core.TokenManager({ store, lockTtlMs: config.lockTtlMs })
    manager.on('storeError', (event) => countError(`${event.operation}:${event.message.slice(0, 40)}`))
    manager.on('invalidate', (event) => {
      if (event.origin === 'remote') send({ type: 'invalidated', scope: event.key, at: Date.now() })
    })
    await store.ready()
    return {}
  },

  /** `n` concurrent gets of one scope. */
  async burst({ scope, n, tokenUrl }) {
    const startedAt = Date.now()
    const errorsBefore = { ...storeErrors }
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => manager.get(source(scope, tokenUrl))),
    )
    const ids = new Set()
    let failed = 0
    for (const result of results) {
      if (result.status === 'fulfilled') ids.add(core.tokenId(result.value))
      else failed++
    }
    const errors = {}
    for (const [kind, count] of Object.entries(storeErrors))
      if (count !== (errorsBefore[kind] ?? 0)) errors[kind] = count - (errorsBefore[kind] ?? 0)
    return { ids: [...ids], failed, ms: Date.now() - startedAt, stats: manager.stats(), storeErrors: errors }
  },

  /** Keeps calling get until `untilMs` (epoch) or until `distinct` different tokens were seen. */
  async renew({ scope, untilMs, distinct, tokenUrl }) {
    const ids = new Set()
    let failed = 0
    while (Date.now() < untilMs && ids.size < distinct) {
      try {
        ids.add(core.tokenId(await manager.get(source(scope, tokenUrl))))
      } catch {
        failed++
      }
      await sleep(10)
    }
    return { ids: [...ids], failed }
  },

  /**
   * `concurrency` loops of gets over `scopes` for `durationMs`, invalidating one token now and then.
   * `served`: each token served, with when (epoch ms) it was last served, for the parent to compare
   * with the token server's expiry. `storeErrorsAt`: when the first and last store error of the run
   * happened (epoch ms), if any.
   */
  async load({ scopes, durationMs, concurrency, invalidateEveryMs }) {
    const until = Date.now() + durationMs
    let ok = 0
    let failed = 0
    const errors = []
    const served = {}
    const storeErrorsBefore = manager.stats().storeErrors
    let firstStoreErrorAt
    let lastStoreErrorAt
    const onStoreError = () => {
      const now = Date.now()
      firstStoreErrorAt ??= now
      lastStoreErrorAt = now
    }
    manager.on('storeError', onStoreError)
    const loop = async (worker) => {
      for (let i = 0; Date.now() < until; i++) {
        const scope = scopes[(worker + i) % scopes.length]
        try {
          const token = await manager.get(source(scope))
          served[token.value] = Date.now()
          ok++
        } catch (error) {
          failed++
          if (errors.length < 3) errors.push(String(error?.code ?? error?.message))
        }
        await sleep(2)
      }
    }
    const invalidator = async () => {
      while (Date.now() < until) {
        await sleep(invalidateEveryMs)
        const scope = scopes[Math.floor(Math.random() * scopes.length)]
        const token = manager.peek(source(scope))
        if (token !== undefined) await manager.invalidate(source(scope), { token })
      }
    }
    await Promise.all([...Array.from({ length: concurrency }, (_, worker) => loop(worker)), invalidator()])
    manager.off('storeError', onStoreError)
    return {
      ok,
      failed,
      errors,
      served,
      storeErrorsAt: firstStoreErrorAt === undefined ? null : [firstStoreErrorAt, lastStoreErrorAt],
      storeErrorCount: manager.stats().storeErrors - storeErrorsBefore,
      stats: manager.stats(),
      storeErrors,
    }
  },

  /** Waits (bounded) until the store answers again. */
  async healthy({ timeoutMs }) {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      try {
        await store.get('fleet:probe')
        if (store.circuit === 'closed') return { ok: true }
      } catch {
        // not yet
      }
      await sleep(50)
    }
    return { ok: false }
  },

  async invalidate({ scope, tokenUrl }) {
    const token = manager.peek(source(scope, tokenUrl))
    const at = Date.now()
    const removed = await manager.invalidate(source(scope, tokenUrl), token === undefined ? {} : { token })
    return { removed, at }
  },

  async peek({ scope, tokenUrl }) {
    const token = manager.peek(source(scope, tokenUrl))
    return { tokenId: token === undefined ? null : core.tokenId(token) }
  },

  async redisInfo() {
    return { stats: manager.stats() }
  },

  async close() {
    await manager.close()
    if (config.client === 'node-redis' && config.cluster === undefined) client.destroy()
    else client.disconnect()
    setImmediate(() => process.exit(0))
    return {}
  },
}

process.on('message', (message) => {
  const handler = handlers[message.cmd]
  Promise.resolve()
    .then(() => handler(message))
    .then(
      (result) => send({ ...result, type: 'reply', id: message.id }),
      (error) => send({ type: 'reply', id: message.id, error: String(error?.stack ?? error) }),
    )
})
// Never outlive the parent (a killed test run must not leave processes behind).
process.on('disconnect', () => process.exit(0))
send({ type: 'started' })
