/** Durations in config files: a number with a unit (`500ms`, `10s`, `5m`, `1h`, `1d`), parsed to milliseconds. */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** The pattern a duration string must match; shared with the config schema. */
export const DURATION_PATTERN = DURATION_RE.source;

/** The longest delay a Node timer holds: 2^31−1 ms (24.8 days). A longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The longest duration a config may give a timer: 24 days. Beyond MAX_TIMER_MS a timeout would
 * fire at once; 24d leaves 20 hours of room below it for a grace period added to a deadline
 * (a draining worker is killed 5 s after `shutdown_timeout`).
 */
export const MAX_DURATION_MS = 24 * UNIT_MS.d;

/** Parses `"1.5s"` to `1500`; returns `null` for anything that is not a duration with a unit. */
export function parseDuration(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** Whether `text`, if it is a duration, lasts at most `maxMs`; one too long to count is not. */
export function durationAtMost(text: string, maxMs: number): boolean {
  const m = DURATION_RE.exec(text.trim());
  return m === null || Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] <= maxMs;
}

/** `ms` as a timer can hold it: a delay computed from a deadline (deadline + grace) never wraps to 1 ms. */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

/** Formats milliseconds back to the shortest exact unit, for messages and `--print`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
