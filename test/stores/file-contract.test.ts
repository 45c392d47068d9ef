/** The CLI's token cache is a TokenStore like the others: it passes the same contract suite. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileStore } from '../../src/stores/file/store.js'
import { createTestClock } from '../../src/testing/test-clock.js'
import { describeStoreContract } from './contract.js'

describeStoreContract('the CLI file store on a test clock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenkeeper-file-contract-'))
  const clock = createTestClock(Date.now())
  return {
    store: fileStore({ dir: join(dir, 'cache'), keyFile: join(dir, 'data', 'cache.key'), clock }),
    advance: (ms) => clock.advance(ms),
    now: () => clock.now(),
    cleanup: async () => {
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
