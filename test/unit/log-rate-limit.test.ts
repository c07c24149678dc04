import { describe, expect, it } from 'vitest';
import { LogRateLimit } from '../../src/observability/log-rate-limit.js';

describe('LogRateLimit', () => {
  it('writes at most perSecond lines a second, and the next line written says how many were left out', () => {
    let now = 0;
    const limit = new LogRateLimit(3, () => now);
    expect([limit.take(), limit.take(), limit.take()]).toEqual([0, 0, 0]);
    expect([limit.take(), limit.take()]).toEqual([null, null]);
    now = 999;
    expect(limit.take()).toBeNull();
    now = 1000;
    expect(limit.take()).toBe(3);
    expect(limit.take()).toBe(0);
    now = 5000;
    expect(limit.take()).toBe(0);
  });
});
