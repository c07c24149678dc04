import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/core/lru-map.js';

describe('LruMap', () => {
  it('forgets the least recently used first: get and set count as uses, peek does not', () => {
    const m = new LruMap<string, number>(3);
    m.set('a', 1).set('b', 2).set('c', 3);
    expect(m.get('a')).toBe(1); // used: a second chance
    expect(m.peek('b')).toBe(2); // not a use: b is the first to go
    m.set('d', 4);
    expect([...m.keys()]).toEqual(['c', 'a', 'd']);
    m.set('c', 30); // an update is a use, and evicts nothing
    expect(m.size).toBe(3);
    m.set('e', 5); // c is kept (used), a goes (its chance was spent)
    expect([...m.entries()]).toEqual([
      ['d', 4],
      ['c', 30],
      ['e', 5],
    ]);
    expect(m.evicted).toBe(2);
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

  it('keeps an entry used between evictions through any number of new keys', () => {
    const m = new LruMap<string, number>(1000);
    m.set('kept', 0);
    for (let i = 0; i < 100_000; i++) {
      m.set(`new-${i}`, i);
      if (i % 500 === 0) m.get('kept');
    }
    expect(m.has('kept')).toBe(true);
    expect(m.has('new-0')).toBe(false);
    expect(m.has('new-99999')).toBe(true);
  });

  it('bounds the work of an eviction when every entry is marked: 10 moves per entry dropped', () => {
    const m = new LruMap<number, number>(1000);
    for (let i = 0; i < 1000; i++) m.set(i, i);
    for (let i = 0; i < 1000; i++) m.get(i);
    m.set(1000, 1000);
    // 100 marked entries moved to the end, then the next 10 dropped, marked or not.
    expect(m.size).toBe(991);
    expect([100, 101, 109].map((k) => m.has(k))).toEqual([false, false, false]);
    expect([0, 99, 110].map((k) => m.has(k))).toEqual([true, true, true]);
    expect([...m.keys()].slice(-101, -1)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('refuses a bound below 1', () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
  });
});
