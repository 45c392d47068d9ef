import type { AddressInfo, Server } from 'node:net'
import type * as OidcProvider from 'oidc-provider'
import { vi } from 'vitest'

/**
 * oidc-provider, loaded with its console notices (an "unsupported runtime" warning on Node 20,
 * the development-only memory adapter) kept out of the test output; other console output passes
 * on. `vi.restoreAllMocks()` puts the console back.
 */
export async function loadOidcProvider(): Promise<typeof OidcProvider> {
  for (const method of ['info', 'warn'] as const) {
    const original = console[method].bind(console)
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) return
      original(...args)
    })
  }
  return import('oidc-provider')
}

/** Starts `server` (http or https) on a free port of 127.0.0.1; resolves to that port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}
