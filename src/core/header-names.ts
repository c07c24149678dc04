/**
 * Lower-case header names without a `toLowerCase()` per header per request.
 *
 * Raw header names repeat across requests with the same spelling ("Host", "User-Agent"), so a
 * bounded Map from the raw spelling to the interned lower-case name turns a string allocation per
 * header into one Map probe. The cache is cleared when full, so hostile clients sending random
 * names cannot grow it past `MAX_CACHED`.
 */

const MAX_CACHED = 2048;
const cache = new Map<string, string>();

/** The lower-case form of a raw header name, interned. */
export function headerName(raw: string): string {
  let lower = cache.get(raw);
  if (lower === undefined) {
    lower = raw.toLowerCase();
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(raw, lower);
  }
  return lower;
}

/**
 * Hop-by-hop headers (RFC 9110 7.6.1, plus the RFC 2616 list and the non-standard
 * `Proxy-Connection`): they describe one connection and are never forwarded, in either direction.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The fields of a response that describe its connection and have no place in an answer an app
 * writes: HTTP/2 forbids them (RFC 9113 8.2.2; Node's list, Node 20 to 24), and on HTTP/1.1 Node
 * frames the answer and sets Connection and Keep-Alive itself. `te` means nothing in a response.
 */
export const CONNECTION_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
]);

/** Whether a lower-case header name is hop-by-hop. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName);
}

/**
 * Adds the header names a `Connection` value lists (lower-case; not `close` or `keep-alive`) to
 * `into` (a new list when null and there is one to add): `into` as given when it names none. A
 * sender uses them to mark further headers hop-by-hop.
 */
export function connectionTokens(value: string, into: string[] | null): string[] | null {
  // The values nearly every answer carries name no header: no split, trim or lower-casing for them
  // (0.9 % of a proxy worker's CPU, for nginx's `Connection: keep-alive` on every answer).
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return into;
  let list = into;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || token === 'close' || token === 'keep-alive') continue;
    if (list === null) list = [];
    list.push(token);
  }
  return list;
}

/** `headers` (a flat `[name, value, ...]` list) without the ones `named` lists. */
export function withoutNamed(headers: string[], named: readonly string[]): string[] {
  if (named.length === 0) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.includes(headerName(headers[i]!))) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
