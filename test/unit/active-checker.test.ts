import { describe, expect, it } from 'vitest';
import type { ResolvedHealthCheck } from '../../src/config/types.js';
import { HealthChecker, type HealthTarget, NOT_PROBED } from '../../src/health/active-checker.js';

const check = (intervalMs: number): ResolvedHealthCheck => ({
  path: '/healthz',
  intervalMs,
  timeoutMs: 1000,
  rise: 1,
  fall: 1,
  expectStatus: [[200, 399]],
  host: null,
});

/**
 * A checker on a fake clock, driven tick by tick (the real one ticks every 100 ms). Each probe
 * takes `probeMs` of fake time: it passes when the clock has moved on that far.
 */
function fakeChecker(intervalMs: number, probeMs: number) {
  let now = 0;
  const starts: number[] = [];
  const running: { endsAt: number; pass: (failure: string | null) => void }[] = [];
  const target: HealthTarget = {
    upstream: 'app',
    origin: 'http://10.0.0.1:8080',
    hostPort: '10.0.0.1:8080',
    check: check(intervalMs),
    health: 'up',
  };
  const checker = new HealthChecker(
    () => [target],
    () =>
      new Promise<string | null>((pass) => {
        starts.push(now);
        running.push({ endsAt: now + probeMs, pass });
      }),
    () => undefined,
    () => now,
  );
  /** Moves the clock to `t` by 1 ms steps, ending due probes, with a tick every 100 ms. */
  const runTo = async (t: number) => {
    for (; now <= t; now++) {
      for (const p of running.filter((r) => r.endsAt <= now)) {
        running.splice(running.indexOf(p), 1);
        p.pass(null);
      }
      await Promise.resolve();
      if (now % 100 === 0) checker.tick();
    }
  };
  return { starts, runTo };
}

describe('active health check schedule', () => {
  it('starts a probe every interval from the previous start, whatever the probe takes', async () => {
    const c = fakeChecker(200, 5);
    await c.runTo(2000);
    expect(c.starts).toEqual([0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000]);
  });

  it('keeps the interval when it is not a multiple of the tick, on average', async () => {
    const c = fakeChecker(250, 5);
    await c.runTo(2000);
    expect(c.starts).toEqual([0, 300, 500, 800, 1000, 1300, 1500, 1800, 2000]);
  });

  it('does not overlap a probe that runs longer than the interval', async () => {
    const c = fakeChecker(200, 450);
    await c.runTo(2000);
    // Each probe ends at start + 450 and the next starts at the tick after: every 500 ms.
    expect(c.starts).toEqual([0, 500, 1000, 1500, 2000]);
  });
});

describe('a probe this host could not make', () => {
  // With no descriptor left, every probe failed with EMFILE and every target went down at once.
  it('counts neither as a pass nor as a failure of the target', async () => {
    const reports: string[] = [];
    let result: string | null | typeof NOT_PROBED = NOT_PROBED;
    let now = 0;
    const target: HealthTarget = {
      upstream: 'app',
      origin: 'http://10.0.0.1:8080',
      hostPort: '10.0.0.1:8080',
      check: { ...check(100), fall: 2 },
      health: 'up',
    };
    const checker = new HealthChecker(
      () => [target],
      () => Promise.resolve(result),
      (_u, _o, up, reason) => reports.push(`${up ? 'up' : 'down'} ${reason}`),
      () => now,
    );
    checker.start();
    const ticks = async (n: number) => {
      for (let i = 0; i < n; i++) {
        now += 100;
        checker.tick();
        await new Promise((r) => setImmediate(r));
      }
    };
    await ticks(10);
    expect(reports).toEqual([]);
    expect(checker.states()[0]).toMatchObject({ passes: 0, fails: 0 });
    result = 'status 500';
    await ticks(1);
    result = NOT_PROBED;
    await ticks(5);
    // One failure, then nothing counted: still short of fall (2).
    expect(reports).toEqual([]);
    result = 'status 500';
    await ticks(1);
    expect(reports).toEqual(['down status 500']);
    checker.stop();
  });
});
