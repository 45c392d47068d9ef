// Renders a `tokenkeeper demo --report` page to a PNG in headless Chromium (Debian's `chromium`).
//   node scripts/report-picture.mjs report.html docs/demo-report.png
import process from 'node:process'
import { chromium } from 'playwright-core'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [input, output] = process.argv.slice(2)
if (input === undefined || output === undefined) {
  process.stderr.write('usage: node scripts/report-picture.mjs REPORT.html OUT.png\n')
  process.exit(2)
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
})
try {
  const page = await browser.newPage({ viewport: { width: 920, height: 900 }, deviceScaleFactor: 1 })
  await page.goto(pathToFileURL(resolve(input)).href)
  await page.screenshot({ path: output, fullPage: true })
} finally {
  await browser.close()
}
