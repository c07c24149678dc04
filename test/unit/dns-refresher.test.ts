import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DnsRefresher,
  type FailureStreak,
  type HostAddresses,
  REPORT_AGAIN_MS,
} from '../../src/proxy/dns-refresher.js';

afterEach(() => {
  vi.useRealTimers();
});

function refresher(
  answers: (HostAddresses | Error)[],
  applied: string[][],
  errors: unknown[],
  recovered: FailureStreak[] = [],
) {
  let calls = 0;
  return {
    calls: () => calls,
    r: new DnsRefresher({
      host: 'svc.internal',
      protocol: 'http:',
      port: 8080,
      minTtlMs: 1000,
      maxTtlMs: 60_000,
      resolve: async () => {
        const answer = answers[Math.min(calls++, answers.length - 1)]!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      apply: (origins) => applied.push([...origins]),
      onError: (err) => errors.push(err),
      onRecovered: (streak) => recovered.push(streak),
    }),
  };
}

describe('DnsRefresher', () => {
  it('turns every A/AAAA record into an origin, sorted and de-duplicated', async () => {
    const applied: string[][] = [];
    const { r } = refresher(
      [{ addresses: ['10.0.0.2', 'fd00::1', '10.0.0.1', '10.0.0.2'], ttlMs: 30_000 }],
      applied,
      [],
    );
    await r.start();
    r.stop();
    expect(applied).toEqual([['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://[fd00::1]:8080']]);
  });

  it('re-resolves on the TTL, bounded by min_ttl and max_ttl', async () => {
    vi.useFakeTimers();
    const applied: string[][] = [];
    const { r, calls } = refresher(
      [
        { addresses: ['10.0.0.1'], ttlMs: 100 }, // below min_ttl: next in 1 s
        { addresses: ['10.0.0.2'], ttlMs: 3_600_000 }, // above max_ttl: next in 60 s
        { addresses: ['10.0.0.3'], ttlMs: 5000 },
      ],
      applied,
      [],
    );
    await r.start();
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls()).toBe(3);
    r.stop();
    expect(applied.map((a) => a[0])).toEqual([
      'http://10.0.0.1:8080',
      'http://10.0.0.2:8080',
      'http://10.0.0.3:8080',
    ]);
  });

  it('keeps the previous addresses when resolution fails, and retries after min_ttl', async () => {
    vi.useFakeTimers();
    const applied: string[][] = [];
    const errors: unknown[] = [];
    const { r, calls } = refresher(
      [
        { addresses: ['10.0.0.1'], ttlMs: 1000 },
        new Error('SERVFAIL'),
        { addresses: [], ttlMs: 1000 },
        { addresses: ['10.0.0.9'], ttlMs: 1000 },
      ],
      applied,
      errors,
    );
    await r.start();
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(1000);
    r.stop();
    expect(calls()).toBe(4);
    expect(errors).toHaveLength(2);
    expect(applied).toEqual([['http://10.0.0.1:8080'], ['http://10.0.0.9:8080']]);
  });

  it('reports a failure streak at its start, on a new error and once a minute, and its end', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    const recovered: FailureStreak[] = [];
    const down = new Error('queryA ESERVFAIL svc.internal');
    const { r, calls } = refresher(
      [
        { addresses: ['10.0.0.1'], ttlMs: 1000 },
        ...Array.from({ length: 70 }, () => down),
        new Error('queryA ETIMEOUT svc.internal'),
        { addresses: ['10.0.0.1'], ttlMs: 1000 },
      ],
      [],
      errors,
      recovered,
    );
    await r.start();
    // 70 failures a second apart: reported at the first and 60 s later, not at every retry.
    await vi.advanceTimersByTimeAsync(70_000);
    expect(calls()).toBe(71);
    expect(errors).toEqual([down, down]);
    expect(REPORT_AGAIN_MS).toBe(60_000);
    // A different error is reported at once; success ends the streak.
    await vi.advanceTimersByTimeAsync(1000);
    expect((errors[2] as Error).message).toContain('ETIMEOUT');
    expect(recovered).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    r.stop();
    expect(errors).toHaveLength(3);
    expect(recovered).toEqual([{ failures: 71, failedForMs: 71_000 }]);
  });
});
