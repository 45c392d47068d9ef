// A demo worker process: runs its share of the workload, sharing tokens through Redis when asked.
// Started by fleet.ts with an IPC channel; it reads its settings (and the demo's secrets) only from it.
import { redisStore } from '../../stores/redis/index.js'
import type { TokenStore } from '../../stores/types.js'
import { CliError, ExitCode } from '../errors.js'
import { naiveClient, tokenkeeperClient } from './clients.js'
import { PROGRESS_MS, type FromWorker, type ToWorker } from './fleet-protocol.js'
import { loadRedisClient, type DemoRedisClient } from './redis-client.js'
import { runWorkload } from './workload.js'

let redis: { client: DemoRedisClient; prefix: string; key: string } | undefined

function send(message: FromWorker): void {
  process.send?.(message)
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'init': {
      if (message.redis !== undefined) {
        const client = await loadRedisClient(message.redis.url)
        redis = { client, prefix: message.redis.prefix, key: message.redis.key }
      }
      send({ type: 'ready' })
      return
    }
    case 'run': {
      let store: TokenStore | undefined
      if (message.spec.kind === 'tokenkeeper' && redis !== undefined) {
        store = redisStore({
          client: redis.client,
          prefix: redis.prefix,
          encryptionKeys: [{ id: 'demo', key: redis.key }],
        })
      }
      const client =
        message.spec.kind === 'tokenkeeper'
          ? tokenkeeperClient(message.spec, store)
          : naiveClient(message.spec)
      const workload = runWorkload(client, message.shape)
      const ticker = setInterval(() => send({ type: 'progress', progress: workload.progress() }), PROGRESS_MS)
      try {
        send({ type: 'done', report: await workload.done })
      } finally {
        clearInterval(ticker)
      }
      return
    }
    case 'exit':
      redis?.client.disconnect()
      process.disconnect()
      return
  }
}

process.on('message', (message: ToWorker) => {
  handle(message).catch((error: unknown) => {
    const exitCode = error instanceof CliError ? error.exitCode : ExitCode.failure
    send({ type: 'error', message: error instanceof Error ? error.message : 'worker failed', exitCode })
  })
})
