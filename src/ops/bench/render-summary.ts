/**
 * One target's summary as a text table, for a person at a terminal (`--json` is for programs).
 * Pure. The rows are shared with the `--compare` table, so both read the same way:
 *
 *   http://127.0.0.1:8080/ (GET, 50 connections, keep-alive)
 *
 *   requests/s      12,345.6
 *   latency p50     0.840 ms
 *   ...
 *   errors          3
 *     connection    0
 */
import type { BenchRatios } from './bench-comparison.js';
import {
  formatCount,
  formatCountWith,
  formatMbPerSecond,
  formatMs,
  formatRate,
  formatSeconds,
} from './bench-format.js';
import type { BenchSummary } from './bench-summary.js';

/** A metric row: its label, the formatted value, and the ratio that compares it, if any. */
export interface SummaryRow {
  readonly label: string;
  readonly value: string;
  readonly ratio?: keyof BenchRatios;
}

/** The rows of a summary, in display order; sub-rows (error kinds) have an indented label. */
export function summaryRows(s: BenchSummary): SummaryRow[] {
  const e = s.errors;
  const rows: SummaryRow[] = [
    { label: 'requests/s', value: formatRate(s.requests.perSecond), ratio: 'requestsPerSecond' },
    { label: 'latency p50', value: formatMs(s.latencyMs.p50), ratio: 'latencyP50' },
    { label: 'latency p90', value: formatMs(s.latencyMs.p90), ratio: 'latencyP90' },
    { label: 'latency p99', value: formatMs(s.latencyMs.p99), ratio: 'latencyP99' },
    { label: 'latency max', value: formatMs(s.latencyMs.max), ratio: 'latencyMax' },
    { label: 'latency mean', value: formatMs(s.latencyMs.mean) },
    { label: 'throughput', value: formatMbPerSecond(s.throughput.mbPerSecond), ratio: 'mbPerSecond' },
    { label: 'requests', value: `${formatCount(s.requests.total)} (${formatCount(s.requests.ok)} 2xx)` },
  ];
  if (s.rounds > 1) {
    rows.push({ label: 'req/s by round', value: s.requests.perSecondByRound.map(formatRate).join('  ') });
  }
  rows.push(
    { label: 'duration', value: formatSeconds(s.durationS) },
    { label: 'errors', value: formatCount(e.total) },
    { label: '  connection', value: formatCountWith(e.connection.total, e.connection.byCode) },
    { label: '  timeouts', value: formatCount(e.timeouts) },
    { label: '  non-2xx', value: formatCountWith(e.non2xx.total, e.non2xx.byStatus) },
    { label: '  resets', value: formatCountWith(e.resets.total, e.resets.byCode) },
  );
  return rows;
}

/** How the load was made: `GET, 50 connections, keep-alive`. */
export function loadDescription(
  s: Pick<BenchSummary, 'method' | 'connections' | 'pipelining' | 'keepAlive'>,
): string {
  const parts = [s.method, `${s.connections} connection${s.connections === 1 ? '' : 's'}`];
  parts.push(s.keepAlive ? 'keep-alive' : 'a new connection per request');
  if (s.pipelining > 1) parts.push(`pipelining ${s.pipelining}`);
  return parts.join(', ');
}

/** The summary table, ending with a newline. */
export function renderSummary(s: BenchSummary): string {
  const rows = summaryRows(s);
  const width = Math.max(...rows.map((r) => r.label.length)) + 4;
  const lines = [`${s.url} (${loadDescription(s)})`, ''];
  for (const r of rows) lines.push(`${r.label.padEnd(width)}${r.value}`);
  return `${lines.join('\n')}\n`;
}
