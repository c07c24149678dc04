/**
 * The header list sent to the client from an upstream response (undici hands over raw
 * `Buffer` pairs, sluice's client strings): hop-by-hop headers and those named in the upstream's `Connection` are dropped,
 * then the route's `response_headers` are applied.
 */
import type { ServerResponse } from 'node:http';
import { connectionTokens, headerName, isHopByHop, withoutNamed } from '../core/header-names.js';
import type { ProxyRoute } from './proxy-route.js';
import type { VariableSource } from './variables.js';

/** Builds the client response headers for a `status` answer as a flat `[name, value, ...]` array. */
export function clientResponseHeaders(
  raw: readonly (Buffer | string)[],
  route: ProxyRoute,
  src: VariableSource,
  status: number,
): string[] {
  const drop = route.dropResponse;
  let named: string[] | null = null;
  let length = false;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const lower = headerName(name);
    if (lower === 'connection') named = connectionTokens(latin1(raw[i + 1]!), named);
    if (isHopByHop(lower) || drop.has(lower)) continue;
    // Equal Content-Lengths pass the parser (differing ones are a 502); relayed twice, they made
    // Node's and undici's clients refuse the answer. One is sent, as nginx does (RFC 9110 8.6).
    // A 204 has no content, and RFC 9110 8.6 forbids its Content-Length: relayed over HTTP/2 with
    // END_STREAM on the head, curl and Node's client reset the stream as malformed. nginx drops it.
    if (lower === 'content-length') {
      if (length || status === 204) continue;
      length = true;
    }
    out.push(name, latin1(raw[i + 1]!));
  }
  // Rare: an upstream naming extra hop-by-hop headers in `Connection`; filter them afterwards.
  const result = named === null ? out : withoutNamed(out, named);
  appendTemplates(result, route.responseSetHeaders, src);
  // Length first: most routes add nothing, and this runs for every proxied answer.
  if (route.responseAddHeaders.length > 0 && addsHeaders(status))
    appendTemplates(result, route.responseAddHeaders, src);
  if (route.responseAddAlwaysHeaders.length > 0) appendTemplates(result, route.responseAddAlwaysHeaders, src);
  return result;
}

/**
 * The statuses nginx's `add_header` (without `always`) adds to: success and redirect answers, not
 * errors, so a header meant for pages (a Cache-Control, a CSP) does not stick to an error.
 */
const ADD_HEADER_STATUSES: ReadonlySet<number> = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

/** Whether `response_headers.add` applies to a `status` answer. */
export function addsHeaders(status: number): boolean {
  return ADD_HEADER_STATUSES.has(status);
}

/** Appends each header whose value is not empty (nginx sends no header added with an empty value). */
function appendTemplates(
  out: string[],
  headers: readonly (readonly [string, (src: VariableSource) => string])[],
  src: VariableSource,
): void {
  for (const [name, template] of headers) {
    const value = template(src);
    if (value !== '') out.push(name, value);
  }
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/**
 * Writes a target's status line and headers to the client. Node refuses a reason phrase or a
 * header value with a control character by throwing, after it has stored the reason on `res`: the
 * 502 that follows would reuse that reason and throw again, leaving the client with no answer and
 * no log line. The stored reason is cleared before the error goes on, so the 502 can be written.
 */
export function writeTargetHead(
  res: ServerResponse,
  status: number,
  reason: string,
  headers: readonly string[],
): void {
  try {
    if (reason) res.writeHead(status, reason, headers as string[]);
    else res.writeHead(status, headers as string[]);
  } catch (err) {
    res.statusMessage = '';
    throw err;
  }
}
