// The logger option: pino, winston or console. Renewals are debug, failures warn, callers failed
// fast debug (summarised), the store failing warn and recovering info. No line carries a token.
import pino from 'pino'
import { TokenManager, tokenSource } from 'tokenkeeper'

const logger = pino({ level: 'debug' }) // JSON lines on stdout; fields under "tokenkeeper"
const tokens = new TokenManager({ logger })

let calls = 0
const source = tokenSource('example:flaky-source', () => {
  if (++calls === 1) throw new Error('identity provider unreachable')
  return { access_token: `example-token-${calls}`, expires_in: 300 }
})
await tokens.get(source).catch(() => undefined) // warn: the refresh failed
await tokens.get(source).catch(() => undefined) // debug: failing fast during the backoff
await tokens.close()

// console works the same way (debug lines go to console.debug).
const plain = new TokenManager({ logger: console })
await plain.get(tokenSource('example:console', () => ({ access_token: 'example-console', expires_in: 300 })))
await plain.close()
