import { describe, expect, it } from 'vitest';
import { pickWeighted, weightedPeer } from '../../src/balancer/weighted-round-robin.js';

describe('smooth weighted round-robin (nginx)', () => {
  it('gives nginx sequence a a b a c a a for weights 5/1/1', () => {
    const peers = [
      { name: 'a', ...weightedPeer(5) },
      { name: 'b', ...weightedPeer(1) },
      { name: 'c', ...weightedPeer(1) },
    ];
    const seq = Array.from({ length: 14 }, () => pickWeighted(peers, () => true)!.name).join(' ');
    expect(seq).toBe('a a b a c a a a a b a c a a');
  });

  it('skips ineligible peers and returns null when none is eligible', () => {
    const peers = [
      { name: 'a', ...weightedPeer(1) },
      { name: 'b', ...weightedPeer(1) },
    ];
    expect(Array.from({ length: 3 }, () => pickWeighted(peers, (p) => p.name === 'b')!.name)).toEqual([
      'b',
      'b',
      'b',
    ]);
    expect(pickWeighted(peers, () => false)).toBeNull();
  });
});
