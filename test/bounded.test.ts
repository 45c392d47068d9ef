import { describe, expect, it } from 'vitest'
import { BoundedMap } from '../src/bounded.js'

describe('BoundedMap', () => {
  it('keeps at most its capacity, forgetting the least recently used first', () => {
    const map = new BoundedMap<string, number>(2)
    const held = () => ['a', 'b', 'c', 'd', 'e'].filter((key) => map.peek(key) !== undefined)
    map.set('a', 1).set('b', 2)
    expect(map.get('a')).toBe(1) // a is now newer than b
    map.set('c', 3)
    expect(held()).toEqual(['a', 'c'])
    // peek leaves the order alone: a is still the older one, and goes next.
    expect(map.peek('a')).toBe(1)
    map.set('d', 4)
    expect(held()).toEqual(['c', 'd'])
    // A write of a held key makes it the newest.
    map.set('c', 30)
    map.set('e', 5)
    expect(held()).toEqual(['c', 'e'])
    expect(map.peek('c')).toBe(30)
    expect(map.size).toBe(2)
    expect(map.delete('c')).toBe(true)
    expect(map.delete('c')).toBe(false)
    map.clear()
    expect(map.size).toBe(0)
  })

  it('refuses a capacity that is not a positive integer', () => {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BoundedMap(capacity)).toThrow(TypeError)
    }
  })

  it('a million distinct keys never hold more than the capacity', () => {
    const map = new BoundedMap<number, number>(100)
    for (let i = 0; i < 1_000_000; i++) map.set(i, i)
    expect(map.size).toBe(100)
    expect(map.peek(999_999)).toBe(999_999)
    expect(map.peek(999_899)).toBeUndefined()
  })
})
