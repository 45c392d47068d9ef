import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { modulesLoadedBy as loadedBy } from '../support/loaded-modules.js'

const dist = new URL('../../dist/', import.meta.url)

const modulesLoadedBy = (entry: string): string[] => loadedBy(new URL(entry, dist))

describe.skipIf(!existsSync(new URL('index.js', dist)) && process.env['CI'] === undefined)(
  'optional parts stay on their subpaths',
  () => {
    it('importing tokenkeeper loads no Redis, testing, CLI, jose or third-party code', () => {
      const urls = modulesLoadedBy('index.js')
      const ours = urls.filter((url) => url.startsWith(dist.href)).map((url) => url.slice(dist.href.length))
      expect(ours).toContain('index.js')
      expect(ours).toContain('manager/manager.js')
      expect(ours.filter((path) => /^(stores\/redis|testing|cli|lti|integrations)\//.test(path))).toEqual([])
      expect(urls.filter((url) => url.includes('/node_modules/'))).toEqual([])
    })

    it('importing tokenkeeper/otel loads @opentelemetry/api (the check above would see it)', () => {
      const urls = modulesLoadedBy('integrations/otel.js')
      expect(urls.some((url) => url.includes('/node_modules/@opentelemetry/api/'))).toBe(true)
    })

    it.each(['axios', 'undici', 'got', 'azure'])(
      'importing tokenkeeper/%s loads its own file and no third-party code (the library is only a type)',
      (name) => {
        const urls = modulesLoadedBy(`integrations/${name}.js`)
        expect(urls).toContain(new URL(`integrations/${name}.js`, dist).href)
        expect(urls.filter((url) => url.includes('/node_modules/'))).toEqual([])
      },
    )

    it('importing tokenkeeper/testing does load the token server (the check above can see it)', () => {
      const urls = modulesLoadedBy('testing/index.js')
      expect(urls.some((url) => url.startsWith(new URL('testing/', dist).href))).toBe(true)
    })
  },
)
