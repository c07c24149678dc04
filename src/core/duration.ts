/** Durations in config files: a number with a unit (`500ms`, `10s`, `5m`, `1h`, `1d`), parsed to milliseconds. */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** The pattern a duration string must match; shared with the config schema. */
export const DURATION_PATTERN = DURATION_RE.source;

/** Parses `"1.5s"` to `1500`; returns `null` for anything that is not a duration with a unit. */
export function parseDuration(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** Formats milliseconds back to the shortest exact unit, for messages and `--print`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
