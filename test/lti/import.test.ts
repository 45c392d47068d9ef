import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const dist = new URL('../../dist/', import.meta.url)

// Imports the entry point in a fresh process and reports every module URL that got loaded.
const recorder = `
import { register } from 'node:module'
const hooks = 'data:text/javascript,' + encodeURIComponent(\`
  export async function load(url, context, next) {
    process.stderr.write('LOADED ' + url + '\\\\n')
    return next(url, context)
  }\`)
register(hooks)
await import(process.argv[1])
`

describe.skipIf(!existsSync(new URL('lti/index.js', dist)) && process.env['CI'] === undefined)(
  'tokenkeeper/lti',
  () => {
    it('loads no jose (it signs lazily), no Redis, testing or CLI code, and no third-party code', () => {
      const result = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', recorder, new URL('lti/index.js', dist).href],
        {
          cwd: root,
          encoding: 'utf8',
        },
      )
      expect(result.status).toBe(0)
      const urls = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('LOADED '))
        .map((line) => line.slice('LOADED '.length))
      const ours = urls.filter((url) => url.startsWith(dist.href)).map((url) => url.slice(dist.href.length))
      expect(ours).toContain('lti/grades.js')
      expect(ours.filter((path) => /^(stores\/redis|testing|cli)\//.test(path))).toEqual([])
      expect(urls.filter((url) => url.includes('/node_modules/'))).toEqual([])
    })
  },
)
