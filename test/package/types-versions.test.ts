/**
 * package.json `typesVersions` gives TypeScript's `moduleResolution: node10`, which ignores
 * `exports`, the same declarations as `exports` gives every other setting: one entry per typed
 * subpath, pointing at that subpath's `types`. (test/package/consumers.test.ts type-checks a
 * node10 project against them.)
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

interface PackageJson {
  readonly types: string
  readonly exports: Readonly<Record<string, string | { readonly types: string }>>
  readonly typesVersions: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>
}

const pkg = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'),
) as PackageJson

const typed = Object.entries(pkg.exports).flatMap(([subpath, target]) =>
  typeof target === 'string' ? [] : [[subpath, target.types] as const],
)

describe('package.json typesVersions', () => {
  it('has the root types of exports "." as the top-level types', () => {
    expect(typed.find(([subpath]) => subpath === '.')?.[1]).toBe(pkg.types)
  })

  it('maps every other typed subpath of exports, for every TypeScript version, and nothing else', () => {
    expect(Object.keys(pkg.typesVersions)).toEqual(['*'])
    const expected = Object.fromEntries(
      typed.filter(([subpath]) => subpath !== '.').map(([subpath, types]) => [subpath.slice(2), [types]]),
    )
    expect(pkg.typesVersions['*']).toEqual(expected)
  })
})
