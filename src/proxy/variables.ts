/**
 * Runtime side of `$variables` in header values and redirect targets: a template parsed once at
 * config load is compiled here into a function, so a request evaluates only the variables it
 * uses and constant values cost nothing.
 */
import type { TemplatePart } from '../config/template.js';
import { clientNetwork } from '../core/client-network.js';

/** What a template can read from the request being served. */
export interface VariableSource {
  /** Client address (after `trusted_proxies`), IPv4-mapped IPv6 unwrapped. */
  readonly remoteAddr: string;
  /** Host name without port, lower-case (nginx `$host`). */
  readonly hostName: string;
  readonly scheme: string;
  readonly requestId: string;
  /** The original request target with its query string (nginx `$request_uri`). */
  readonly requestUri: string;
  /** The query string with its `?`, or '' (nginx `$is_args$args`). */
  readonly query: string;
  /** The X-Forwarded-For value sent upstream (incoming chain plus the peer, when trusted). */
  readonly forwardedFor: string;
  /** The SPIFFE id of the client's verified TLS certificate, '' when none (read lazily: only templates that use it pay). */
  readonly clientSpiffeId: string;
  /** First value of a request header by lower-case name. */
  header(lowerName: string): string | undefined;
}

/** A compiled template. */
export type Template = (src: VariableSource) => string;

/** Compiles parsed parts; a template without variables becomes a constant. */
export function compileTemplate(parts: readonly TemplatePart[]): Template {
  const getters = parts.map((p) => (typeof p === 'string' ? p : variableGetter(p.variable)));
  if (getters.every((g) => typeof g === 'string')) {
    const constant = (getters as string[]).join('');
    return () => constant;
  }
  if (getters.length === 1) return getters[0] as Template;
  return (src) => {
    let out = '';
    for (const g of getters) out += typeof g === 'string' ? g : g(src);
    return out;
  };
}

function variableGetter(name: string): Template {
  switch (name) {
    case 'remote_addr':
      return (s) => s.remoteAddr;
    case 'remote_net':
      return (s) => clientNetwork(s.remoteAddr);
    case 'host':
      return (s) => s.hostName;
    case 'scheme':
      return (s) => s.scheme;
    case 'request_id':
      return (s) => s.requestId;
    case 'request_uri':
      return (s) => s.requestUri;
    case 'args':
      return (s) => s.query.slice(1);
    case 'is_args':
      return (s) => (s.query === '' ? '' : '?');
    case 'proxy_add_x_forwarded_for':
      return (s) => s.forwardedFor;
    case 'client_spiffe_id':
      return (s) => s.clientSpiffeId;
    default: {
      if (name.startsWith('http_')) {
        const header = name.slice(5).replaceAll('_', '-');
        return (s) => s.header(header) ?? '';
      }
      // Config validation rejects unknown variables; reaching here is a programming error.
      throw new Error(`unknown variable $${name}`);
    }
  }
}
