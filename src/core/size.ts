/** Sizes in config files: `512b`, `16kb`, `10mb`, `1gb` (nginx's `k`, `m`, `g` too), 1 kb = 1024 bytes. */

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb?|mb?|gb?)$/i;

/** The pattern a size string must match; shared with the config schema. */
export const SIZE_PATTERN = '^(\\d+(?:\\.\\d+)?)\\s*([bB]|[kKmMgG][bB]?)$';

/** Parses `"16kb"` to `16384`; returns `null` for anything that is not a size with a unit. */
export function parseSize(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return null;
  const bytes = Number(m[1]) * (UNIT_BYTES[m[2]!.toLowerCase()] ?? Number.NaN);
  return Number.isFinite(bytes) ? Math.floor(bytes) : null;
}

/** Whether `text`, if it is a size, is at most `maxBytes`; one too large to count is not. */
export function sizeAtMost(text: string, maxBytes: number): boolean {
  const m = SIZE_RE.exec(text.trim());
  return m === null || Number(m[1]) * (UNIT_BYTES[m[2]!.toLowerCase()] ?? 0) <= maxBytes;
}

/** Formats bytes with the largest exact unit, for messages and `--print`. */
export function formatSize(bytes: number): string {
  for (const unit of ['gb', 'mb', 'kb'] as const) {
    const size = UNIT_BYTES[unit]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}b`;
}
