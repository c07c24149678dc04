/**
 * nginx matches locations against the decoded path (bytes: `/café/` is `/caf\xC3\xA9/`, whatever
 * the client escaped); sluice matches routes against the normalised path, which keeps most escapes
 * (docs/config.md, "Paths are matched after normalisation"). This file says how each byte of a
 * decoded path can be spelled in sluice's form, so a location can be written for what sluice sees:
 *
 *   A-Z a-z 0-9 - . _ ~  raw only (sluice decodes %41 to A)
 *   / and ! $ & ' ( ) * + , : ; = @: raw only (routes see %2F as /, %40 as @: routePathOf)
 *   other printable ASCII but % and ?: raw or %XX (" [ ] | ...)
 *   bytes 0x80-0xFF      %XX, or raw over HTTP/2
 *   % ? space, controls: %XX only (upper-case hex), never raw
 *   NUL                  never (sluice refuses %00)
 */

/**
 * Whether sluice's normalised path can hold `b` as itself. HTTP/1.1 requests hold printable ASCII
 * only; an HTTP/2 `:path` may also hold bytes 0x80-0xFF, which reach the router as they came
 * (one character each).
 */
export function rawByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e && b !== 0x25 && b !== 0x3f) || b >= 0x80;
}

/** Whether the path routes match (routePathOf) can hold `b` as `%XX`. */
export function encodedByte(b: number): boolean {
  return b !== 0 && b !== 0x2f && !unreserved(b) && !DECODED_FOR_ROUTES.has(b);
}

/** `! $ & ' ( ) * + , : ; = @`: their escapes are decoded for routes, as `%2F` is (routePathOf). */
const DECODED_FOR_ROUTES: ReadonlySet<number> = new Set([...":@!$&'()*+,;="].map((c) => c.charCodeAt(0)));

function unreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f ||
    b === 0x7e
  );
}

/**
 * Bytes a route's `path`/`path_prefix` spells escaped although a request may hold them raw: `#`,
 * which sluice's config refuses there, and the non-ASCII bytes, raw over HTTP/2 only.
 */
function escapedInConfig(b: number): boolean {
  return b === 0x23 || b >= 0x80;
}

/** `%XX`, upper-case, as sluice normalises escapes. */
function hex(b: number): string {
  return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** The bytes nginx compares a location's text with (its config is UTF-8, nginx reads bytes). */
export function pathBytes(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

/**
 * A decoded path in sluice's normalised spelling: raw where sluice keeps the byte raw, `%XX`
 * where it must be escaped. `ambiguous`: some byte may also come escaped (`@` or `%40`), so the
 * spelling matches the raw form only and another route must take the escaped ones.
 */
export function encodePath(text: string): { readonly path: string; readonly ambiguous: boolean } {
  let path = '';
  let ambiguous = false;
  for (const b of pathBytes(text)) {
    if (rawByte(b) && !escapedInConfig(b)) {
      path += String.fromCharCode(b);
      if (encodedByte(b)) ambiguous = true;
    } else if (encodedByte(b)) {
      path += hex(b);
      if (rawByte(b)) ambiguous = true;
    } else path += String.fromCharCode(b);
  }
  return { path, ambiguous };
}

/** Regex source matching every spelling sluice's normalised path can give the decoded `text`. */
export function pathSource(text: string): string {
  return pathBytes(text)
    .map((b) => byteSetSource(new Set([b])).text)
    .join('');
}

/** A regex for one decoded byte out of a set, in sluice's spelling; `single`: one JS atom. */
export interface ByteSetSource {
  readonly text: string;
  /** Safe to quantify as it is (`x+`); otherwise the caller wraps it in `(?:...)`. */
  readonly single: boolean;
}

/** Raw characters sluice's path can hold, for complements. */
const RAW_ALL = range(0, 255).filter(rawByte);
/** Escaped bytes sluice's path can hold. */
const ENCODED_ALL = range(0, 255).filter(encodedByte);

/**
 * The regex source matching exactly one byte of `set` as sluice spells it: `[a-z]`, `(?:!|%21)`,
 * `%(?:0[9A-D]|20)`, `(?:[^%/]|%(?!0A)[0-9A-F]{2})`. A complement is used where it is shorter;
 * it is exact because a normalised path holds no other escape (no `%41`, `%2F`, `%00`, lower-case hex).
 */
export function byteSetSource(set: ReadonlySet<number>): ByteSetSource {
  const raw = RAW_ALL.filter((b) => set.has(b));
  const encoded = ENCODED_ALL.filter((b) => set.has(b));
  const parts: string[] = [];
  if (raw.length > 0) parts.push(rawClass(raw));
  if (encoded.length > 0) parts.push(encodedAlternatives(encoded));
  if (parts.length === 0) return { text: '(?!)', single: true };
  if (parts.length === 1) {
    const text = parts[0]!;
    return { text, single: raw.length > 0 };
  }
  return { text: `(?:${parts.join('|')})`, single: true };
}

function rawClass(bytes: readonly number[]): string {
  if (bytes.length === 1) return escapeChar(bytes[0]!);
  const listed = `[${ranges(bytes).map(classItem).join('')}]`;
  // `%` is never a raw byte of the path, so a complement leaves it out too.
  const missing = RAW_ALL.filter((b) => !bytes.includes(b));
  const complement = `[^%${ranges(missing).map(classItem).join('')}]`;
  return complement.length < listed.length ? complement : listed;
}

function encodedAlternatives(bytes: readonly number[]): string {
  if (bytes.length === 1) return hex(bytes[0]!);
  const missing = ENCODED_ALL.filter((b) => !bytes.includes(b));
  if (missing.length === 0) return '%[0-9A-F]{2}';
  const alts = byHighNibble(bytes);
  const listed = alts.length === 1 ? `%${alts[0]}` : `%(?:${alts.join('|')})`;
  const complement = `%(?!${byHighNibble(missing).join('|')})[0-9A-F]{2}`;
  return complement.length < listed.length ? complement : listed;
}

/** `0[9A-D]`, `20`: the two hex digits of the bytes, one alternative per first digit. */
function byHighNibble(bytes: readonly number[]): string[] {
  const groups = new Map<number, number[]>();
  for (const b of bytes) {
    const list = groups.get(b >> 4) ?? [];
    list.push(b & 15);
    groups.set(b >> 4, list);
  }
  const digit = (n: number): string => n.toString(16).toUpperCase();
  return [...groups].map(([hi, lows]) => {
    if (lows.length === 1) return `${digit(hi)}${digit(lows[0]!)}`;
    if (lows.length === 16) return `${digit(hi)}[0-9A-F]`;
    const items = ranges(lows).map(([a, b]) =>
      a === b ? digit(a) : b === a + 1 ? `${digit(a)}${digit(b)}` : `${digit(a)}-${digit(b)}`,
    );
    return `${digit(hi)}[${items.join('')}]`;
  });
}

function classItem([a, b]: readonly [number, number]): string {
  if (a === b) return classChar(a);
  if (b === a + 1) return `${classChar(a)}${classChar(b)}`;
  return `${classChar(a)}-${classChar(b)}`;
}

function classChar(b: number): string {
  if (b >= 0x80) return `\\x${b.toString(16).toUpperCase()}`;
  const c = String.fromCharCode(b);
  return /[\\\]^-]/.test(c) ? `\\${c}` : c;
}

function escapeChar(b: number): string {
  if (b >= 0x80) return `\\x${b.toString(16).toUpperCase()}`;
  const c = String.fromCharCode(b);
  return /[.*+?^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
}

/** Consecutive runs of sorted numbers, as [first, last] pairs. */
function ranges(sorted: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const n of sorted) {
    const last = out.at(-1);
    if (last !== undefined && last[1] === n - 1) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
