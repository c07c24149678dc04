import { describe, expect, it } from 'vitest';
import { flushAtTurnEnd } from '../../src/proxy/turn-batch.js';

describe('turn batching', () => {
  it('runs every flush at the end of the turn, in order, even after one throws', async () => {
    const ran: number[] = [];
    const thrown: unknown[] = [];
    const onUncaught = (err: unknown) => thrown.push(err);
    process.prependListener('uncaughtException', onUncaught);
    try {
      flushAtTurnEnd({ flushTurn: () => ran.push(1) });
      flushAtTurnEnd({
        flushTurn: () => {
          throw new Error('broken flush');
        },
      });
      flushAtTurnEnd({ flushTurn: () => ran.push(3) });
      expect(ran).toEqual([]);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(ran).toEqual([1, 3]);
      // The next turn batches again.
      flushAtTurnEnd({ flushTurn: () => ran.push(4) });
      await new Promise((r) => setImmediate(r));
      expect(ran).toEqual([1, 3, 4]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(thrown.map((e) => (e as Error).message)).toEqual(['broken flush']);
  });
});
