/**
 * The human report: one row per check (status, check, value, expected, message), the fix on the
 * line below each check that does not pass, and a count at the end. Colour is the caller's
 * choice (`colorWanted`), so the same results always render to the same text.
 */
import * as util from 'node:util';
import { countByStatus } from './checks.js';
import type { CheckResult, CheckStatus } from './doctor-check.js';

type Format = Parameters<typeof util.styleText>[0];

/** Options of renderTable. */
export interface TableOptions {
  /** ANSI colours (via `util.styleText`). */
  readonly color: boolean;
}

const STATUS_FORMAT: Record<CheckStatus, Format> = {
  pass: 'green',
  warn: 'yellow',
  fail: ['red', 'bold'],
};

/**
 * Whether to colour: never with NO_COLOR (no-color.org), always with FORCE_COLOR other than `0`,
 * else only on a terminal.
 */
export function colorWanted(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0';
  return isTTY;
}

/** The report as text, ending in a newline. */
export function renderTable(results: readonly CheckResult[], opts: TableOptions): string {
  // Node 20.12+ has styleText; on 22.13+ it would check process.stdout itself, which the caller did.
  const styleText = (util as { styleText?: typeof util.styleText }).styleText;
  const paint = (format: Format, text: string): string =>
    opts.color && styleText !== undefined ? styleText(format, text, { validateStream: false }) : text;

  const header = ['STATUS', 'CHECK', 'VALUE', 'EXPECTED', 'MESSAGE'] as const;
  const rows = results.map((r) => [r.status.toUpperCase(), r.id, r.value ?? '-', r.expected, r.message]);
  const widths = [0, 1, 2, 3].map((col) =>
    Math.max(header[col]!.length, ...rows.map((row) => row[col]!.length)),
  );
  const pad = (text: string, col: number) => text.padEnd(widths[col]!);
  // Fixes start under CHECK: at the message column they would push most lines past 150 columns.
  const indent = ' '.repeat(widths[0]! + 2);

  const lines = [paint('bold', header.map((h, col) => (col < 4 ? pad(h, col) : h)).join('  '))];
  results.forEach((r, i) => {
    const row = rows[i]!;
    const cells = row.map((cell, col) => (col < 4 ? pad(cell, col) : cell));
    cells[0] = paint(STATUS_FORMAT[r.status], cells[0]!);
    lines.push(cells.join('  ').trimEnd());
    if (r.status !== 'pass' && r.fix !== '') lines.push(`${indent}${paint('dim', `fix: ${r.fix}`)}`);
  });

  const counts = countByStatus(results);
  const summary = (['pass', 'warn', 'fail'] as const)
    .map((s) => (counts[s] > 0 ? paint(STATUS_FORMAT[s], `${counts[s]} ${s}`) : `${counts[s]} ${s}`))
    .join(', ');
  lines.push('', `${results.length} checks: ${summary}`);
  return `${lines.join('\n')}\n`;
}
