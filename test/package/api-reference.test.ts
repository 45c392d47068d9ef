/**
 * The API reference (`npm run docs:api`, checked by `npm run docs:check` in `npm run lint`)
 * covers every entry point a user can import: each subpath of package.json `exports` is a
 * TypeDoc entry point, and its module carries the name users import it by.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string): unknown => JSON.parse(readFileSync(root + path, 'utf8'))

interface PackageJson {
  readonly name: string
  readonly exports: Readonly<Record<string, string | { readonly types: string }>>
}

const pkg = read('package.json') as PackageJson
const typedoc = read('typedoc.json') as { readonly entryPoints: readonly string[] }

/** The subpaths with types, as `[import name, source file]`: `./redis` -> `tokenkeeper/redis`. */
const subpaths = Object.entries(pkg.exports).flatMap(([subpath, target]) =>
  typeof target === 'string'
    ? []
    : [
        [
          subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`,
          target.types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts'),
        ] as const,
      ],
)

describe('the API reference', () => {
  it('finds the typed subpaths of package.json', () => {
    expect(subpaths.map(([name]) => name)).toContain('tokenkeeper/redis')
    expect(subpaths.length).toBeGreaterThanOrEqual(9)
  })

  it('has every exported subpath as an entry point, and nothing else', () => {
    expect([...typedoc.entryPoints].sort()).toEqual(subpaths.map(([, source]) => source).sort())
  })

  it.each(subpaths)('names the module of %s as users import it', (name, source) => {
    expect(readFileSync(root + source, 'utf8')).toMatch(
      new RegExp(`^/\\*\\*[\\s\\S]*?@packageDocumentation\\s*\\n \\* @module ${name}\\n \\*/`),
    )
  })
})
