/**
 * Load for e2e tests: autocannon, driven programmatically, with every failure recorded (what and
 * when), so a test can tell failures that happened around an event (a worker killed) from ones
 * that happened afterwards.
 *
 * autocannon ships no types; it is loaded with `createRequire` and typed here with the few fields
 * the tests read.
 *
 * autocannon's own client ignores `Connection: close`: it writes the next request on the same
 * socket at once, which RFC 9112 section 9.6 forbids ("a client that receives a close connection
 * option MUST cease sending requests on that connection"). Against a server that closes
 * keep-alive connections (after `max_requests_per_connection` requests, or while draining on a
 * reload) that measures the client's bug: the request is written into a closing socket (a reset),
 * or Node answers it with its own 503. So each client here is made to honour it, as browsers,
 * undici and curl do: after an answer with `Connection: close` the next request goes out on a new
 * connection.
 */
import { createRequire } from 'node:module';
import { expect } from 'vitest';
import { honourConnectionClose } from '../../src/ops/bench/connection-close.js';

/** The parts of autocannon's result the tests read. */
export interface AutocannonResult {
  readonly requests: { readonly total: number; readonly average: number; readonly sent: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly mismatches: number;
  readonly duration: number;
  readonly '2xx': number;
  readonly statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', fn: (client: unknown, status: number) => void): this;
  on(event: 'reqError', fn: (err: Error & { code?: string }) => void): this;
  stop(): void;
}

type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** One failed request: a connection error or timeout, or a non-2xx answer. */
export interface LoadFailure {
  readonly at: number;
  readonly what: string;
}

/** What a finished run measured. */
export interface LoadSummary {
  /** Responses received (any status). */
  readonly total: number;
  readonly ok2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly mismatches: number;
  /** errors (timeouts included) + non-2xx answers. */
  readonly failures: number;
  readonly failureLog: readonly LoadFailure[];
  readonly durationS: number;
  readonly raw: AutocannonResult;
}

/** A run in progress. */
export interface LoadRun {
  readonly startedAt: number;
  /** Responses received so far. */
  responses(): number;
  /** Failures so far, in order. */
  failures(): readonly LoadFailure[];
  readonly done: Promise<LoadSummary>;
  stop(): void;
}

/** Starts autocannon (keep-alive, no pipelining) against `url`. */
export function startLoad(opts: {
  url: string;
  connections: number;
  durationS: number;
  timeoutS?: number;
  expectBody?: string;
}): LoadRun {
  const failureLog: LoadFailure[] = [];
  let responses = 0;
  const startedAt = Date.now();
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    pipelining: 1,
    timeout: opts.timeoutS ?? 10,
    setupClient: honourConnectionClose,
    ...(opts.expectBody === undefined ? {} : { expectBody: opts.expectBody }),
  });
  instance.on('response', (_client, status) => {
    responses++;
    if (status < 200 || status > 299) failureLog.push({ at: Date.now(), what: `status ${status}` });
  });
  instance.on('reqError', (err) => {
    failureLog.push({ at: Date.now(), what: err.code ?? err.message });
  });
  const done = Promise.resolve(instance).then(
    (raw): LoadSummary => ({
      total: raw.requests.total,
      ok2xx: raw['2xx'],
      errors: raw.errors,
      timeouts: raw.timeouts,
      non2xx: raw.non2xx,
      mismatches: raw.mismatches,
      failures: raw.errors + raw.non2xx,
      failureLog,
      durationS: raw.duration,
      raw,
    }),
  );
  return {
    startedAt,
    responses: () => responses,
    failures: () => failureLog,
    done,
    stop: () => instance.stop(),
  };
}

/** Counts failures by kind: `{ ECONNRESET: 3, 'status 503': 1 }`. */
export function failureKinds(log: readonly LoadFailure[]): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const f of log) kinds[f.what] = (kinds[f.what] ?? 0) + 1;
  return kinds;
}

/** When each kind of failure happened, in ms from `since`: `{ ECONNRESET: { count, first, last } }`. */
export function failureTimeline(
  log: readonly LoadFailure[],
  since: number,
): Record<string, { count: number; first: number; last: number }> {
  const kinds: Record<string, { count: number; first: number; last: number }> = {};
  for (const f of log) {
    const k = kinds[f.what] ?? { count: 0, first: f.at - since, last: f.at - since };
    k.count++;
    k.last = f.at - since;
    kinds[f.what] = k;
  }
  return kinds;
}

/**
 * Runs `task(i)` for i in 0..count-1 with at most `concurrency` running at once, for tests that
 * check every answer themselves; resolves when all have settled (a task must not throw).
 */
export async function forEachConcurrent(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) await task(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/** Asserts that every request of a run succeeded: no error, timeout, non-2xx answer or wrong body. */
export function expectNoFailures(r: LoadSummary): void {
  expect(r.errors, JSON.stringify(failureKinds(r.failureLog))).toBe(0);
  expect(r.timeouts).toBe(0);
  expect(r.non2xx).toBe(0);
  expect(r.mismatches).toBe(0);
}
