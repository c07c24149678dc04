/** `sluice bench` result handling: the latency histogram, summarising autocannon's result, comparing. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { AutocannonClient, AutocannonResult } from '../../src/ops/bench/autocannon.js';
import { compareSummaries } from '../../src/ops/bench/bench-comparison.js';
import {
  type BenchSummary,
  type MeasuredRun,
  succeeded,
  summarise,
} from '../../src/ops/bench/bench-summary.js';
import { honourConnectionClose } from '../../src/ops/bench/connection-close.js';
import { dropLostRequests } from '../../src/ops/bench/dropped-requests.js';
import { LatencyHistogram } from '../../src/ops/bench/latency-histogram.js';

/** A result autocannon 9 returned: 2 connections for 0.3 s against a server answering every 10th with 500. */
const RECORDED: AutocannonResult = JSON.parse(
  '{"url":"http://127.0.0.1:18402/","connections":2,"sampleInt":100,"pipelining":1,"duration":0.32,"samples":3,"start":"2026-11-25T18:31:19.014Z","finish":"2026-11-25T18:31:19.331Z","errors":0,"timeouts":0,"mismatches":0,"non2xx":10,"resets":0,"1xx":0,"2xx":90,"3xx":0,"4xx":0,"5xx":10,"statusCodeStats":{"200":{"count":90},"500":{"count":10}},"latency":{"average":5.4,"mean":5.4,"stddev":1.7,"min":4,"max":14,"p0_001":4,"p0_01":4,"p0_1":4,"p1":4,"p2_5":4,"p10":5,"p25":5,"p50":5,"p75":5,"p90":5,"p97_5":12,"p99":14,"p99_9":14,"p99_99":14,"p99_999":14,"totalCount":100},"requests":{"average":33.34,"mean":33.34,"stddev":3.1,"min":29,"max":36,"total":100,"p0_001":29,"p0_01":29,"p0_1":29,"p1":29,"p2_5":29,"p10":29,"p25":29,"p50":35,"p75":36,"p90":36,"p97_5":36,"p99":36,"p99_9":36,"p99_99":36,"p99_999":36,"sent":102},"throughput":{"average":4530.34,"mean":4530.34,"stddev":418,"min":3943,"max":4881,"total":13590,"p0_001":3943,"p0_01":3943,"p0_1":3943,"p1":3943,"p2_5":3943,"p10":3943,"p25":3943,"p50":4767,"p75":4883,"p90":4883,"p97_5":4883,"p99":4883,"p99_9":4883,"p99_99":4883,"p99_999":4883}}',
);

function histogram(values: readonly number[]): LatencyHistogram {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return h;
}

/** 100 response times: 5.001 .. 5.1 ms, and one slow 14.2 ms in place of the last. */
const LATENCIES = [...Array.from({ length: 99 }, (_, i) => 5 + (i + 1) / 1000), 14.2];

const INPUT = {
  url: 'http://127.0.0.1:18402/',
  method: 'GET',
  connections: 2,
  pipelining: 1,
  keepAlive: true,
};

describe('LatencyHistogram', () => {
  it('is exact below 1024 µs', () => {
    const h = histogram([0.1, 0.2, 0.3, 0.4, 1.0]);
    expect(h.count).toBe(5);
    expect(h.percentile(50)).toBe(0.3);
    expect(h.percentile(80)).toBe(0.4);
    expect(h.percentile(100)).toBe(1);
    expect(h.min).toBe(0.1);
    expect(h.max).toBe(1);
    expect(h.mean).toBeCloseTo(0.4, 9);
  });

  it('stays within 0.2% above, across the range', () => {
    for (const ms of [1.5, 7.77, 123.456, 9999, 600_000]) {
      const h = histogram([0, ms, ms * 2]);
      const p = h.percentile(50);
      expect(p).toBeGreaterThanOrEqual(ms);
      expect(p).toBeLessThanOrEqual(ms * 1.002);
    }
  });

  it('never reports a percentile above the maximum, nor below the minimum', () => {
    const h = histogram([2.0001, 2.0002, 2.0003]);
    expect(h.percentile(99)).toBeLessThanOrEqual(h.max);
    expect(h.percentile(1)).toBeGreaterThanOrEqual(h.min);
  });

  it('merges by adding counts', () => {
    const a = histogram([1, 2, 3]);
    a.add(histogram([4, 5, 100]));
    expect(a.count).toBe(6);
    expect(a.max).toBe(100);
    expect(a.min).toBe(1);
    // 3 ms falls in a bucket 4 µs wide (2,048 .. 4,095 µs), reported by its upper bound.
    expect(a.percentile(50)).toBe(3.003);
  });

  it('reads 0 when empty', () => {
    const h = new LatencyHistogram();
    expect([h.count, h.min, h.max, h.mean, h.percentile(99)]).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('summarise', () => {
  it('turns a recorded autocannon result into the summary', () => {
    const run: MeasuredRun = { result: RECORDED, latency: histogram(LATENCIES), socketErrors: {} };
    const s = summarise({ ...INPUT, runs: [run] });
    expect(s).toEqual({
      ...INPUT,
      rounds: 1,
      durationS: 0.32,
      requests: { total: 100, sent: 102, ok: 90, perSecond: 312.5, perSecondByRound: [312.5] },
      // Above 4,096 µs buckets are 8 µs wide: p50 5.050 reads 5.055, at most 0.2% high; max is exact.
      latencyMs: { min: 5.001, mean: 5.142, p50: 5.055, p90: 5.095, p99: 5.103, max: 14.2 },
      throughput: { bytes: 13590, mbPerSecond: 0.042 },
      status: { '200': 90, '500': 10 },
      errors: {
        total: 10,
        connection: { total: 0, byCode: {} },
        resets: { total: 0, byCode: {} },
        timeouts: 0,
        non2xx: { total: 10, byClass: { '5xx': 10 }, byStatus: { '500': 10 } },
      },
    } satisfies BenchSummary);
    expect(succeeded(s)).toBe(true);
  });

  it('sums rounds, merges latency, and sorts socket errors into connection errors and resets', () => {
    const second: AutocannonResult = {
      ...RECORDED,
      duration: 0.5,
      errors: 5,
      timeouts: 1,
      '2xx': 40,
      '4xx': 10,
      '5xx': 0,
      statusCodeStats: { '200': { count: 40 }, '404': { count: 10 } },
      requests: { total: 50, sent: 56 },
      throughput: { total: 1000 },
    };
    const s = summarise({
      ...INPUT,
      runs: [
        { result: RECORDED, latency: histogram([1, 2]), socketErrors: {} },
        {
          result: second,
          latency: histogram([3, 40]),
          socketErrors: { ECONNRESET: 2, EPIPE: 1, EOF: 1, EHOSTUNREACH: 1 },
        },
      ],
    });
    expect(s.rounds).toBe(2);
    expect(s.durationS).toBe(0.82);
    expect(s.requests).toEqual({
      total: 150,
      sent: 158,
      ok: 130,
      perSecond: 182.9,
      perSecondByRound: [312.5, 100],
    });
    expect(s.latencyMs).toMatchObject({ min: 1, max: 40, p50: 2.001, mean: 11.5 });
    expect(s.status).toEqual({ '200': 130, '404': 10, '500': 10 });
    expect(s.errors).toEqual({
      total: 5 + 1 + 20,
      connection: { total: 1, byCode: { EHOSTUNREACH: 1 } },
      resets: { total: 4, byCode: { ECONNRESET: 2, EOF: 1, EPIPE: 1 } },
      timeouts: 1,
      non2xx: { total: 20, byClass: { '4xx': 10, '5xx': 10 }, byStatus: { '404': 10, '500': 10 } },
    });
  });

  it('an unreachable target: no runs, one connection error, not a success', () => {
    const s = summarise({ ...INPUT, runs: [], unreachable: 'ECONNREFUSED' });
    expect(s.requests).toEqual({ total: 0, sent: 0, ok: 0, perSecond: 0, perSecondByRound: [] });
    expect(s.errors.connection).toEqual({ total: 1, byCode: { ECONNREFUSED: 1 } });
    expect(s.errors.total).toBe(1);
    expect(succeeded(s)).toBe(false);
  });

  it('only non-2xx answers is not a success', () => {
    const allErrors: AutocannonResult = { ...RECORDED, '2xx': 0, statusCodeStats: { '503': { count: 100 } } };
    const s = summarise({
      ...INPUT,
      runs: [{ result: allErrors, latency: histogram([1]), socketErrors: {} }],
    });
    expect(s.errors.non2xx.byStatus).toEqual({ '503': 100 });
    expect(succeeded(s)).toBe(false);
  });
});

/** A summary with the given requests/s per round and p99. */
function fake(perSecondByRound: number[], p99: number): BenchSummary {
  const base = summarise({ ...INPUT, runs: [] });
  const perSecond = perSecondByRound.reduce((a, b) => a + b, 0) / perSecondByRound.length;
  return {
    ...base,
    rounds: perSecondByRound.length,
    requests: { ...base.requests, perSecond, perSecondByRound },
    latencyMs: { ...base.latencyMs, p50: p99 / 2, p99, max: p99 * 2 },
  };
}

describe('compareSummaries', () => {
  it('divides B by A, and tells whether the rounds overlap', () => {
    const c = compareSummaries(fake([1000, 1010, 990], 2), fake([930, 925, 935], 2.8));
    expect(c.ratio).toEqual({
      requestsPerSecond: 0.93,
      latencyP50: 1.4,
      latencyP90: null,
      latencyP99: 1.4,
      latencyMax: 1.4,
      mbPerSecond: null,
    });
    expect(c.roundsOverlap).toBe(false);
    expect(compareSummaries(fake([1000, 900], 2), fake([950, 960], 2)).roundsOverlap).toBe(true);
  });

  it('a ratio is null when A measured 0', () => {
    const c = compareSummaries(summarise({ ...INPUT, runs: [], unreachable: 'ECONNREFUSED' }), fake([10], 1));
    expect(c.ratio.requestsPerSecond).toBeNull();
    expect(c.roundsOverlap).toBe(false);
  });
});

/** Enough of autocannon's client for the shims: events, a request queue, connect and request hooks. */
class FakeClient extends EventEmitter {
  queue = 0;
  connects = 0;
  requests = 0;
  resets = 0;
  readonly pipelinedRequests = { size: () => this.queue, clear: () => this.#clear() };
  #clear(): void {
    this.queue = 0;
  }
  _connect(): void {
    this.connects++;
  }
  _doRequest(): void {
    this.requests++;
    this.queue++;
  }
  _resetConnection(): void {
    this.resets++;
    this.queue = 0;
    this._connect();
  }
}

describe('autocannon client shims', () => {
  it('after an answer with Connection: close, the next request goes on a new connection', () => {
    const c = new FakeClient();
    honourConnectionClose(c as unknown as AutocannonClient);
    c._doRequest();
    c.emit('headers', { shouldKeepAlive: true });
    c._doRequest();
    expect([c.requests, c.resets]).toEqual([2, 0]);
    c.emit('headers', { shouldKeepAlive: false });
    c._doRequest();
    expect([c.requests, c.resets]).toEqual([2, 1]);
    c._doRequest();
    expect(c.requests).toBe(3);
  });

  it('a reconnect with requests in flight drops them, and counts a clean close once', () => {
    const c = new FakeClient();
    let closed = 0;
    dropLostRequests(c as unknown as AutocannonClient, () => closed++);
    c._connect(); // the first connection: nothing queued
    expect(closed).toBe(0);
    c._doRequest();
    c._connect(); // the server closed it under the request
    expect([closed, c.queue, c.connects]).toEqual([1, 0, 2]);
    c._doRequest();
    c.emit('connError', Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    c._connect(); // after a socket error: dropped, but autocannon counted the error already
    expect([closed, c.queue]).toEqual([1, 0]);
  });
});
