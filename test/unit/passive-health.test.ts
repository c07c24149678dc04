import { describe, expect, it } from 'vitest';
import {
  clearFailures,
  type FailCounters,
  isFailed,
  onFailure,
  onPicked,
  onSuccess,
} from '../../src/health/passive-health.js';

const counters = (weight = 6): FailCounters => ({
  weight,
  effectiveWeight: weight,
  fails: 0,
  accessed: 0,
  checked: 0,
});

describe('nginx max_fails / fail_timeout, on a fake clock', () => {
  const policy = { maxFails: 3, failTimeoutMs: 10_000 };

  it('takes a peer out at max_fails failures within fail_timeout, for fail_timeout after the last', () => {
    const p = counters();
    let t = 1_000_000;
    onPicked(p, policy, t);
    expect(onFailure(p, policy, t)).toBe(false);
    t += 2000;
    expect(onFailure(p, policy, t)).toBe(false);
    expect(isFailed(p, policy, t)).toBe(false);
    t += 2000;
    expect(onFailure(p, policy, t)).toBe(true);
    expect(isFailed(p, policy, t)).toBe(true);
    expect(isFailed(p, policy, t + 10_000)).toBe(true);
    expect(isFailed(p, policy, t + 10_001)).toBe(false);
  });

  it('lets one request through after fail_timeout; its failure starts the rest again', () => {
    const p = counters();
    let t = 0;
    for (let i = 0; i < 3; i++) {
      t += 100;
      onFailure(p, policy, t);
    }
    t += 10_001;
    expect(isFailed(p, policy, t)).toBe(false);
    onPicked(p, policy, t); // checked = t: the next request is not let through
    expect(isFailed(p, policy, t + 1)).toBe(true);
    // Taken out again, and said again (nginx logs "temporarily disabled" at each such failure).
    expect(onFailure(p, policy, t + 50)).toBe(true);
    expect(p.fails).toBe(4);
    expect(isFailed(p, policy, t + 10_000)).toBe(true);
  });

  it('resets fails only on a success of a request picked after a quiet fail_timeout', () => {
    const p = counters();
    onFailure(p, policy, 1000);
    onPicked(p, policy, 2000); // within fail_timeout: checked stays 1000
    onSuccess(p);
    expect(p.fails).toBe(1);
    onPicked(p, policy, 12_001); // a full fail_timeout later
    onSuccess(p);
    expect(p.fails).toBe(0);
  });

  it('lowers the effective weight by weight / max_fails per failure, not below 0', () => {
    const p = counters(6);
    onFailure(p, policy, 1);
    expect(p.effectiveWeight).toBe(4);
    onFailure(p, policy, 2);
    onFailure(p, policy, 3);
    onFailure(p, policy, 4);
    expect(p.effectiveWeight).toBe(0);
  });

  it('never takes a peer out with max_fails 0', () => {
    const p = counters();
    const never = { maxFails: 0, failTimeoutMs: 10_000 };
    for (let i = 0; i < 100; i++) onFailure(p, never, i);
    expect(isFailed(p, never, 100)).toBe(false);
    expect(p.effectiveWeight).toBe(6);
  });

  it('forgets failures when cleared (health check passed, operator enabled)', () => {
    const p = counters();
    for (let i = 0; i < 3; i++) onFailure(p, policy, 100 + i);
    clearFailures(p);
    expect(isFailed(p, policy, 200)).toBe(false);
  });
});
