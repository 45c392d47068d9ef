import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { modulesLoadedBy } from '../support/loaded-modules.js'

const dist = new URL('../../dist/', import.meta.url)

describe.skipIf(!existsSync(new URL('lti/index.js', dist)) && process.env['CI'] === undefined)(
  'tokenkeeper/lti',
  () => {
    it('loads no jose (it signs lazily), no Redis, testing or CLI code, and no third-party code', () => {
      const urls = modulesLoadedBy(new URL('lti/index.js', dist))
      const ours = urls.filter((url) => url.startsWith(dist.href)).map((url) => url.slice(dist.href.length))
      expect(ours).toContain('lti/grades.js')
      expect(ours.filter((path) => /^(stores\/redis|testing|cli)\//.test(path))).toEqual([])
      expect(urls.filter((url) => url.includes('/node_modules/'))).toEqual([])
    })
  },
)
