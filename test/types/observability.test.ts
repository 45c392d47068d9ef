// Type tests for the observability API: checked by `npm run typecheck`, run by vitest.
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  CHANNEL_NAMES,
  subscribeChannel,
  TokenManager,
  type FailFastEvent,
  type LockWaitEvent,
  type HitEvent,
  type RefreshFailureEvent,
  type StoreErrorEvent,
  type TokenkeeperChannelMessages,
  type TokenkeeperChannelName,
  type TokenkeeperLogger,
  type TokenManagerEvents,
} from '../../src/index.js'
import { instrument, type Instrumentation } from '../../src/integrations/otel.js'

describe('observability types', () => {
  it('every channel name maps to its event payload', () => {
    expectTypeOf<TokenkeeperChannelMessages['tokenkeeper:hit']>().toEqualTypeOf<HitEvent>()
    expectTypeOf<
      TokenkeeperChannelMessages['tokenkeeper:refresh:failure']
    >().toEqualTypeOf<RefreshFailureEvent>()
    expectTypeOf<TokenkeeperChannelMessages['tokenkeeper:store:error']>().toEqualTypeOf<StoreErrorEvent>()
    expectTypeOf<TokenkeeperChannelMessages['tokenkeeper:fail-fast']>().toEqualTypeOf<FailFastEvent>()
    expectTypeOf<TokenkeeperChannelMessages['tokenkeeper:lock:wait']>().toEqualTypeOf<LockWaitEvent>()
    expectTypeOf<TokenkeeperChannelName>().toEqualTypeOf<(typeof CHANNEL_NAMES)[keyof TokenManagerEvents]>()
    // One channel per event, no more.
    expectTypeOf<keyof TokenkeeperChannelMessages>().toEqualTypeOf<
      (typeof CHANNEL_NAMES)[keyof typeof CHANNEL_NAMES]
    >()
  })

  it('subscribeChannel types the message without a cast', () => {
    const stop = subscribeChannel(CHANNEL_NAMES.refreshFailure, (event, name) => {
      expectTypeOf(event).toEqualTypeOf<RefreshFailureEvent>()
      expectTypeOf(event.retryAt).toEqualTypeOf<number>()
      expectTypeOf(name).toEqualTypeOf<'tokenkeeper:refresh:failure'>()
    })
    expectTypeOf(stop).toEqualTypeOf<() => void>()
    stop()
    const stops: (() => void)[] = []
    // @ts-expect-error not a tokenkeeper channel
    stops.push(subscribeChannel('tokenkeeper:refreshed', () => undefined))
    // @ts-expect-error a hit has no retryAt
    stops.push(subscribeChannel('tokenkeeper:hit', (event) => void event.retryAt))
    for (const unsubscribe of stops) unsubscribe()
  })

  it('the logger option takes console and pino-shaped loggers, not anything', async () => {
    const tokens = new TokenManager({ logger: console })
    expectTypeOf(console).toMatchTypeOf<TokenkeeperLogger>()
    const pinoLike = { debug: (_o: object, _m?: string) => undefined, info() {}, warn() {}, error() {} }
    expectTypeOf(pinoLike).toMatchTypeOf<TokenkeeperLogger>()
    // @ts-expect-error a logger needs debug/info/warn/error
    expect(() => new TokenManager({ logger: { log() {} } })).toThrow(TypeError)
    tokens.on('failFast', (event) => expectTypeOf(event.code).toBeString())
    expectTypeOf(instrument(tokens)).toEqualTypeOf<Instrumentation>()
    await tokens.close()
  })
})
