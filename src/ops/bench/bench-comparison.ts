/**
 * `--compare`: two summaries and their ratios, always B / A (the `--compare` URL over the URL
 * argument), so 0.93× requests/s reads "B serves 7% fewer requests a second" and 1.40× p99 reads "B's
 * p99 is 40% higher". Pure.
 */
import type { BenchSummary } from './bench-summary.js';

/** B / A for each metric; null when A's value is 0 (nothing to divide by), or either has none (no latency). */
export interface BenchRatios {
  readonly requestsPerSecond: number | null;
  readonly latencyP50: number | null;
  readonly latencyP90: number | null;
  readonly latencyP99: number | null;
  readonly latencyMax: number | null;
  readonly mbPerSecond: number | null;
}

/** Both targets' results and how they relate; `--json --compare` prints it (with `schema`). */
export interface BenchComparison {
  /** The URL argument. */
  readonly a: BenchSummary;
  /** The `--compare` URL. */
  readonly b: BenchSummary;
  /** B / A. */
  readonly ratio: BenchRatios;
  /**
   * Whether the ranges of per-round requests/s of A and B overlap: when they do, the difference in
   * requests/s is no bigger than the round-to-round noise and should not be read as a result.
   */
  readonly roundsOverlap: boolean;
}

/** Compares B (`--compare`) with A. */
export function compareSummaries(a: BenchSummary, b: BenchSummary): BenchComparison {
  return {
    a,
    b,
    ratio: {
      requestsPerSecond: ratio(b.requests.perSecond, a.requests.perSecond),
      latencyP50: ratio(b.latencyMs.p50, a.latencyMs.p50),
      latencyP90: ratio(b.latencyMs.p90, a.latencyMs.p90),
      latencyP99: ratio(b.latencyMs.p99, a.latencyMs.p99),
      latencyMax: ratio(b.latencyMs.max, a.latencyMs.max),
      mbPerSecond: ratio(b.throughput.mbPerSecond, a.throughput.mbPerSecond),
    },
    roundsOverlap: rangesOverlap(a.requests.perSecondByRound, b.requests.perSecondByRound),
  };
}

/** `b / a` to 3 decimals, or null when `a` is 0 or either is null. */
function ratio(b: number | null, a: number | null): number | null {
  return a === null || b === null || a === 0 ? null : Math.round((b / a) * 1000) / 1000;
}

/** True when [min, max] of `a` and of `b` intersect; false when either is empty. */
function rangesOverlap(a: readonly number[], b: readonly number[]): boolean {
  if (a.length === 0 || b.length === 0) return false;
  return Math.max(Math.min(...a), Math.min(...b)) <= Math.min(Math.max(...a), Math.max(...b));
}
