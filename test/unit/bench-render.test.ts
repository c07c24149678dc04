/** `sluice bench` output: the table, the comparison, the JSON document and the progress line. Pure. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compareSummaries } from '../../src/ops/bench/bench-comparison.js';
import { formatCount, formatMs, formatRate, formatRatio } from '../../src/ops/bench/bench-format.js';
import type { BenchSummary } from '../../src/ops/bench/bench-summary.js';
import { formatProgressLine, ProgressBar, runLabel } from '../../src/ops/bench/progress-bar.js';
import { renderComparison } from '../../src/ops/bench/render-comparison.js';
import {
  COMPARISON_SCHEMA,
  comparisonJson,
  SUMMARY_SCHEMA,
  summaryJson,
} from '../../src/ops/bench/render-json.js';
import { renderSummary } from '../../src/ops/bench/render-summary.js';
import type { PlannedRun } from '../../src/ops/bench/run-plan.js';

const A: BenchSummary = {
  url: 'http://127.0.0.1:8080/',
  method: 'GET',
  connections: 50,
  pipelining: 1,
  keepAlive: true,
  rounds: 1,
  durationS: 10.02,
  requests: {
    total: 123_456,
    sent: 123_506,
    ok: 123_400,
    perSecond: 12_320.96,
    perSecondByRound: [12_320.96],
  },
  latencyMs: { min: 0.05, mean: 0.912, p50: 0.84, p90: 1.213, p99: 2.9, max: 14.02 },
  throughput: { bytes: 15_200_000, mbPerSecond: 1.517 },
  status: { '200': 123_400, '500': 48, '503': 8 },
  errors: {
    total: 62,
    connection: { total: 0, byCode: {} },
    resets: { total: 6, byCode: { ECONNRESET: 6 } },
    timeouts: 0,
    non2xx: { total: 56, byClass: { '5xx': 56 }, byStatus: { '500': 48, '503': 8 } },
  },
};

function withRounds(s: BenchSummary, url: string, perSecondByRound: number[], p99: number): BenchSummary {
  const perSecond = perSecondByRound.reduce((a, b) => a + b, 0) / perSecondByRound.length;
  return {
    ...s,
    url,
    rounds: perSecondByRound.length,
    requests: { ...s.requests, perSecond, perSecondByRound },
    latencyMs: { ...s.latencyMs, p99 },
  };
}

describe('number formats', () => {
  it('groups thousands, fixes decimals, marks ratios', () => {
    expect(formatCount(1_234_567.4)).toBe('1,234,567');
    expect(formatRate(12_345.67)).toBe('12,345.7');
    expect([0.0841, 2.9, 14.02, 1250.4].map(formatMs)).toEqual([
      '0.084 ms',
      '2.90 ms',
      '14.0 ms',
      '1,250 ms',
    ]);
    expect([0.931, null].map(formatRatio)).toEqual(['0.93×', 'n/a']);
  });
});

describe('renderSummary', () => {
  it('prints the table', () => {
    expect(renderSummary(A)).toBe(
      [
        'http://127.0.0.1:8080/ (GET, 50 connections, keep-alive)',
        '',
        'requests/s      12,321.0',
        'latency p50     0.840 ms',
        'latency p90     1.21 ms',
        'latency p99     2.90 ms',
        'latency max     14.0 ms',
        'latency mean    0.912 ms',
        'throughput      1.52 MB/s',
        'requests        123,456 (123,400 2xx)',
        'duration        10.02 s',
        'errors          62',
        '  connection    0',
        '  timeouts      0',
        '  non-2xx       56 (500: 48, 503: 8)',
        '  resets        6 (ECONNRESET: 6)',
        '',
      ].join('\n'),
    );
  });

  it('describes a run without keep-alive and with pipelining', () => {
    expect(renderSummary({ ...A, keepAlive: false, pipelining: 4, connections: 1 }).split('\n')[0]).toBe(
      'http://127.0.0.1:8080/ (GET, 1 connection, a new connection per request, pipelining 4)',
    );
  });
});

describe('renderComparison', () => {
  const a = withRounds(A, 'http://127.0.0.1:8080/', [1000, 1010, 990], 2);
  const b = withRounds(A, 'http://127.0.0.1:8081/', [930, 925, 935], 2.8);

  it('puts A and B side by side with B / A, and ends with the verdict', () => {
    const text = renderComparison(compareSummaries(a, b));
    const lines = text.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'A  http://127.0.0.1:8080/',
      'B  http://127.0.0.1:8081/  (--compare)',
      'GET, 50 connections, keep-alive; 3 rounds per target, A then B in each',
      '',
    ]);
    const header = lines[4]!;
    expect(header).toMatch(/^ +A +B +B \/ A$/);
    const row = (label: string) => lines.find((l) => l.startsWith(`${label}  `)) ?? '';
    // Columns line up under their headings.
    expect(row('requests/s').indexOf('1,000.0')).toBe(header.indexOf('A'));
    expect(row('requests/s').indexOf('930.0')).toBe(header.indexOf('B '));
    expect(row('requests/s').indexOf('0.93×')).toBe(header.indexOf('B / A'));
    expect(row('latency p99')).toMatch(/2\.00 ms +2\.80 ms +1\.40×$/);
    expect(row('latency mean')).toMatch(/0\.912 ms +0\.912 ms$/);
    expect(row('req/s by round')).toMatch(/1,000\.0 {2}1,010\.0 {2}990\.0 +930\.0 {2}925\.0 {2}935\.0$/);
    expect(row('  non-2xx')).toMatch(/56 \(500: 48, 503: 8\) +56 \(500: 48, 503: 8\)$/);
    expect(lines.at(-2)).toBe('B / A: 0.93× requests/s, 1.40× p99');
    expect(text).not.toContain('overlap');
  });

  it('says when the rounds overlap: the difference is noise', () => {
    const close = withRounds(A, 'http://127.0.0.1:8081/', [995, 1005, 1000], 2.1);
    expect(renderComparison(compareSummaries(a, close))).toContain('per-round requests/s ranges overlap');
  });

  it('shows n/a where A measured nothing', () => {
    const none = withRounds(A, 'http://127.0.0.1:8080/', [0], 0);
    const text = renderComparison(compareSummaries({ ...none, throughput: { bytes: 0, mbPerSecond: 0 } }, b));
    expect(text).toContain('B / A: n/a requests/s, n/a p99');
  });
});

describe('JSON output', () => {
  it('tags the summary with its schema, first', () => {
    const doc = JSON.parse(summaryJson(A));
    expect(Object.keys(doc)[0]).toBe('schema');
    expect(doc).toEqual({ schema: SUMMARY_SCHEMA, ...A });
  });

  it('tags the comparison', () => {
    const c = compareSummaries(A, A);
    const doc = JSON.parse(comparisonJson(c));
    expect(doc.schema).toBe(COMPARISON_SCHEMA);
    expect(doc.ratio.requestsPerSecond).toBe(1);
    expect(doc.a).toEqual(A);
    expect(doc.roundsOverlap).toBe(true);
  });
});

describe('progress line', () => {
  const state = {
    label: 'round 2/3 B',
    elapsedMs: 4500,
    totalMs: 10_000,
    responses: 12_345,
    errors: 3,
    perSecond: 2468.4,
  };

  it('draws a bar that keeps its width as the numbers grow', () => {
    const line = formatProgressLine(state, 120);
    expect(line).toBe(
      `round 2/3 B    [=============>                ]   45%  4.5/10.0 s  12,345 req  2,468 req/s  3 err`,
    );
    const bigger = formatProgressLine({ ...state, responses: 1_234_567, errors: 12_345 }, 120);
    expect(bigger.indexOf(']')).toBe(line.indexOf(']'));
  });

  it('fits 80 columns, drops the bar when narrower, and clamps the fraction', () => {
    expect(formatProgressLine(state, 80).length).toBeLessThan(80);
    expect(formatProgressLine(state, 80)).toContain('[====>     ]');
    expect(formatProgressLine(state, 60)).not.toContain('[');
    expect(formatProgressLine(state, 60).length).toBeLessThan(60);
    expect(formatProgressLine({ ...state, elapsedMs: 20_000 }, 120)).toContain(`[${'='.repeat(30)}]  100%`);
  });

  it('labels runs', () => {
    const run: PlannedRun = { target: 'b', url: 'http://b/', warmup: false, round: 2, durationMs: 1000 };
    expect(runLabel(run, 3, true)).toBe('round 2/3 B');
    expect(runLabel({ ...run, warmup: true, round: 0 }, 3, true)).toBe('warm-up B');
    expect(runLabel({ ...run, target: 'a', round: 1 }, 1, false)).toBe('running');
    expect(runLabel({ ...run, target: 'a', warmup: true }, 1, false)).toBe('warm-up');
  });
});

describe('ProgressBar', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('redraws over the whole plan on its stream, then erases its line', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const stream = { isTTY: true, columns: 120, write: (t: string) => out.push(t) > 0 };
    const plan: PlannedRun[] = [
      { target: 'a', url: 'http://a/', warmup: true, round: 0, durationMs: 1000 },
      { target: 'a', url: 'http://a/', warmup: false, round: 1, durationMs: 1000 },
    ];
    const bar = new ProgressBar(stream, plan, (run) => runLabel(run, 1, false));
    bar.startRun(plan[1]!, 1);
    expect(out.at(-1)).toMatch(/^\r\x1b\[Krunning +\[=+> +\] +50% {2}1\.0\/2\.0 s {2}0 req/);
    for (let i = 0; i < 10; i++) bar.response(200);
    bar.response(500);
    bar.error();
    vi.advanceTimersByTime(500);
    expect(out.at(-1)).toMatch(/ 75% {2}1\.5\/2\.0 s {2}11 req {2}22 req\/s {2}2 err$/);
    bar.stop();
    expect(out.at(-1)).toBe('\r\x1b[K');
    const n = out.length;
    vi.advanceTimersByTime(1000);
    expect(out.length).toBe(n);
  });
});
