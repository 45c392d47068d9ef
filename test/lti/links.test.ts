import { describe, expect, it } from 'vitest'
import { findLink, parseLinkHeader } from '../../src/lti/index.js'
import { appendPath, checkSameHost, withQuery } from '../../src/lti/links.js'
import { formatMicros, ScoreTimestamps } from '../../src/lti/timestamps.js'

describe('parseLinkHeader (RFC 8288 §3)', () => {
  it.each([
    ['a plain next link', '<https://lms.example/m?p=2>; rel="next"', 'https://lms.example/m?p=2'],
    ['an unquoted rel', '<https://lms.example/m?p=2>;rel=next', 'https://lms.example/m?p=2'],
    ['a rel in upper case', '<https://lms.example/m?p=2>; REL="NEXT"', 'https://lms.example/m?p=2'],
    ['a rel list', '<https://lms.example/m?p=2>; rel="prev next"', 'https://lms.example/m?p=2'],
    [
      'next after other links',
      '</first>; rel="first", <https://lms.example/m?Cursor=AbC>; rel="next"',
      'https://lms.example/m?Cursor=AbC',
    ],
    [
      'commas and semicolons inside the URL',
      '<https://lms.example/m?a=1,2;b=3>; rel="next"',
      'https://lms.example/m?a=1,2;b=3',
    ],
    [
      'a comma in a quoted parameter',
      '<https://x.example/a>; title="a, b"; rel="last", <https://x.example/b>; rel="next"',
      'https://x.example/b',
    ],
    ['an escaped quote', '<https://x.example/a>; title="say \\"hi\\""; rel="next"', 'https://x.example/a'],
    ['a malformed link first', 'garbage; rel=next, <https://x.example/b>; rel="next"', 'https://x.example/b'],
    [
      'the first rel only (later ones are ignored)',
      '<https://x.example/a>; rel="prev"; rel="next", <https://x.example/b>; rel=next',
      'https://x.example/b',
    ],
    [
      'two headers joined by fetch',
      '<https://x.example/a?p=2>; rel="next", <https://x.example/a?since=9>; rel="differences"',
      'https://x.example/a?p=2',
    ],
  ])('finds next in %s, keeping its case', (_name, header, next) => {
    expect(findLink(header, 'next')).toBe(next)
  })

  it('finds nothing where there is no next link', () => {
    expect(findLink(null, 'next')).toBeUndefined()
    expect(findLink('', 'next')).toBeUndefined()
    expect(findLink('<https://x.example/a>; rel="nextpage"', 'next')).toBeUndefined()
    expect(findLink('<https://x.example/a', 'next')).toBeUndefined()
  })

  it('reads parameters with lower-cased names', () => {
    expect(parseLinkHeader('<https://x.example/a>; Rel="next"; Type="text/html"')).toEqual([
      { target: 'https://x.example/a', rel: ['next'], params: { rel: 'next', type: 'text/html' } },
    ])
  })
})

describe('service URL rules', () => {
  const hosts = new Set(['lms.example:443', 'lms.example'])
  const base = new URL('https://lms.example/api/m')

  it('resolves relative links against the page and keeps them on the platform host', () => {
    expect(checkSameHost('/api/m?p=2', base, hosts, 'next').href).toBe('https://lms.example/api/m?p=2')
    expect(checkSameHost('?Cursor=XyZ', base, hosts, 'next').href).toBe(
      'https://lms.example/api/m?Cursor=XyZ',
    )
  })

  it.each([
    ['another host', 'https://evil.example/api/m?p=2'],
    ['a subdomain', 'https://a.lms.example/api/m'],
    ['another port', 'https://lms.example:8443/api/m'],
    ['plain http', 'http://lms.example/api/m'],
    ['credentials', 'https://user:pw@lms.example/api/m'],
    ['another scheme', 'ftp://lms.example/api/m'],
  ])('refuses %s', (_name, target) => {
    expect(() => checkSameHost(target, base, hosts, 'next')).toThrow(
      expect.objectContaining({ code: 'UNSAFE_SERVICE_URL' }),
    )
  })

  it('allows http only to loopback hosts', () => {
    const loopback = new URL('http://127.0.0.1:8080/m')
    expect(
      checkSameHost('http://127.0.0.1:8080/m?p=2', loopback, new Set(['127.0.0.1:8080']), 'next').href,
    ).toContain('p=2')
  })

  it('inserts /scores and /results before the query string', () => {
    expect(
      appendPath(
        new URL('https://lms.example/mod/lti/services.php/2/lineitems/10/lineitem?type_id=7'),
        '/scores',
      ).href,
    ).toBe('https://lms.example/mod/lti/services.php/2/lineitems/10/lineitem/scores?type_id=7')
    expect(
      appendPath(
        new URL('https://canvas.example/api/lti/courses/1/line_items/42?type=assignment'),
        '/results',
      ).href,
    ).toBe('https://canvas.example/api/lti/courses/1/line_items/42/results?type=assignment')
    expect(appendPath(new URL('https://lms.example/li/5/'), '/scores').href).toBe(
      'https://lms.example/li/5/scores',
    )
  })

  it('adds query parameters after the existing query, which is kept as it is', () => {
    const url = new URL('https://lms.example/li?type_id=7&X=a%20b')
    expect(withQuery(url, { user_id: 'u 1', limit: 5, tag: undefined }).href).toBe(
      'https://lms.example/li?type_id=7&X=a%20b&user_id=u+1&limit=5',
    )
    expect(withQuery(url, {}).href).toBe(url.href)
  })
})

describe('score timestamps', () => {
  it('have microseconds and a Z designator', () => {
    expect(formatMicros(Date.UTC(2026, 0, 2, 3, 4, 5, 678) * 1000 + 9)).toBe('2026-01-02T03:04:05.678009Z')
  })

  it('increase strictly within one millisecond and when the clock steps back', () => {
    const timestamps = new ScoreTimestamps()
    const at = Date.UTC(2026, 0, 1)
    const seen = [timestamps.next(at), timestamps.next(at), timestamps.next(at), timestamps.next(at - 5_000)]
    expect(seen).toEqual([
      '2026-01-01T00:00:00.000000Z',
      '2026-01-01T00:00:00.000001Z',
      '2026-01-01T00:00:00.000002Z',
      '2026-01-01T00:00:00.000003Z',
    ])
    expect(timestamps.next(at + 1)).toBe('2026-01-01T00:00:00.001000Z')
  })
})
