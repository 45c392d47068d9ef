// Events, diagnostics_channel and stats: what to wire into logs and metrics.
import { subscribeChannel, TokenManager, tokenSource, type RefreshFailureEvent } from 'tokenkeeper'

const tokens = new TokenManager()

tokens.on('refreshFailure', (event: RefreshFailureEvent) => {
  console.warn(`token renewal failed for ${event.key}: ${event.code}; serving cached: ${event.servingCached}`)
})
tokens.on('stale', (event) => console.warn(`serving a cached token for ${event.key} while renewal fails`))

// diagnostics_channel: for tracers and metrics agents; nothing is built unless someone subscribes.
// subscribeChannel types each message by its channel (node:diagnostics_channel's own subscribe gives `unknown`).
const stop = subscribeChannel('tokenkeeper:refresh:success', (event) => {
  console.log(`renewed ${event.key} in ${event.durationMs} ms (${event.origin})`)
})

let issued = 0
const source = tokenSource('example:function-source', () => ({
  access_token: `example-${++issued}`,
  expires_in: 300,
}))
await tokens.get(source)
await tokens.get(source)
console.log(tokens.stats()) // hits 1, misses 1, fetches 1, ... no secrets
stop()
await tokens.close()
