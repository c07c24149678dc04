/**
 * Request path normalisation before route matching, so that `/%61pi/../admin` cannot slip past a
 * route written for `/admin`: percent-encoded unreserved characters are decoded (RFC 3986 6.2.2.2),
 * other escapes get upper-case hex, runs of `/` are merged (unless `merge_slashes: false`), and
 * `.`/`..` segments are removed (RFC 3986 5.2.4).
 * The normalised path is also what is forwarded upstream, so routing and the upstream agree.
 */

/**
 * Returns the normalised path, or `null` when it is malformed (bad escape, `%00`, `..` above the root).
 * With `mergeSlashes` (nginx's default), runs of `/` become one: `//admin/x` must not slip past a
 * route for `/admin/`, as it did, while an upstream that merges them too serves `/admin/x`.
 */
export function normalisePath(path: string, mergeSlashes = true): string | null {
  // Fast path: nearly every path has neither escapes, dot segments nor doubled slashes.
  if (path.indexOf('%') === -1 && path.indexOf('/.') === -1 && (!mergeSlashes || path.indexOf('//') === -1))
    return path;
  let decoded = path.indexOf('%') === -1 ? path : decodeUnreserved(path);
  if (decoded === null) return null;
  if (mergeSlashes && decoded.indexOf('//') !== -1) decoded = decoded.replace(/\/{2,}/g, '/');
  return decoded.indexOf('/.') === -1 ? decoded : removeDotSegments(decoded);
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e // ~
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function decodeUnreserved(path: string): string | null {
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    const c = hi * 16 + lo;
    // A NUL is no path byte: an upstream in C may end the path there (nginx refuses it too).
    if (hi < 0 || lo < 0 || c === 0) return null;
    out += path.slice(last, i);
    out += isUnreserved(c) ? String.fromCharCode(c) : `%${path.slice(i + 1, i + 3).toUpperCase()}`;
    last = i + 3;
    i += 2;
  }
  return out + path.slice(last);
}

function removeDotSegments(path: string): string | null {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is '' for an absolute path.
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.') {
      if (i === segments.length - 1) out.push('');
    } else if (s === '..') {
      if (out.length === 0) return null;
      out.pop();
      if (i === segments.length - 1) out.push('');
    } else {
      out.push(s);
    }
  }
  return `/${out.join('/')}`;
}

/**
 * The form of a normalised request path (`normalisePath`) that routes match. nginx decodes the path
 * before it matches locations, so `/%40admin/x` is `/@admin/x` there, as it is to an upstream that
 * decodes it; matched as sent, it slipped past a route for `/@admin/` (and its access rules). Here
 * `%2F` is read as `/`, and the escapes of `: @ ! $ & ' ( ) * + , ; =` (characters a path may hold
 * as they are) as those characters. Escapes of `%`, `?`, `#`, spaces, controls and non-ASCII bytes
 * stay, upper-case: route paths in the config are read into this same form (`routeConfigPath`).
 * `null` when decoding leaves a `..` above the root. A path without `%` is itself.
 */
export function routePathOf(path: string, mergeSlashes = true): string | null {
  if (path.indexOf('%') === -1) return path;
  const decoded = path.replace(DECODED_IN_ROUTES, decodeEscape);
  return decoded === path ? path : normalisePath(decoded, mergeSlashes);
}

/** `%XX` as its character. */
function decodeEscape(text: string): string {
  return String.fromCharCode(Number.parseInt(text.slice(1), 16));
}

/**
 * What a route path keeps as written: printable ASCII. A client may send `[`, `"` or `|` raw or
 * escaped, and a route written with one matches the raw spelling, as before; non-ASCII text and
 * controls reach sluice escaped only.
 */
const RAW_IN_PATHS = /^[\x21-\x7e]$/;

/** `%2F` and the escapes of `: @ ! $ & ' ( ) * + , ; =`, upper-case as `normalisePath` leaves them. */
const DECODED_IN_ROUTES = /%(?:2F|3A|40|21|24|26|27|28|29|2A|2B|2C|3B|3D)/g;

/**
 * A route's `path` or `path_prefix` from the config in the form request paths are matched in
 * (`routePathOf`): non-ASCII characters (and controls) as upper-case UTF-8 escapes, escapes upper-case, escapes
 * of unreserved and path characters decoded. `/naïve/`, `/na%c3%afve/` and `/na%C3%AFve/` are one
 * route; written as they were, the first two never matched. Slashes are not merged here: a route
 * path with `//` is reported where the server merges them (normalise-route.ts). `null` for a
 * malformed escape or `%00`.
 */
export function routeConfigPath(text: string): string | null {
  let encoded = '';
  for (const ch of text) encoded += RAW_IN_PATHS.test(ch) ? ch : encodeURIComponent(ch);
  const unreserved = encoded.indexOf('%') === -1 ? encoded : decodeUnreserved(encoded);
  if (unreserved === null) return null;
  return unreserved.replace(DECODED_IN_ROUTES, decodeEscape);
}
