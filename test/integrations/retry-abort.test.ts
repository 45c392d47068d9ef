import axios from 'axios'
import got from 'got'
import { Agent, fetch as undiciFetch } from 'undici'
import { describe, expect, it } from 'vitest'
import { attachTokens } from '../../src/integrations/axios.js'
import { gotTokens } from '../../src/integrations/got.js'
import { tokenInterceptor } from '../../src/integrations/undici.js'
import { onCleanup, startHarness } from '../faults/harness.js'

type Harness = Awaited<ReturnType<typeof startHarness>>

/** Each client sending a GET with the caller's signal; resolves to the status, rejects on abort. */
const clients: Record<string, (h: Harness, url: string, signal: AbortSignal) => Promise<number>> = {
  'tokens.fetch': async ({ tokens, source }, url, signal) =>
    (await tokens.fetch(source())(url, { signal })).status,
  axios: async ({ tokens, source }, url, signal) => {
    const api = axios.create()
    attachTokens(api, tokens, source())
    return (await api.get(url, { signal })).status
  },
  got: async ({ tokens, source }, url, signal) => {
    const api = got.extend({ retry: { limit: 0 } }, gotTokens(tokens, source()))
    return (await api.get(url, { signal })).statusCode
  },
  'undici fetch': async ({ tokens, source }, url, signal) => {
    const agent = new Agent().compose(tokenInterceptor(tokens, source()))
    onCleanup(() => agent.close())
    return (await undiciFetch(url, { dispatcher: agent, signal })).status
  },
}

describe.each(Object.keys(clients))(
  '%s: the caller aborts while the retry waits for a renewed token',
  (name) => {
    it('the call ends at once with an abort; the renewal goes on for the others, no second API call', async () => {
      const harness = await startHarness()
      const { server, tokens, source } = harness
      const first = await tokens.get(source())
      server.revoke(first.value)
      const hold = server.hold()
      const controller = new AbortController()
      const call = clients[name]!(harness, server.resourceUrl, controller.signal)
      await server.waitForRequests(2)
      controller.abort(new Error('caller gave up'))
      const error = await call.catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect(String((error as Error).message) + String((error as Error).name)).toMatch(
        /caller gave up|abort|cancel/i,
      )
      hold.release()
      // The renewal completes for everyone else; the aborted call sent no retry.
      const renewed = await tokens.get(source())
      expect(renewed.value).not.toBe(first.value)
      expect(server.stats()).toMatchObject({ tokenRequests: 2, resourceCalls: 1 })
    })
  },
)
