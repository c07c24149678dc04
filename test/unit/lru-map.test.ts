import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/core/lru-map.js';

describe('LruMap', () => {
  it('forgets the least recently used first: get and set refresh an entry, peek does not', () => {
    const m = new LruMap<string, number>(3);
    m.set('a', 1).set('b', 2).set('c', 3);
    expect(m.get('a')).toBe(1); // a is now the most recent
    expect(m.peek('b')).toBe(2); // b stays the least recent
    m.set('d', 4);
    expect([...m.keys()]).toEqual(['c', 'a', 'd']);
    m.set('c', 30); // an update refreshes and evicts nothing
    expect([...m.entries()]).toEqual([
      ['a', 1],
      ['d', 4],
      ['c', 30],
    ]);
    expect(m.evicted).toBe(1);
  });

  it('evicts 1 % of the bound at once, and never holds more than the bound', () => {
    const m = new LruMap<number, number>(1000);
    for (let i = 0; i < 1000; i++) m.set(i, i);
    m.set(1000, 1000);
    expect(m.size).toBe(991);
    expect(m.has(9)).toBe(false);
    expect(m.has(10)).toBe(true);
    for (let i = 1001; i < 5000; i++) {
      m.set(i, i);
      expect(m.size).toBeLessThanOrEqual(1000);
    }
  });

  it('refuses a bound below 1', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
  });
});
