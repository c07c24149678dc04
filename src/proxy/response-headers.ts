/**
 * The header list sent to the client from an upstream response (undici hands over raw
 * `Buffer` pairs): hop-by-hop headers and those named in the upstream's `Connection` are dropped,
 * then the route's `response_headers` are applied.
 */
import { connectionTokens, headerName, isHopByHop, withoutNamed } from '../core/header-names.js';
import type { ProxyRoute } from './proxy-route.js';
import type { VariableSource } from './variables.js';

/** Builds the client response headers as a flat `[name, value, ...]` array. */
export function clientResponseHeaders(
  raw: readonly Buffer[],
  route: ProxyRoute,
  src: VariableSource,
): string[] {
  const drop = route.dropResponse;
  let named: string[] | null = null;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = headerName(name);
    if (lower === 'connection') named = connectionTokens(raw[i + 1]!.toString('latin1'), named);
    if (isHopByHop(lower) || drop.has(lower)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  // Rare: an upstream naming extra hop-by-hop headers in `Connection`; filter them afterwards.
  const result = named === null ? out : withoutNamed(out, named);
  for (const [name, template] of route.responseSetHeaders) {
    const value = template(src);
    if (value !== '') result.push(name, value);
  }
  return result;
}
