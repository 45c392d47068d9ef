import type { CommandRunner } from './breaker.js'
import { replyString, type Connection } from './client.js'

const SCAN_COUNT = '500'
const MAX_SCAN_ROUNDS = 1_000_000

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * Deletes every token key under `prefix` (`${prefix}:{*}:t`) with SCAN MATCH + UNLINK on each
 * master, so a cluster is cleared node by node and nothing outside the prefix is touched. Locks
 * are left to expire by themselves (deleting a held lock would let a second fetch start).
 */
export async function deleteTokenKeys(
  connection: Connection,
  runner: CommandRunner,
  prefix: string,
): Promise<void> {
  const pattern = `${escapeGlob(prefix)}:{*}:t`
  const masters = await runner.run('clear', () => connection.masters())
  for (const node of masters) {
    let cursor = '0'
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const reply = await runner.run('clear', () =>
        node.send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT]),
      )
      const [next, found] = Array.isArray(reply) ? (reply as unknown[]) : []
      const keys = Array.isArray(found) ? found.map(replyString).filter((key) => key !== undefined) : []
      if (keys.length > 0) {
        if (connection.cluster) {
          // Each key has its own hash tag (slot) in a cluster: one UNLINK per key.
          await Promise.all(
            keys.map((key) => runner.run('clear', () => connection.send(['UNLINK', key], key))),
          )
        } else {
          await runner.run('clear', () => connection.send(['UNLINK', ...keys], keys[0]))
        }
      }
      cursor = replyString(next) ?? '0'
      if (cursor === '0') break
    }
  }
}
