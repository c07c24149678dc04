/** The `--json` report: `{ "checks": [ { id, status, value, expected, message, fix } ] }` (CONTRACT section 8). */
import type { CheckResult } from './doctor-check.js';

/** The report as pretty-printed JSON, one trailing newline. Keys in contract order. */
export function renderJson(results: readonly CheckResult[]): string {
  const checks = results.map(({ id, status, value, expected, message, fix }) => ({
    id,
    status,
    value,
    expected,
    message,
    fix,
  }));
  return `${JSON.stringify({ checks }, null, 2)}\n`;
}
