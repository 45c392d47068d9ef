/**
 * `tokenkeeper demo --report FILE.html`: one self-contained page with the run as charts, checked
 * as text and in a real browser (headless Chromium, Debian's `chromium` package).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliBuilt, runCli, sandbox } from './helpers.js'

const box = sandbox()
afterAll(() => box.cleanup())

function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim()
      if (path !== '') return path
    } catch {
      // not installed under this name
    }
  }
  return undefined
}

const chromium = findChromium()

describe.skipIf(!cliBuilt)('tokenkeeper demo --report', { timeout: 120_000 }, () => {
  let html = ''
  const file = join(box.dir, 'report.html')

  beforeAll(async () => {
    const result = await runCli(
      [
        'demo',
        '--workers',
        '30',
        '--duration',
        '4',
        '--naive-duration',
        '6',
        '--token-lifetime',
        '2',
        '--latency',
        '20ms',
        '--fault',
        'outage',
        '--report',
        file,
      ],
      box.env,
      90_000,
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Report written to ${file}`)
    html = readFileSync(file, 'utf8')
  })

  it('is one self-contained page: inline SVG, no script, nothing fetched', () => {
    expect(html).toMatch(/^<!DOCTYPE html>/)
    expect(html).not.toMatch(/<script|<link|<img|<iframe|src=|href=|url\(/i)
    // The only URL is the SVG namespace, which is a name, not a request.
    expect(html.match(/https?:\/\/[^"\s]+/g)?.every((url) => url === 'http://www.w3.org/2000/svg')).toBe(true)
    expect(html).not.toMatch(/Bearer|tkt_|client_secret/i)
  })

  it('charts token requests of both clients, the outage, failed calls and latency', () => {
    for (const id of ['token-requests-tokenkeeper', 'token-requests-naive', 'latency'])
      expect(html).toContain(`<svg id="${id}"`)
    expect(html).toMatch(/<rect class="bar ok"/)
    expect(html).toMatch(/<rect class="outage"/)
    expect(html).toMatch(/<path class="cdf tokenkeeper"/)
    expect(html).toMatch(/<path class="cdf naive"/)
    // The naive cache fails calls during its outage: a failed-calls series is drawn for it.
    const naive = html.slice(
      html.indexOf('<svg id="token-requests-naive"'),
      html.indexOf('<svg id="latency"'),
    )
    expect(naive).toMatch(/<path class="errors"/)
  })

  it.skipIf(chromium === undefined && process.env['CI'] === undefined)(
    'renders in headless Chromium: the charts have size and the screenshot is not blank',
    async () => {
      expect(chromium, 'chromium must be installed (Debian package chromium)').toBeDefined()
      const { chromium: launcher } = await import('playwright-core')
      const browser = await launcher.launch({ executablePath: chromium!, args: ['--no-sandbox'] })
      try {
        const page = await browser.newPage({ viewport: { width: 920, height: 1000 } })
        const requests: string[] = []
        page.on('request', (request) => requests.push(request.url()))
        await page.goto(pathToFileURL(file).href)
        // Runs in the page (a string: the test is type-checked without the DOM library).
        const boxes: { id: string; width: number; height: number; marks: number }[] = await page.evaluate(
          `[...document.querySelectorAll('svg.chart')].map((svg) => {
            const rect = svg.getBoundingClientRect()
            return { id: svg.id, width: rect.width, height: rect.height, marks: svg.querySelectorAll('rect.bar, path.cdf').length }
          })`,
        )
        expect(boxes.map((b) => b.id)).toEqual([
          'token-requests-tokenkeeper',
          'token-requests-naive',
          'latency',
        ])
        for (const b of boxes) {
          expect(b.width).toBeGreaterThan(400)
          expect(b.height).toBeGreaterThan(100)
          expect(b.marks).toBeGreaterThan(0)
        }
        const shot = await page.screenshot({ fullPage: true })
        // Decode the screenshot in the page itself and count its colours: a blank or failed
        // render has one or two.
        const colours: number = await page.evaluate(`(async () => {
          const image = new Image()
          image.src = 'data:image/png;base64,${shot.toString('base64')}'
          await image.decode()
          const canvas = document.createElement('canvas')
          canvas.width = image.width
          canvas.height = image.height
          const context = canvas.getContext('2d')
          context.drawImage(image, 0, 0)
          const data = context.getImageData(0, 0, image.width, image.height).data
          const seen = new Set()
          for (let i = 0; i < data.length; i += 28) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2])
          return seen.size
        })()`)
        expect(colours).toBeGreaterThan(20)
        expect(requests.filter((url) => !url.startsWith('file:') && !url.startsWith('data:'))).toEqual([])
      } finally {
        await browser.close()
      }
    },
  )
})
