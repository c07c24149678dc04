/**
 * The header list sent upstream, built in one pass over the client's raw headers into a flat
 * `[name, value, ...]` array (undici's cheapest header form): hop-by-hop headers, headers named
 * in `Connection`, and those the route removes or overrides are dropped; then sluice's forwarding
 * headers and the route's `set_headers` are appended.
 */
import { headerName, isHopByHop } from '../core/header-names.js';
import type { ProxyExchange } from './proxy-exchange.js';
import type { ProxyRoute } from './proxy-route.js';

/** Builds the upstream request headers for `x` going to a target whose `host:port` is `targetHost`. */
export function upstreamRequestHeaders(
  x: ProxyExchange,
  route: ProxyRoute,
  targetHost: string,
  traceparent: string,
): string[] {
  const raw = x.req.rawHeaders;
  const drop = route.dropRequest;
  const named = x.connectionTokens;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = headerName(name);
    if (isHopByHop(lower) || drop.has(lower) || named?.includes(lower)) continue;
    if (lower.indexOf('_') !== -1 && isSpelledAsDropped(lower, drop)) continue;
    out.push(name, raw[i + 1]!);
  }
  if (!route.preserveHost) out.push('host', targetHost);
  if (route.addXForwardedFor) out.push('x-forwarded-for', x.forwardedFor);
  if (route.addXRealIp) out.push('x-real-ip', x.remoteAddr);
  if (route.addXForwardedProto) out.push('x-forwarded-proto', x.forwardedProto);
  if (route.addXForwardedHost && x.forwardedHost !== '') out.push('x-forwarded-host', x.forwardedHost);
  out.push('traceparent', traceparent);
  if (x.tracestate !== null) out.push('tracestate', x.tracestate);
  for (const [name, template] of route.setHeaders) {
    const value = template(x);
    // nginx: a header set to an empty value is not sent.
    if (value !== '') out.push(name, value);
  }
  return out;
}

/**
 * `x_client_id` for a dropped `x-client-id`. Upstreams that read headers as CGI variables (PHP,
 * WSGI's wsgiref, Ruby's Rack) turn `-` and `_` alike into `_`: a client's `X_Client_Id` was
 * forwarded beside the `X-Client-Id` a route sets, and such an upstream read the client's value
 * (or both, joined) as the trusted one; `X_Forwarded_For` did the same to the client address.
 * nginx drops every name with `_` (`ignore_invalid_headers`); here only those that spell a header
 * sluice removes or writes itself, so other names with `_` still pass.
 */
function isSpelledAsDropped(lower: string, drop: ReadonlySet<string>): boolean {
  const dashed = lower.replaceAll('_', '-');
  return drop.has(dashed) || isHopByHop(dashed);
}
