import { describe, expect, it } from 'vitest';
import { DescriptorWatch } from '../../src/runtime/descriptor-watch.js';

/** An error as `openSync` throws it. */
const failure = (code: string) => Object.assign(new Error(`${code}: open '/dev/null'`), { code });

/** A watch whose probe throws the next of `outcomes` (null: the open worked), and what it reported. */
function watch(outcomes: (string | null)[]) {
  const events: string[] = [];
  const w = new DescriptorWatch(
    {
      onShort: (err) => events.push(`short ${err.code}`),
      onRecovered: () => events.push('recovered'),
    },
    1000,
    () => {
      const code = outcomes.shift();
      if (code) throw failure(code);
    },
  );
  return { check: () => w.check(), events };
}

describe('the primary descriptor watch', () => {
  it('reports a shortage once as it begins and once as it ends', () => {
    const w = watch([null, 'EMFILE', 'EMFILE', 'EMFILE', null, null, 'ENFILE', null]);
    for (let i = 0; i < 8; i++) w.check();
    expect(w.events).toEqual(['short EMFILE', 'recovered', 'short ENFILE', 'recovered']);
  });

  it('takes a failure that is not for want of a descriptor for none', () => {
    const w = watch(['ENOENT', 'EACCES', null]);
    for (let i = 0; i < 3; i++) w.check();
    expect(w.events).toEqual([]);
  });
});
