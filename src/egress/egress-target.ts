/**
 * The target of a forward-proxy request, parsed once from what the client sent: the
 * absolute-form URL of a plain HTTP request (`GET http://api.example.com/v1 HTTP/1.1`) or the
 * authority of a CONNECT (`CONNECT api.example.com:443`). The host is canonicalised by the WHATWG
 * URL host parser (lower case, IDNA to punycode, `127.1` → `127.0.0.1`, `[0::1]` → `[::1]`, no
 * trailing dot), so the name the policy checks is exactly the name the proxy connects to. A name
 * that DNS cannot carry (an empty label, a label over 63 octets, a name over 253, `*`) is refused
 * here, before any policy or lookup.
 */
import { isIP } from 'node:net';

/** Where a proxied request goes. */
export interface EgressTarget {
  /** As policies match it: a lower-case name, an IPv4 address, or a bracketed IPv6 address. */
  readonly host: string;
  /** As `net.connect` takes it: IPv6 without brackets. */
  readonly connectHost: string;
  readonly port: number;
}

/** The target of an absolute-form request, with what is sent to the origin. */
export interface AbsoluteTarget extends EgressTarget {
  /** `http://host:port`, the undici origin. */
  readonly origin: string;
  /** The path and query exactly as the client wrote them (never re-encoded or dot-resolved). */
  readonly path: string;
  /** The `Host` header for the origin (RFC 9112 3.2.2: the request target's authority). */
  readonly hostHeader: string;
}

/**
 * Why a request target was refused: `origin-form` (`GET /x`, not a proxy request at all),
 * `scheme` (`https://` and others: only `http://` is forwarded, HTTPS goes through CONNECT),
 * `invalid` (no host, a bad port, userinfo, characters the URL host parser refuses, a name that
 * is not a DNS name).
 */
export type TargetError = 'origin-form' | 'scheme' | 'invalid';

const ABSOLUTE = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/i;
const AUTHORITY = /^(\[[0-9a-f:.]+\]|[^\s/?#@[\]:]+)(?::(\d{1,5}))?$/i;

/** Parses `http://host[:port]/path?query` (the request target of an absolute-form request). */
export function parseAbsoluteTarget(url: string): AbsoluteTarget | { error: TargetError } {
  const m = ABSOLUTE.exec(url);
  if (m === null) return { error: url.startsWith('/') || url === '*' ? 'origin-form' : 'invalid' };
  if (m[1]!.toLowerCase() !== 'http') return { error: 'scheme' };
  const authority = parseAuthority(m[2]!, 80);
  if (authority === null) return { error: 'invalid' };
  const rest = m[3]!;
  const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
  const hostPort = authority.port === 80 ? authority.host : `${authority.host}:${authority.port}`;
  return { ...authority, origin: `http://${authority.host}:${authority.port}`, path, hostHeader: hostPort };
}

/** Parses the `host:port` of a CONNECT request; the port is required. */
export function parseConnectTarget(authority: string): EgressTarget | { error: TargetError } {
  if (authority.startsWith('/')) return { error: 'origin-form' };
  const target = parseAuthority(authority, null);
  return target ?? { error: 'invalid' };
}

/**
 * The canonical form of a host as written in a policy or a request (`[v6]` keeps its brackets),
 * or null when it is not a host: the URL parser refuses it, or it is a name DNS cannot carry.
 */
export function canonicalHost(host: string): string | null {
  // The URL parser reads `\` as `/` in http URLs: `a\b.com` was taken for the host `a`.
  if (host.includes('\\')) return null;
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname;
  } catch {
    return null;
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.startsWith('[') || isIP(name) === 4) return name;
  return isDnsName(name) ? name : null;
}

/**
 * A label of a name as resolvers take it, after IDNA: letters, digits, hyphens and underscores
 * (`_dmarc`, and names some services use), 1 to 63 octets (RFC 1035 2.3.4).
 */
const DNS_LABEL = /^[a-z0-9_-]{1,63}$/;

/**
 * Whether a lower-case ASCII name (the URL parser's, without its trailing dot) can be looked up.
 * The URL parser lets through empty labels (`.example.com`, `x..example.com`), labels and names
 * over the DNS limits and characters such as `*` or `$`: a wildcard policy matched them, and
 * they went on to DNS, which refused them with getaddrinfo EINVAL or ENOTFOUND.
 */
function isDnsName(name: string): boolean {
  // 253: the 255 octets of RFC 1035 2.3.4 in wire form are 253 written, without the trailing dot.
  if (name.length === 0 || name.length > 253) return false;
  for (const label of name.split('.')) if (!DNS_LABEL.test(label)) return false;
  return true;
}

function parseAuthority(text: string, defaultPort: number | null): EgressTarget | null {
  const m = AUTHORITY.exec(text);
  if (m === null) return null;
  const portText = m[2];
  const port = portText === undefined ? defaultPort : Number(portText);
  if (port === null || port < 1 || port > 65535) return null;
  const host = canonicalHost(m[1]!);
  if (host === null) return null;
  return { host, connectHost: host.startsWith('[') ? host.slice(1, -1) : host, port };
}
