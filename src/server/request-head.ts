/**
 * One pass over a request's raw headers: the strictness checks Node's parser (llhttp) leaves to
 * the application (RFC 9112 / BEHAVIOUR.md section 5), and the few values the gateway needs.
 *
 * llhttp already refuses, before any handler runs: CL with TE, repeated or non-decimal CL, obs-fold,
 * whitespace before the colon, bad header names, CR/LF/NUL in values, bad chunk sizes. It does NOT
 * refuse, or refuses only after calling the request handler: a missing Host on HTTP/1.1 (Node's
 * `requireHostHeader` is off, so that this answer is sluice's, logged and counted), a repeated
 * Host, a Transfer-Encoding other than `chunked` alone (llhttp fails just after handing the head
 * over, see http-listener.ts's client errors), Transfer-Encoding on HTTP/1.0, a non-origin-form target
 * or one with a fragment, HTTP/0.9, `HTTP/2.0` in an HTTP/1 request line. Those are here,
 * so an ambiguous request is answered 400 before anything reaches an upstream.
 *
 * HTTP/2 requests (RFC 9113 8.2-8.3) are checked by their own pass: nghttp2 has already refused
 * malformed pseudo-headers, upper-case names and a Content-Length that disagrees with the data;
 * here a request is refused for connection-specific fields (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade), a TE other than `trailers`, no `:authority` nor
 * Host, a repeated Host, or a Host that differs from `:authority`. Its body is known by whether
 * the client ended the stream with the headers (`length` with a Content-Length, else `chunked`:
 * read to the end of the stream).
 */
import type { IncomingMessage } from 'node:http';
import { headerName, isHopByHop } from '../core/header-names.js';
import type { H2Request } from './h2-compat.js';

/** What the gateway learns from the request head. */
export interface RequestHead {
  /** Host header value as sent (empty for HTTP/1.0 without one). */
  host: string;
  /** Lower-case header names listed in `Connection` (removed before forwarding), or null. */
  connectionTokens: string[] | null;
  /** Whether `Connection: close` was asked for. */
  close: boolean;
  /** The `Upgrade` header value, or null. */
  upgrade: string | null;
  /** Request body framing: `none`, `length` (Content-Length) or `chunked`. */
  body: 'none' | 'length' | 'chunked';
  /** Content-Length when `body` is `length`. */
  contentLength: number;
  /** Incoming X-Forwarded-For / -Proto / -Host, or null. */
  xForwardedFor: string | null;
  xForwardedProto: string | null;
  xForwardedHost: string | null;
  /** W3C `traceparent` and `tracestate`, or null. */
  traceparent: string | null;
  tracestate: string | null;
  /** `Expect: 100-continue` (HTTP/1.1 and HTTP/2): the client waits for a 100 before sending its body. */
  expectContinue: boolean;
}

/** Why a request head is refused; the caller answers 400 and closes. */
export type HeadProblem =
  | 'http_version'
  | 'request_target'
  | 'host_missing'
  | 'host_repeated'
  | 'host_invalid'
  | 'host_authority_mismatch'
  | 'transfer_encoding'
  | 'connection_specific_header'
  /** HTTP/2 only (HTTP/1.1 heads are measured by Node's parser): answered 431. */
  | 'headers_too_large';

/** Reads and checks a request head; returns the problem, or fills and returns `head`. */
export function scanRequestHead(
  req: IncomingMessage,
  head: RequestHead,
  maxHeader = Number.POSITIVE_INFINITY,
): RequestHead | HeadProblem {
  if (req.httpVersionMajor !== 1) {
    // `HTTP/2.0` in an HTTP/1 request line is no HTTP/2 request (it has no stream).
    return isH2Request(req)
      ? scanH2RequestHead(req as unknown as H2Request, head, maxHeader)
      : 'http_version';
  }
  const url = req.url ?? '';
  if (!isOriginForm(url)) return 'request_target';

  const raw = req.rawHeaders;
  let hostCount = 0;
  let te: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerName(raw[i]!);
    const value = raw[i + 1]!;
    switch (name) {
      case 'host':
        hostCount++;
        head.host = value;
        break;
      case 'transfer-encoding':
        // llhttp rejects a second Transfer-Encoding header; join defensively anyway.
        te = te === null ? value : `${te}, ${value}`;
        break;
      case 'connection':
        readConnectionTokens(value, head);
        break;
      case 'upgrade':
        head.upgrade = value;
        break;
      default:
        readSharedField(name, value, head);
    }
  }

  // RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue is ignored, and no 1xx may go to an
  // HTTP/1.0 client (15.2); Node's own Expect handling is for HTTP/1.1 alone too.
  if (req.httpVersionMinor === 0) head.expectContinue = false;
  if (hostCount > 1) return 'host_repeated';
  if (hostCount === 0 && req.httpVersionMinor === 1) return 'host_missing';
  if (hostCount === 1 && !isValidHost(head.host)) return 'host_invalid';
  if (te !== null) {
    // RFC 9112 6.1: TE on HTTP/1.0 is faulty framing. Only `chunked` alone, as nginx: sluice
    // applies no other coding, and forwarding `gzip, chunked` de-chunked as plain bytes would
    // drop the gzip label from a body that still has it.
    if (req.httpVersionMinor === 0 || te.trim().toLowerCase() !== 'chunked') return 'transfer_encoding';
    head.body = 'chunked';
  }
  return head;
}

/** The HTTP/2 pass of `scanRequestHead` (see the file comment). */
function scanH2RequestHead(req: H2Request, head: RequestHead, maxHeader: number): RequestHead | HeadProblem {
  const url = req.url ?? '';
  if (!isOriginForm(url) || !isVisibleAscii(url)) return 'request_target';
  // HTTP/2 field names arrive lower-case (nghttp2 refuses others), so no headerName() here.
  const raw = req.h2RawHeaders;
  let authority: string | null = null;
  let hostCount = 0;
  // The header list size of RFC 9113 6.5.2 (name, value and 32 octets per field). The limit is
  // advertised in SETTINGS, but nghttp2 accepted lists far over it (60 KB with max_header 4kb).
  let size = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    size += name.length + value.length + 32;
    switch (name) {
      case ':authority':
        authority = value;
        break;
      case 'host':
        hostCount++;
        head.host = value;
        break;
      case 'connection':
      case 'keep-alive':
      case 'proxy-connection':
      case 'transfer-encoding':
      case 'upgrade':
        return 'connection_specific_header';
      case 'te':
        if (value.trim().toLowerCase() !== 'trailers') return 'transfer_encoding';
        break;
      default:
        readSharedField(name, value, head);
    }
  }
  if (size > maxHeader) return 'headers_too_large';
  if (hostCount > 1) return 'host_repeated';
  if (authority !== null) {
    // RFC 9113 8.3.1: a Host naming another authority than `:authority` makes the request malformed.
    if (hostCount === 1 && head.host.toLowerCase() !== authority.toLowerCase())
      return 'host_authority_mismatch';
    head.host = authority;
  } else if (hostCount === 0) {
    return 'host_missing';
  }
  if (!isValidHost(head.host)) return 'host_invalid';
  if (req.endStream) {
    head.body = 'none';
    head.contentLength = 0;
  } else if (head.body === 'none') {
    head.body = 'chunked';
  }
  return head;
}

/**
 * Node's own test for a 100-continue expectation, list members included (`100-continue, foo`).
 * The two must agree: a request Node takes as expecting 100 but sluice did not got no 100, and
 * Node then closed the connection after its answer (its body may not have been sent), dropping the
 * requests pipelined behind it.
 */
const CONTINUE_EXPECTED = /(?:^|\W)100-continue(?:$|\W)/i;

/** The fields HTTP/1.1 and HTTP/2 heads carry alike (`name` lower-case). */
function readSharedField(name: string, value: string, head: RequestHead): void {
  switch (name) {
    case 'content-length':
      head.body = 'length';
      head.contentLength = Number(value);
      break;
    case 'x-forwarded-for':
      head.xForwardedFor = head.xForwardedFor === null ? value : `${head.xForwardedFor}, ${value}`;
      break;
    // The last value, as for X-Forwarded-For's right-most entry: a trusted proxy appends its own
    // after whatever its client sent (first-wins kept a client's `https` or `evil.example`).
    case 'x-forwarded-proto':
      head.xForwardedProto = lastListValue(value);
      break;
    case 'x-forwarded-host':
      head.xForwardedHost = lastListValue(value);
      break;
    case 'traceparent':
      head.traceparent ??= value;
      break;
    case 'tracestate':
      head.tracestate = head.tracestate === null ? value : `${head.tracestate},${value}`;
      break;
    case 'expect':
      if (CONTINUE_EXPECTED.test(value)) head.expectContinue = true;
      break;
  }
}

/** A fresh, empty head to be filled by `scanRequestHead`. */
export function emptyHead(): RequestHead {
  return {
    host: '',
    connectionTokens: null,
    close: false,
    upgrade: null,
    body: 'none',
    contentLength: 0,
    xForwardedFor: null,
    xForwardedProto: null,
    xForwardedHost: null,
    expectContinue: false,
    traceparent: null,
    tracestate: null,
  };
}

function readConnectionTokens(value: string, head: RequestHead): void {
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '') continue;
    if (token === 'close') head.close = true;
    // Host is never hop-by-hop: `Connection: Host` must not make the proxy send the target's
    // address instead of the client's Host (defeating preserve_host and name-based routing upstream).
    else if (token !== 'keep-alive' && token !== 'host' && !isHopByHop(token)) {
      head.connectionTokens ??= [];
      head.connectionTokens.push(token);
    }
  }
}

/** An HTTP/2 request (Node's compatibility layer), not an HTTP/1 one claiming version 2. */
export function isH2Request(req: IncomingMessage): boolean {
  return (req as unknown as { stream?: unknown }).stream !== undefined;
}

/**
 * RFC 9112 origin-form: a path (and query) starting with `/`, without a fragment. A `#` would
 * let `/secret#x` miss an exact or regex route for `/secret` while an upstream that parses URLs
 * serves `/secret`.
 */
function isOriginForm(url: string): boolean {
  return url.charCodeAt(0) === 0x2f /* / */ && !url.includes('#');
}

/**
 * Whether a target holds only visible ASCII, as RFC 3986 wants (other bytes percent-encoded).
 * Node's HTTP/1.1 parser refuses the others (a 400); nghttp2 passed them through in `:path`, one
 * character per byte, where no route matched them: `/café/` sent raw over HTTP/2 missed the
 * route (and its access rules) for `/caf%C3%A9/` that its escaped spelling meets.
 */
function isVisibleAscii(url: string): boolean {
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/**
 * RFC 3986 host and optional port: a reg-name (or IPv4 address) or an IP-literal in brackets,
 * then `:` and up to 5 digits up to 65535 (an empty port, `example.com:`, is allowed there, and
 * nginx takes it). Refuses what could confuse routing or an upstream: slashes, `@`, spaces,
 * backslashes, empty names and empty labels (`a..b`, `.`: nginx refuses them too), a second
 * colon, a port that is no port.
 */
export function isValidHost(host: string): boolean {
  const n = host.length;
  if (n === 0 || n > 255) return false;
  let end: number;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    end = host.indexOf(']');
    if (end < 2) return false;
    for (let i = 1; i < end; i++) {
      const c = host.charCodeAt(i);
      const ok = isHexDigit(c) || c === 0x3a /* : */ || c === 0x2e; /* . (IPv4 tail) */
      if (!ok) return false;
    }
    end++;
  } else {
    end = host.indexOf(':');
    if (end === -1) end = n;
    if (end === 0) return false;
    for (let i = 0; i < end; i++) {
      const c = host.charCodeAt(i);
      const ok =
        (c >= 0x61 && c <= 0x7a) || // a-z
        (c >= 0x41 && c <= 0x5a) || // A-Z
        (c >= 0x30 && c <= 0x39) || // 0-9
        (c === 0x2e && (i === 0 || host.charCodeAt(i - 1) !== 0x2e) && end > 1) || // . (not `..`, not alone)
        c === 0x2d || // -
        c === 0x5f; // _
      if (!ok) return false;
    }
  }
  if (end === n) return true;
  return host.charCodeAt(end) === 0x3a /* : */ && isPort(host, end + 1);
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Up to 5 digits from `from` to the end, at most 65535 (none: RFC 3986's empty port). */
function isPort(s: string, from: number): boolean {
  const digits = s.length - from;
  if (digits > 5) return false;
  let port = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    port = port * 10 + (c - 0x30);
  }
  return port <= 65535;
}

/** The last entry of a comma-separated header value, trimmed (`a, b` → `b`). */
function lastListValue(value: string): string {
  const comma = value.lastIndexOf(',');
  return comma === -1 ? value : value.slice(comma + 1).trim();
}
