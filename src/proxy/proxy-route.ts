/**
 * A route's `proxy` action compiled for the request path: header edits as lookup sets and
 * compiled templates, the upstream resolved to its run-time object. Built once per config.
 */

import type { TemplatePart } from '../config/template.js';
import type { ProxyAction } from '../config/types.js';
import type { Upstream } from './upstream.js';
import { compileTemplate, type Template } from './variables.js';

/** Headers sluice writes itself on every forwarded request (unless removed or overridden). */
const FORWARDED = ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host'] as const;

/** The compiled `proxy` action of one route. */
export interface ProxyRoute {
  readonly kind: 'proxy';
  readonly upstream: Upstream;
  readonly basePath: string;
  readonly stripPrefix: string;
  /**
   * Send the client's Host (or the one `set_headers` writes); false: sluice adds the target's
   * `host:port`.
   */
  readonly preserveHost: boolean;
  /** Incoming request headers (lower-case) not copied: removed, overridden, or written by sluice. */
  readonly dropRequest: ReadonlySet<string>;
  /** Which of the X-Forwarded-* / X-Real-IP headers sluice adds. */
  readonly addXForwardedFor: boolean;
  readonly addXRealIp: boolean;
  readonly addXForwardedProto: boolean;
  readonly addXForwardedHost: boolean;
  readonly setHeaders: readonly (readonly [string, Template])[];
  /** Upstream response headers (lower-case) not passed on: removed or overridden. */
  readonly dropResponse: ReadonlySet<string>;
  readonly responseSetHeaders: readonly (readonly [string, Template])[];
  /** Added on the statuses nginx's add_header adds to (`addsHeaders`). */
  readonly responseAddHeaders: readonly (readonly [string, Template])[];
  /** Added on every status. */
  readonly responseAddAlwaysHeaders: readonly (readonly [string, Template])[];
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly sendTimeoutMs: number;
}

/** Compiles a proxy action; `parse` turns a header value into template parts. */
export function compileProxyRoute(
  action: ProxyAction,
  upstream: Upstream,
  parse: (text: string) => readonly TemplatePart[],
): ProxyRoute {
  const setNames = action.setHeaders.map(([name]) => name.toLowerCase());
  const removed = new Set(action.removeHeaders);
  const overridden = new Set([...setNames, ...removed]);
  // `Expect` is answered by sluice itself (100-continue) and undici refuses to forward it.
  // traceparent and tracestate are replaced by sluice's own (the client's trace continued).
  const dropRequest = new Set<string>([...overridden, ...FORWARDED, 'expect', 'traceparent', 'tracestate']);
  if (!action.preserveHost) dropRequest.add('host');
  // A name the route writes with `_` (`X_User`) drops the client's `X-User` too: CGI-style
  // upstreams read both as one (request-headers.ts drops the other way round).
  for (const name of [...dropRequest]) if (name.includes('_')) dropRequest.add(name.replaceAll('_', '-'));
  const responseSetNames = action.responseSetHeaders.map(([name]) => name.toLowerCase());
  return {
    kind: 'proxy',
    upstream,
    basePath: action.basePath,
    stripPrefix: action.stripPrefix,
    // `set_headers: { Host: ... }` wins over `preserve_host: false` (the config check says so):
    // adding the target's host:port as well sent two Host headers, and the upstream refused
    // every request (a 502 each time).
    preserveHost: action.preserveHost || setNames.includes('host'),
    dropRequest,
    addXForwardedFor: !overridden.has('x-forwarded-for'),
    addXRealIp: !overridden.has('x-real-ip'),
    addXForwardedProto: !overridden.has('x-forwarded-proto'),
    addXForwardedHost: !overridden.has('x-forwarded-host'),
    setHeaders: compileHeaders(action.setHeaders, parse),
    dropResponse: new Set([...action.responseRemoveHeaders, ...responseSetNames]),
    responseSetHeaders: compileHeaders(action.responseSetHeaders, parse),
    responseAddHeaders: compileHeaders(action.responseAddHeaders, parse),
    responseAddAlwaysHeaders: compileHeaders(action.responseAddAlwaysHeaders, parse),
    connectTimeoutMs: action.connectTimeoutMs,
    readTimeoutMs: action.readTimeoutMs,
    sendTimeoutMs: action.sendTimeoutMs,
  };
}

/** Header pairs with their values compiled once, at config time. */
function compileHeaders(
  pairs: readonly (readonly [string, string])[],
  parse: (text: string) => readonly TemplatePart[],
): (readonly [string, Template])[] {
  return pairs.map(([name, value]) => [name, compileTemplate(parse(value))] as const);
}

/**
 * The path sent upstream: strip the prefix, prepend the base path, keep the query. `null` when the
 * strip would make a `.` or `..` segment the client's path did not have: `strip_prefix: /api` cuts
 * `/api../admin` mid-segment, and the `/` put before the rest made `/../admin`, which an upstream
 * resolving dot segments served from above the base path, past the routes and access rules written
 * for that path (nginx, adding no `/`, sends `/base../admin`). The caller answers 400.
 */
export function upstreamPath(
  route: Pick<ProxyRoute, 'stripPrefix' | 'basePath'>,
  path: string,
  query: string,
): string | null {
  let p = path;
  if (route.stripPrefix !== '' && p.startsWith(route.stripPrefix)) {
    p = p.slice(route.stripPrefix.length);
    if (p.charCodeAt(0) !== 0x2f /* / */) {
      if (startsWithDotSegment(p)) return null;
      p = `/${p}`;
    }
  }
  if (route.basePath !== '') p = p === '/' ? `${route.basePath}/` : route.basePath + p;
  return query === '' ? p : p + query;
}

/** `.`, `..`, `./…` or `../…`: the first segment of `rest` is a dot segment (the path is decoded). */
function startsWithDotSegment(rest: string): boolean {
  if (rest.charCodeAt(0) !== 0x2e /* . */) return false;
  const end = rest.indexOf('/');
  const first = end === -1 ? rest : rest.slice(0, end);
  return first === '.' || first === '..';
}
