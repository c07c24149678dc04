import { describe, expect, it } from 'vitest';
import { checkingInterval } from '../../src/server/http-listener.js';

describe('how often header_timeout and request_timeout are enforced', () => {
  it('is a quarter of the shorter of the two, between 100 ms and 1 s', () => {
    // Reckoned from header_timeout alone, this request_timeout fired up to 1 s late.
    expect(checkingInterval({ headerTimeoutMs: 10_000, requestTimeoutMs: 2_000 })).toBe(500);
    expect(checkingInterval({ headerTimeoutMs: 2_000, requestTimeoutMs: 60_000 })).toBe(500);
    expect(checkingInterval({ headerTimeoutMs: 10_000, requestTimeoutMs: 60_000 })).toBe(1000);
    expect(checkingInterval({ headerTimeoutMs: 200, requestTimeoutMs: 60_000 })).toBe(100);
  });

  it('leaves a disabled request_timeout out', () => {
    expect(checkingInterval({ headerTimeoutMs: 2_000, requestTimeoutMs: 0 })).toBe(500);
  });
});
