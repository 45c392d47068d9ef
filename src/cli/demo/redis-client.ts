import type { Redis as IoRedis } from 'ioredis'
import type { IoredisLike } from '../../stores/redis/client.js'
import { CliError, ExitCode } from '../errors.js'

/** The ioredis client the demo uses, as far as it needs it. */
export interface DemoRedisClient extends IoredisLike {
  disconnect(): void
}

/**
 * Connects to `url` with ioredis, loaded only now: ioredis is an optional dependency that only
 * `tokenkeeper demo --redis` needs. Fails with exit code 3 when it is not installed and 5 when
 * Redis cannot be reached.
 */
export async function loadRedisClient(url: string): Promise<DemoRedisClient> {
  let Redis: typeof IoRedis
  try {
    ;({ Redis } = await import('ioredis'))
  } catch {
    throw new CliError(ExitCode.config, '--redis needs the optional package ioredis: npm install ioredis')
  }
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3_000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.ping()
  } catch (error) {
    client.disconnect()
    const why = error instanceof Error ? error.message : 'no answer'
    throw new CliError(ExitCode.unavailable, `cannot reach Redis at ${redactUrl(url)}: ${why}`)
  }
  return client
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(invalid URL)'
  }
}
