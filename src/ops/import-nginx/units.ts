/**
 * nginx times and sizes → sluice durations and sizes. nginx writes `60`, `60s`, `1m30s`, `500ms`
 * (a bare number is seconds) and `10m`, `1k`, `1024` (a bare number is bytes); sluice always
 * wants a unit: `60s`, `90s`, `500ms`, `10mb`, `1kb`, `1kb`.
 */
import { formatDuration, MAX_DURATION_MS } from '../../core/duration.js';
import { formatSize } from '../../core/size.js';
import type { NginxDirective } from './ast.js';
import type { WarningList } from './warnings.js';

/** nginx's time units (ngx_parse_time): M is 30 days, y 365. */
const TIME_UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  M: 30 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Milliseconds of an nginx time (`30`, `30s`, `1m30s`, `1h 30m`, `500ms`), or `null`. */
export function parseNginxTime(text: string): number | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const part = /(\d+)\s*(ms|s|m|h|d|w|M|y)\s*/y;
  let total = 0;
  let pos = 0;
  while (pos < t.length) {
    part.lastIndex = pos;
    const m = part.exec(t);
    if (!m) return null;
    total += Number(m[1]) * TIME_UNIT_MS[m[2]!]!;
    pos = part.lastIndex;
  }
  return pos === 0 ? null : total;
}

/** Bytes of an nginx size (`1024`, `16k`, `10m`, `1g`, either case), or `null`. */
export function parseNginxSize(text: string): number | null {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text.trim());
  if (!m) return null;
  const unit = m[2]!.toLowerCase();
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * factor;
}

/** Where a time was written, to warn when it is cut to sluice's longest duration. */
export interface TimeSource {
  readonly at: NginxDirective;
  readonly warnings: WarningList;
}

/**
 * An nginx time as a sluice duration (`1m30s` → `90s`), or `null` when it is not a time. A time
 * above sluice's longest, 24d (each duration arms a Node timer), is 24d, with a warning at `source`.
 */
export function toSluiceDuration(text: string, source?: TimeSource): string | null {
  const ms = parseNginxTime(text);
  if (ms === null) return null;
  if (ms > MAX_DURATION_MS) {
    source?.warnings.add(
      source.at,
      `${source.at.name} ${text}: longer than sluice's longest duration (24d: a duration arms a timer, which holds at most 24.8 days); 24d is used`,
    );
    return formatDuration(MAX_DURATION_MS);
  }
  return ms === 0 ? '0s' : formatDuration(ms);
}

/** An nginx size as a sluice size (`10m` → `10mb`, `1024` → `1kb`), or `null`. */
export function toSluiceSize(text: string): string | null {
  const bytes = parseNginxSize(text);
  return bytes === null ? null : formatSize(bytes);
}
