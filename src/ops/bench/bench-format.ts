/** Number formats of the `sluice bench` tables: fixed decimals, thousands separators, no locale. */
import type { Counts } from './bench-summary.js';

/** What a table shows where there is no value: no latency, no ratio of it. */
export const NONE = '-';

/** `123456` → `123,456`. */
export function formatCount(n: number): string {
  return groupThousands(String(Math.round(n)));
}

/** `12345.67` → `12,345.7` (requests/s). */
export function formatRate(n: number): string {
  return groupThousands(n.toFixed(1));
}

/**
 * Milliseconds with about three significant digits: `0.084 ms`, `2.90 ms`, `14.0 ms`, `1,250 ms`;
 * the histogram resolves 1 µs, so a local server's sub-millisecond latency stays readable. `-` for
 * none (no request got an answer).
 */
export function formatMs(ms: number | null): string {
  if (ms === null) return NONE;
  const digits = ms < 1 ? 3 : ms < 10 ? 2 : ms < 100 ? 1 : 0;
  return `${groupThousands(ms.toFixed(digits))} ms`;
}

/** Seconds to 2 decimals: `10.02 s`. */
export function formatSeconds(s: number): string {
  return `${s.toFixed(2)} s`;
}

/** Megabytes (10^6 bytes) per second: `1.52 MB/s`. */
export function formatMbPerSecond(mb: number): string {
  return `${mb < 10 ? mb.toFixed(2) : mb.toFixed(1)} MB/s`;
}

/** A B/A ratio: `0.93×`; `n/a` when there was nothing to divide by. */
export function formatRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(2)}×`;
}

/** `{ "500": 48, "503": 2 }` → `500: 48, 503: 2`. */
export function formatCounts(counts: Counts): string {
  return Object.entries(counts)
    .map(([k, n]) => `${k}: ${formatCount(n)}`)
    .join(', ');
}

/** A count with its breakdown when there is one: `50 (500: 48, 503: 2)`. */
export function formatCountWith(total: number, counts: Counts): string {
  const detail = formatCounts(counts);
  return detail === '' ? formatCount(total) : `${formatCount(total)} (${detail})`;
}

function groupThousands(text: string): string {
  const [whole = '', fraction] = text.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}
