import { describe, expect, it } from 'vitest';
import type { ResolvedRetry } from '../../src/config/types.js';
import {
  type AttemptFacts,
  type AttemptFailure,
  countsAsFailure,
  decideRetry,
  MAX_STALE_RETRIES,
} from '../../src/proxy/retry-policy.js';

const METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH', 'LOCK'];
const FAILURES: AttemptFailure[] = [
  { kind: 'error' },
  { kind: 'timeout' },
  { kind: 'invalid_header' },
  ...[500, 502, 503, 504, 429, 403, 404, 501, 400].map((status) => ({ kind: 'status' as const, status })),
];
const everything: ResolvedRetry = {
  on: [
    'error',
    'timeout',
    'invalid_header',
    'http_500',
    'http_502',
    'http_503',
    'http_504',
    'http_429',
    'http_403',
    'http_404',
  ],
  tries: 0,
  timeoutMs: 0,
  nonIdempotent: false,
};

const facts = (over: Partial<AttemptFacts>): AttemptFacts => ({
  method: 'GET',
  failure: { kind: 'error' },
  sent: true,
  reusedConnection: false,
  responseStarted: false,
  replayable: true,
  attempts: 1,
  targets: 4,
  elapsedMs: 0,
  staleRetries: 0,
  ...over,
});

const label = (f: AttemptFailure) => (f.kind === 'status' ? `http ${f.status}` : f.kind);

describe('retry decisions: every method × failure × sent × response started', () => {
  for (const method of METHODS) {
    for (const failure of FAILURES) {
      for (const sent of [false, true]) {
        for (const responseStarted of [false, true]) {
          const nonIdempotent = ['POST', 'PATCH', 'LOCK'].includes(method);
          const retryableStatus = failure.kind !== 'status' || ![501, 400].includes(failure.status);
          const expected = responseStarted || (sent && nonIdempotent) || !retryableStatus ? 'stop' : 'retry';
          it(`${method} ${label(failure)} sent=${sent} started=${responseStarted} → ${expected}`, () => {
            expect(decideRetry(everything, facts({ method, failure, sent, responseStarted }))).toBe(expected);
          });
        }
      }
    }
  }
});

describe('retry policy details', () => {
  const defaults: ResolvedRetry = { on: ['error', 'timeout'], tries: 0, timeoutMs: 0, nonIdempotent: false };

  it('retries only the conditions listed (nginx default: error timeout)', () => {
    expect(decideRetry(defaults, facts({ failure: { kind: 'error' } }))).toBe('retry');
    expect(decideRetry(defaults, facts({ failure: { kind: 'timeout' } }))).toBe('retry');
    expect(decideRetry(defaults, facts({ failure: { kind: 'invalid_header' } }))).toBe('stop');
    expect(decideRetry(defaults, facts({ failure: { kind: 'status', status: 502 } }))).toBe('stop');
    expect(decideRetry({ ...defaults, on: [] }, facts({}))).toBe('stop');
  });

  it('retries POST once sent only with non_idempotent; a POST that never left is always retried', () => {
    expect(decideRetry(defaults, facts({ method: 'POST', sent: true }))).toBe('stop');
    expect(decideRetry({ ...defaults, nonIdempotent: true }, facts({ method: 'POST', sent: true }))).toBe(
      'retry',
    );
    expect(decideRetry(defaults, facts({ method: 'POST', sent: false }))).toBe('retry');
  });

  it('never replays a streamed body that was sent', () => {
    expect(decideRetry(defaults, facts({ replayable: false, sent: true }))).toBe('stop');
    expect(decideRetry(defaults, facts({ replayable: false, sent: false }))).toBe('retry');
  });

  it('caps attempts with tries and time with timeout', () => {
    const capped = { ...defaults, tries: 2, timeoutMs: 1000 };
    expect(decideRetry(capped, facts({ attempts: 1 }))).toBe('retry');
    expect(decideRetry(capped, facts({ attempts: 2 }))).toBe('stop');
    expect(decideRetry(capped, facts({ attempts: 1, elapsedMs: 1000 }))).toBe('stop');
  });

  it('stops once every target was tried, as nginx counts one try per target not configured down', () => {
    expect(decideRetry(defaults, facts({ attempts: 1, targets: 2 }))).toBe('retry');
    expect(decideRetry(defaults, facts({ attempts: 2, targets: 2 }))).toBe('stop');
    expect(decideRetry({ ...defaults, tries: 5 }, facts({ attempts: 2, targets: 2 }))).toBe('stop');
    expect(decideRetry({ ...defaults, tries: 2 }, facts({ attempts: 2, targets: 4 }))).toBe('stop');
  });

  it('retries the keep-alive race without using a try, a bounded number of times, never for POST', () => {
    const capped = { ...defaults, on: [], tries: 1 };
    expect(decideRetry(capped, facts({ reusedConnection: true, attempts: 1 }))).toBe('retry_stale');
    expect(decideRetry(capped, facts({ reusedConnection: true, staleRetries: MAX_STALE_RETRIES }))).toBe(
      'stop',
    );
    expect(decideRetry(capped, facts({ reusedConnection: true, method: 'POST' }))).toBe('stop');
    expect(decideRetry(capped, facts({ reusedConnection: true, failure: { kind: 'timeout' } }))).toBe('stop');
  });

  it('counts errors, timeouts and invalid headers as failures; 5xx and 429 only when listed; 403 and 404 never', () => {
    expect(countsAsFailure(defaults, { kind: 'error' }, false)).toBe(true);
    expect(countsAsFailure(defaults, { kind: 'timeout' }, false)).toBe(true);
    expect(countsAsFailure(defaults, { kind: 'invalid_header' }, false)).toBe(true);
    expect(countsAsFailure(defaults, { kind: 'status', status: 502 }, false)).toBe(false);
    expect(countsAsFailure(everything, { kind: 'status', status: 502 }, false)).toBe(true);
    expect(countsAsFailure(everything, { kind: 'status', status: 429 }, false)).toBe(true);
    expect(countsAsFailure(everything, { kind: 'status', status: 404 }, false)).toBe(false);
    expect(countsAsFailure(everything, { kind: 'status', status: 403 }, false)).toBe(false);
    // The keep-alive race is not the target's fault.
    expect(countsAsFailure(defaults, { kind: 'error' }, true)).toBe(false);
  });
});
