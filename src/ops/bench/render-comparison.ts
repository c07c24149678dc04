/**
 * `--compare` as a text table: one row per metric, A and B side by side, then B / A. Pure.
 *
 *   A  http://127.0.0.1:8080/
 *   B  http://127.0.0.1:8081/  (--compare)
 *   GET, 50 connections, keep-alive; 3 rounds per target, A then B in each
 *
 *                   A           B           B / A
 *   requests/s      12,345.6    11,480.1    0.93×
 *   ...
 *
 *   B / A: 0.93× requests/s, 1.40× p99
 */
import type { BenchComparison } from './bench-comparison.js';
import { formatRatio, NONE } from './bench-format.js';
import { loadDescription, summaryRows } from './render-summary.js';

const GAP = 4;

/** The comparison table and its one-line verdict, ending with a newline. */
export function renderComparison(c: BenchComparison): string {
  const aRows = summaryRows(c.a);
  const bRows = new Map(summaryRows(c.b).map((row) => [row.label, row.value]));
  const table: string[][] = [['', 'A', 'B', 'B / A']];
  for (const row of aRows) {
    // A run cut short by Ctrl-C can leave B with fewer rounds, hence rows A has and B lacks.
    const b = bRows.get(row.label) ?? NONE;
    // No value on one side (no answer, so no latency): no ratio either, rather than 0.00× or n/a.
    const ratio =
      row.ratio === undefined
        ? ''
        : row.value === NONE || b === NONE
          ? NONE
          : formatRatio(c.ratio[row.ratio]);
    table.push([row.label, row.value, b, ratio]);
  }
  const widths = [0, 1, 2].map((col) => Math.max(...table.map((cells) => cells[col]!.length)) + GAP);
  const lines = [
    `A  ${c.a.url}`,
    `B  ${c.b.url}  (--compare)`,
    `${loadDescription(c.a)}; ${c.a.rounds} round${c.a.rounds === 1 ? '' : 's'} per target, A then B in each`,
    '',
  ];
  for (const cells of table) {
    lines.push(
      cells
        .map((cell, col) => (col < 3 ? cell.padEnd(widths[col]!) : cell))
        .join('')
        .trimEnd(),
    );
  }
  lines.push('', comparisonVerdict(c));
  if (c.roundsOverlap) {
    lines.push(
      "note: A's and B's per-round requests/s ranges overlap: a difference this small is within this machine's noise",
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The one-line reading: `B / A: 0.93× requests/s, 1.40× p99` (`- p99` when either had no answer). */
export function comparisonVerdict(c: BenchComparison): string {
  const p99 =
    c.a.latencyMs.p99 === null || c.b.latencyMs.p99 === null ? NONE : formatRatio(c.ratio.latencyP99);
  return `B / A: ${formatRatio(c.ratio.requestsPerSecond)} requests/s, ${p99} p99`;
}
