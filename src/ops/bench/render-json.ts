/**
 * `--json` output: one JSON object on stdout, with a `schema` tag first so a reader can tell the two
 * shapes apart and notice a future incompatible one. Fields are documented in docs/bench.md and only
 * ever added to under the same tag.
 */
import type { BenchComparison } from './bench-comparison.js';
import type { BenchSummary } from './bench-summary.js';

/** The tag of a single-target result. */
export const SUMMARY_SCHEMA = 'sluice.bench/v1';
/** The tag of a `--compare` result. */
export const COMPARISON_SCHEMA = 'sluice.bench.compare/v1';

/** A single target's result as a JSON document, ending with a newline. */
export function summaryJson(summary: BenchSummary): string {
  return `${JSON.stringify({ schema: SUMMARY_SCHEMA, ...summary }, null, 2)}\n`;
}

/** A comparison as a JSON document, ending with a newline. */
export function comparisonJson(comparison: BenchComparison): string {
  return `${JSON.stringify({ schema: COMPARISON_SCHEMA, ...comparison }, null, 2)}\n`;
}
