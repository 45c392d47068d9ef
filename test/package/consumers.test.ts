/**
 * What an npm user's project sees: `require('tokenkeeper')` from CommonJS (Node >= 20.19 loads
 * ES modules through require), and the type declarations under every TypeScript module setting
 * the README names (nodenext, node16, bundler, and node10 through package.json `typesVersions`).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const built = existsSync(join(root, 'dist', 'index.js'))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

describe.skipIf(!built && process.env['CI'] === undefined)(
  'a project that depends on tokenkeeper',
  { timeout: 180_000 },
  () => {
    let project: string

    beforeAll(() => {
      project = mkdtempSync(join(tmpdir(), 'tokenkeeper-consumer-'))
      mkdirSync(join(project, 'node_modules', '@types'), { recursive: true })
      symlinkSync(root, join(project, 'node_modules', 'tokenkeeper'), 'dir')
      symlinkSync(
        join(root, 'node_modules', '@types', 'node'),
        join(project, 'node_modules', '@types', 'node'),
        'dir',
      )
    })

    afterAll(() => {
      rmSync(project, { recursive: true, force: true })
    })

    it('require() works from CommonJS, for the core and a subpath', () => {
      writeFileSync(
        join(project, 'main.cjs'),
        `const { TokenManager, clientCredentials } = require('tokenkeeper')
const { redisStore } = require('tokenkeeper/redis')
const tokens = new TokenManager()
console.log(typeof clientCredentials, typeof redisStore, typeof tokens.get)
tokens.close()
`,
      )
      const run = spawnSync(process.execPath, ['main.cjs'], { cwd: project, encoding: 'utf8' })
      expect(run.stderr.replace(/^.*ExperimentalWarning.*\n.*\n?/gm, '')).not.toMatch(/Error/)
      expect(run.status).toBe(0)
      expect(run.stdout.trim()).toBe('function function function')
    })

    // tokenkeeper/got is left out: got publishes types for node16, nodenext and bundler only, so
    // under node10 no project can import got's types, through tokenkeeper or not.
    // `type` is the consumer's package.json type: with `commonjs`, main.ts is a CommonJS module
    // (module nodenext then lets it import ES modules, as Node >= 20.19 runs it).
    it.each([
      ['nodenext', 'nodenext', 'module'],
      ['node16', 'node16', 'module'],
      ['esnext', 'bundler', 'module'],
      ['nodenext', 'nodenext', 'commonjs'],
      ['commonjs', 'node10', 'commonjs'],
    ])(
      'type-checks with module %s, moduleResolution %s, from a package of type %s',
      (module, moduleResolution, type) => {
        writeFileSync(
          join(project, 'main.ts'),
          `import { TokenManager, clientCredentials, clientSecretBasic, type AccessToken } from 'tokenkeeper'
import { redisStore, type RedisClientLike } from 'tokenkeeper/redis'
import { startTokenServer, type TokenServer } from 'tokenkeeper/testing'
import { GradeService, type LtiRegistration } from 'tokenkeeper/lti'
import { attachTokens } from 'tokenkeeper/axios'
import { tokenInterceptor } from 'tokenkeeper/undici'
import { tokenCredential } from 'tokenkeeper/azure'
import { instrument } from 'tokenkeeper/otel'
const tokens = new TokenManager()
const source = clientCredentials({ tokenUrl: 'https://idp.example/t', clientId: 'a', auth: clientSecretBasic('s') })
export const token: Promise<AccessToken> = tokens.get(source)
export const parts = [redisStore, startTokenServer, GradeService, attachTokens, tokenInterceptor, tokenCredential, instrument]
export type Parts = [RedisClientLike, TokenServer, LtiRegistration]
`,
        )
        writeFileSync(
          join(project, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              module,
              moduleResolution,
              target: 'es2022',
              strict: true,
              noEmit: true,
              skipLibCheck: false,
              types: ['node'],
            },
            files: ['main.ts'],
          }),
        )
        writeFileSync(join(project, 'package.json'), JSON.stringify({ type }))
        const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], {
          cwd: project,
          encoding: 'utf8',
        })
        expect(run.stdout + run.stderr).toBe('')
        expect(run.status).toBe(0)
      },
    )
  },
)
