/** Config problems as users see them: one line each, located at the node that caused them. */
import type { ErrorCode } from '../errors/catalogue.js';

/**
 * One problem in a config. `line`/`col` are 1-based positions in `file`; both are 0 when the
 * config is an object (createSluice(config), sluice.config.ts), where `file` is the module path
 * or `"config"` and the key path at the start of `message` is the only location there is.
 */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly code: ErrorCode;
  /** Starts with the key path when there is one: `servers[0].listen: ...`. One line. */
  readonly message: string;
  readonly hint: string;
}

/** What a config object given in code (no file) is called in its problems. */
export const CONFIG_OBJECT = 'config';

/**
 * Formats a problem as exactly one line: `FILE:LINE:COL: CODE message (hint: HINT)`. A problem of
 * a file with no position (the file cannot be read; a sluice.config.ts, located by key path) is at
 * `FILE:1:1`, so that every line keeps the form tools parse (CONTRACT section 2); one of a config
 * object given in code is `config: CODE message (hint: HINT)`. Warnings put `warning: ` before the
 * message.
 */
export function formatProblem(p: ConfigProblem, severity: 'error' | 'warning' = 'error'): string {
  const where =
    p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file === CONFIG_OBJECT ? p.file : `${p.file}:1:1`;
  const message = severity === 'warning' ? `warning: ${p.message}` : p.message;
  return `${where}: ${p.code} ${oneLine(message)} (hint: ${oneLine(p.hint)})`;
}

/** Messages quote user values with JSON.stringify, but a stray line break must never split a line. */
function oneLine(text: string): string {
  return text.replace(/\r\n|[\r\n]/g, ' ');
}

/** From how many problems their count says how many of each code there are. */
const COUNT_CODES_FROM = 10;

/**
 * How many problems there are, for the line after them: `3 problems`; from COUNT_CODES_FROM on, with
 * the count of each code, most first, since the list has scrolled away by then:
 * `5000 problems (4990 SLUICE_E_CONFIG_CIDR, 10 SLUICE_E_CONFIG_UNKNOWN_KEY)`.
 */
export function problemCount(problems: readonly ConfigProblem[]): string {
  const n = problems.length;
  const count = `${n} problem${n === 1 ? '' : 's'}`;
  if (n < COUNT_CODES_FROM) return count;
  const byCode = new Map<string, number>();
  for (const p of problems) byCode.set(p.code, (byCode.get(p.code) ?? 0) + 1);
  // Array.prototype.sort is stable: codes as frequent as each other stay in the order first seen.
  const codes = [...byCode].sort((a, b) => b[1] - a[1]).map(([code, k]) => `${k} ${code}`);
  return `${count} (${codes.join(', ')})`;
}
