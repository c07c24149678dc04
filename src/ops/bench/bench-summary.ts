/**
 * What a target measured, summed over its rounds: requests/s, latency percentiles, throughput and
 * errors by kind. Pure: autocannon's counters and our latency histogram in, a plain object out; the
 * object is what `--json` prints (schema in docs/bench.md), so its fields only ever get added to.
 */
import type { AutocannonResult } from './autocannon.js';
import { CLOSED_UNDER_REQUEST } from './dropped-requests.js';
import { LatencyHistogram } from './latency-histogram.js';

/** One measured run, as the runner hands it over. */
export interface MeasuredRun {
  readonly result: AutocannonResult;
  /** Response times of every answer (any status) of this run. */
  readonly latency: LatencyHistogram;
  /** Socket errors by code (`ECONNRESET`), one per failed connection as autocannon counts them. */
  readonly socketErrors: Readonly<Record<string, number>>;
}

/** What is being summarised, and how it was loaded. */
export interface SummaryInput {
  readonly url: string;
  readonly method: string;
  readonly connections: number;
  readonly pipelining: number;
  readonly keepAlive: boolean;
  readonly runs: readonly MeasuredRun[];
  /** Set when the target could not be connected to before the load: its error code; no runs then. */
  readonly unreachable?: string | null;
}

/** Counts by key: `{ "500": 3 }`, `{ ECONNREFUSED: 1 }`; keys sorted. */
export type Counts = Readonly<Record<string, number>>;

/** One target's result; `--json` prints it (with `schema`). */
export interface BenchSummary {
  readonly url: string;
  readonly method: string;
  readonly connections: number;
  readonly pipelining: number;
  readonly keepAlive: boolean;
  /** Measured runs summed here (1 without `--compare`). */
  readonly rounds: number;
  /** Measured seconds, summed over the rounds. */
  readonly durationS: number;
  readonly requests: {
    /** Answers received, any status. */
    readonly total: number;
    /** Requests written (answered or not). */
    readonly sent: number;
    /** 2xx answers. */
    readonly ok: number;
    /** Answers per second (`total / durationS`). */
    readonly perSecond: number;
    /** Answers per second of each round, in order: their spread is the noise of the measure. */
    readonly perSecondByRound: readonly number[];
  };
  /**
   * Response times of all answers, any status, in ms (errors and timeouts have none); every one
   * null when no request got an answer (a refused target, only timeouts): there was no latency.
   */
  readonly latencyMs: {
    readonly min: number | null;
    readonly mean: number | null;
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
    readonly max: number | null;
  };
  readonly throughput: {
    /** Response bytes received, head and body. */
    readonly bytes: number;
    /** Megabytes (10^6 bytes) per second. */
    readonly mbPerSecond: number;
  };
  /** Answers by status code, 2xx included. */
  readonly status: Counts;
  readonly errors: {
    /** connection + resets + timeouts + non2xx. */
    readonly total: number;
    /** Connections that failed to open or broke for another reason than a reset (refused, unreachable, TLS). */
    readonly connection: { readonly total: number; readonly byCode: Counts };
    /** Connections reset or closed by the server under a request (ECONNRESET, EPIPE, EOF). */
    readonly resets: { readonly total: number; readonly byCode: Counts };
    /** Requests not answered within `--timeout` (the connection is then replaced). */
    readonly timeouts: number;
    /** Answers whose status is not 2xx (1xx and 3xx included, as in autocannon and wrk). */
    readonly non2xx: { readonly total: number; readonly byClass: Counts; readonly byStatus: Counts };
  };
}

/** Socket error codes counted as resets rather than connection errors. */
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', CLOSED_UNDER_REQUEST]);

/** Sums the runs of one target. */
export function summarise(input: SummaryInput): BenchSummary {
  let durationS = 0;
  let total = 0;
  let sent = 0;
  let ok = 0;
  let bytes = 0;
  let timeouts = 0;
  const status: Record<string, number> = {};
  const connection: Record<string, number> = {};
  const resets: Record<string, number> = {};
  const perSecondByRound: number[] = [];
  for (const run of input.runs) {
    const r = run.result;
    durationS += r.duration;
    total += r.requests.total;
    sent += r.requests.sent;
    ok += r['2xx'];
    bytes += r.throughput.total;
    timeouts += r.timeouts;
    perSecondByRound.push(round(rate(r.requests.total, r.duration), 1));
    for (const [code, stat] of Object.entries(r.statusCodeStats)) add(status, code, stat.count);
    for (const [code, n] of Object.entries(run.socketErrors))
      add(RESET_CODES.has(code) ? resets : connection, code, n);
  }
  if (input.unreachable) add(connection, input.unreachable, 1);

  const merged = new LatencyHistogram();
  for (const run of input.runs) merged.add(run.latency);

  const byClass: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  for (const [code, n] of Object.entries(status)) {
    if (code.startsWith('2')) continue;
    add(byClass, `${code[0]}xx`, n);
    add(byStatus, code, n);
  }
  const non2xx = sum(byStatus);
  const connectionTotal = sum(connection);
  const resetTotal = sum(resets);

  return {
    url: input.url,
    method: input.method,
    connections: input.connections,
    pipelining: input.pipelining,
    keepAlive: input.keepAlive,
    rounds: input.runs.length,
    durationS: round(durationS, 2),
    requests: { total, sent, ok, perSecond: round(rate(total, durationS), 1), perSecondByRound },
    latencyMs: latencyOf(merged),
    throughput: { bytes, mbPerSecond: round(rate(bytes, durationS) / 1e6, 3) },
    status: sorted(status),
    errors: {
      total: connectionTotal + resetTotal + timeouts + non2xx,
      connection: { total: connectionTotal, byCode: sorted(connection) },
      resets: { total: resetTotal, byCode: sorted(resets) },
      timeouts,
      non2xx: { total: non2xx, byClass: sorted(byClass), byStatus: sorted(byStatus) },
    },
  };
}

/** True when the target answered at least one request with a 2xx: the bench measured something. */
export function succeeded(summary: BenchSummary): boolean {
  return summary.requests.ok > 0;
}

/**
 * The percentiles of the answers' times; null without any answer. The histogram says 0 when empty,
 * which was printed as a latency of 0.000 ms for a target that never answered.
 */
function latencyOf(h: LatencyHistogram): BenchSummary['latencyMs'] {
  const ms = (value: number) => (h.count === 0 ? null : round(value, 3));
  return {
    min: ms(h.min),
    mean: ms(h.mean),
    p50: ms(h.percentile(50)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    max: ms(h.max),
  };
}

function rate(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function add(counts: Record<string, number>, key: string, n: number): void {
  counts[key] = (counts[key] ?? 0) + n;
}

function sum(counts: Counts): number {
  let n = 0;
  for (const v of Object.values(counts)) n += v;
  return n;
}

function sorted(counts: Record<string, number>): Counts {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
