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
