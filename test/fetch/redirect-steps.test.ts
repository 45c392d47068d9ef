import { describe, expect, it } from 'vitest'
import { redirectStep, sameOrigin } from '../../src/http/redirect.js'

describe('redirect steps (the fetch standard) and the origin rule', () => {
  it.each([
    ['https://api.example/a', 'https://api.example/b', true],
    ['https://api.example/a', 'https://API.example:443/b', true],
    ['https://api.example/a', 'http://api.example/a', false],
    ['http://api.example/a', 'https://api.example/a', false],
    ['https://api.example/a', 'https://api.example:8443/a', false],
    ['https://api.example/a', 'https://evil.api.example/a', false],
    ['https://api.example/a', 'https://api.example.evil/a', false],
    ['http://127.0.0.1:80/a', 'http://127.0.0.1/a', true],
    ['http://localhost:8080/a', 'http://127.0.0.1:8080/a', false],
  ])('sameOrigin(%s, %s) is %s', (a, b, expected) => {
    expect(sameOrigin(new URL(a), new URL(b))).toBe(expected)
  })

  const from = new URL('https://api.example/v1/things?x=1#frag')
  it.each([
    [301, 'GET', { method: 'GET', keepsBody: true }],
    [301, 'POST', { method: 'GET', keepsBody: false }],
    [302, 'PUT', { method: 'PUT', keepsBody: true }],
    [302, 'post', { method: 'GET', keepsBody: false }],
    [303, 'PUT', { method: 'GET', keepsBody: false }],
    [303, 'HEAD', { method: 'HEAD', keepsBody: true }],
    [307, 'POST', { method: 'POST', keepsBody: true }],
    [308, 'DELETE', { method: 'DELETE', keepsBody: true }],
  ])('a %i to a %s request', (status, method, expected) => {
    const step = redirectStep(status, method, '/next#top', from)
    expect(step).toEqual({ url: new URL('https://api.example/next'), ...expected })
  })

  it('no redirect, no Location, or a Location that is not an http(s) URL', () => {
    expect(redirectStep(200, 'GET', '/x', from)).toBeUndefined()
    expect(redirectStep(304, 'GET', '/x', from)).toBeUndefined()
    expect(redirectStep(300, 'GET', '/x', from)).toBeUndefined()
    expect(redirectStep(302, 'GET', null, from)).toBeUndefined()
    for (const location of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'data:,x',
      'http://[bad',
      'ftp://x/',
    ]) {
      expect(redirectStep(302, 'GET', location, from)).toBe('invalid')
    }
    expect(redirectStep(302, 'GET', '//other.example/p', from)).toEqual({
      url: new URL('https://other.example/p'),
      method: 'GET',
      keepsBody: true,
    })
  })
})
