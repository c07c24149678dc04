/** V8 CPU profiles as pprof: what counts as CPU time. */
import { performance } from 'node:perf_hooks';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { cpuToPprof, Profiler } from '../../src/observability/profiler.js';

const frame = (functionName: string) => ({
  functionName,
  url: 'file:///app.js',
  lineNumber: 1,
  columnNumber: 1,
});

describe('cpuToPprof', () => {
  // (idle) is the thread waiting in the event loop: counted, an idle worker looked 97 % busy.
  it('leaves out the samples of (idle); (program) and (garbage collector) stay', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 5] },
        { id: 2, callFrame: frame('(idle)') },
        { id: 3, callFrame: frame('handle') },
        { id: 4, callFrame: frame('(program)') },
        { id: 5, callFrame: frame('(garbage collector)') },
      ],
      startTime: 0,
      endTime: 6000,
      samples: [2, 2, 2, 3, 4, 5],
      timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000],
    };
    const decoded = Profile.decode(cpuToPprof(profile, Date.now()));
    const names = decoded.sample.map((s) => {
      const loc = decoded.location.find((l) => l.id === s.locationId[0]);
      const fn = decoded.function.find((f) => f.id === loc?.line[0]?.functionId);
      return decoded.stringTable.strings[Number(fn?.name)];
    });
    expect(names.sort()).toEqual(['(garbage collector)', '(program)', 'handle']);
    const total = decoded.sample.reduce((n, s) => n + Number(s.value[0]), 0);
    expect(total).toBe(3);
  });
});

describe('Profiler', () => {
  // A worker retiring after a rolling reload closes its profiler: the caller gets what was sampled.
  it.each([0, 300])('close() %i ms into a CPU profile ends it, with the samples so far', async (after) => {
    const profiler = new Profiler();
    const started = performance.now();
    const profile = profiler.cpu(30);
    await new Promise((r) => setTimeout(r, after));
    await profiler.close();
    const decoded = Profile.decode(gunzipSync(await profile));
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(Number(decoded.durationNanos)).toBeLessThan(10e9);
  });
});
