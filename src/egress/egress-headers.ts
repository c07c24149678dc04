/**
 * Header lists across the egress proxy, built in one pass into flat `[name, value, ...]` arrays
 * (undici's and Node's cheapest form). Both ways, hop-by-hop headers (RFC 9110 7.6.1, with
 * `Proxy-Connection` and `Proxy-Authorization`, which is meant for this proxy and never for the
 * origin) and every header named in `Connection` are dropped. Towards the origin, `Host` is set
 * from the request target (RFC 9112 3.2.2) and `Expect` is dropped (sluice answers the
 * `100 Continue` itself, once the policy allows the request). Nothing is added: no `Via`, no `X-Forwarded-For`, so internal addresses do not
 * leak to third parties.
 */
import { connectionTokens, headerName, isHopByHop, withoutNamed } from '../core/header-names.js';

/** The headers sent to the origin, from the client's raw headers. */
export function egressRequestHeaders(raw: readonly string[], hostHeader: string): string[] {
  let named: string[] | null = null;
  const out: string[] = ['host', hostHeader];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = headerName(name);
    if (lower === 'connection') named = connectionTokens(raw[i + 1]!, named);
    if (isHopByHop(lower) || lower === 'host' || lower === 'expect') continue;
    out.push(name, raw[i + 1]!);
  }
  // `host` named in Connection must not strip the Host this proxy sets.
  return named === null
    ? out
    : withoutNamed(
        out,
        named.filter((t) => t !== 'host'),
      );
}

/** The headers relayed to the client, from the origin's raw `Buffer` pairs (undici). */
export function egressResponseHeaders(raw: readonly Buffer[]): string[] {
  let named: string[] | null = null;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = headerName(name);
    const value = raw[i + 1]!.toString('latin1');
    if (lower === 'connection') named = connectionTokens(value, named);
    if (isHopByHop(lower)) continue;
    out.push(name, value);
  }
  return named === null ? out : withoutNamed(out, named);
}
