import { readFileSync } from 'node:fs'

/**
 * The numbered rows of one table of docs/ERRORS.md, the one between `<!-- marker:start -->` and
 * `<!-- marker:end -->`: each row's cells, trimmed, without backticks. The tests whose tables
 * the docs copy compare them with this, so the two cannot drift apart.
 */
export function errorsTableRows(marker: string): string[][] {
  const markdown = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')
  const section = markdown.split(`<!-- ${marker}:start -->`)[1]?.split(`<!-- ${marker}:end -->`)[0]
  if (section === undefined) throw new Error(`docs/ERRORS.md has no table marked ${marker}`)
  return section
    .split('\n')
    .filter((line) => /^\| \d+ \|/.test(line))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replace(/`/g, '')),
    )
}
