/** Listen addresses as written in the config (`8080`, `":8080"`, `"127.0.0.1:8080"`, `"[::1]:8080"`). */
import { isIP } from 'node:net';
import { canonicalIp } from '../core/ip-set.js';
import type { ListenAddress } from './types.js';

/** The IPv4 wildcard a bare port binds, as nginx's `listen 8080` does. */
export const IPV4_ANY = '0.0.0.0';
/** The IPv6 wildcard. */
export const IPV6_ANY = '::';

/** A host name: dot-separated labels of letters, digits and inner dashes (RFC 1123). */
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Parses one listen address; the error says what is wrong with it. */
export function parseListenAddress(input: string | number): ListenAddress | { error: string } {
  if (typeof input === 'number') return withPort(IPV4_ANY, String(input));
  if (/^\d+$/.test(input)) return withPort(IPV4_ANY, input);
  if (input.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(\d*)$/.exec(input);
    if (!m) return { error: `${JSON.stringify(input)} is not [IPV6]:PORT` };
    if (isIP(m[1]!) !== 6) return { error: `${JSON.stringify(m[1])} is not an IPv6 address` };
    const zone = zoneIdError(m[1]!);
    if (zone !== undefined) return { error: zone };
    // One spelling per address (`0:0::1` → `::1`), so the same socket has the same key. An
    // IPv4-mapped address (`[::ffff:127.0.0.1]`) takes only IPv4 connections to the address it
    // carries: it is that IPv4 address, so the overlap checks, the admin API's loopback rule and the
    // bound socket all see one address (as IPv6 it passed beside `127.0.0.1` and failed to bind).
    return withPort(canonicalIp(m[1]!)!, m[2]!);
  }
  const colon = input.lastIndexOf(':');
  if (colon === -1) return { error: `${JSON.stringify(input)} has no port; write HOST:PORT or :PORT` };
  const host = input.slice(0, colon);
  const port = input.slice(colon + 1);
  if (host.includes(':')) {
    return { error: `${JSON.stringify(input)}: an IPv6 address needs brackets, as in "[::1]:8080"` };
  }
  if (host === '' || host === '*') return withPort(IPV4_ANY, port);
  if (isIP(host) === 4) return withPort(host, port);
  if (/^[\d.]+$/.test(host)) return { error: `${JSON.stringify(host)} is not an IPv4 address` };
  if (!HOST_NAME.test(host)) return { error: `${JSON.stringify(host)} is not an IP address or host name` };
  return withPort(host.toLowerCase(), port);
}

/**
 * Refuses an IPv6 zone id (`fe80::1%eth0`): Node's isIP takes it, but the address would need the
 * zone in every key, URL and comparison (the URL parser refuses it). Listening on `[::]` serves
 * the link-local addresses of every interface too.
 */
function zoneIdError(address: string): string | undefined {
  const percent = address.indexOf('%');
  if (percent === -1) return undefined;
  return `${JSON.stringify(address)} has an IPv6 zone id (${JSON.stringify(address.slice(percent))}), which a listen address cannot have; listen on "[::]:PORT" to serve link-local addresses`;
}

function withPort(host: string, portText: string): ListenAddress | { error: string } {
  if (!/^\d{1,5}$/.test(portText)) {
    return { error: `${JSON.stringify(portText)} is not a port number` };
  }
  const port = Number(portText);
  // Port 0 asks the kernel for a free port: for tests and embedding, reported by addresses().
  if (port > 65535) return { error: `port ${port} is out of range 0-65535` };
  const key = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { host, port, key };
}

/**
 * Whether two different addresses cannot both be bound: a wildcard and a specific address of the
 * same family on the same port (`0.0.0.0:80` with `127.0.0.1:80` or `localhost:80`; `[::]:80`
 * with `[::1]:80`). `[::]` and `0.0.0.0` do not clash: IPv6 wildcards are bound IPv6-only, as
 * nginx does, so `listen: [":80", "[::]:80"]` serves both families. `localhost` clashes with
 * `127.0.0.1` and `[::1]` on the same port: it is bound as one of them.
 */
export function listenAddressesOverlap(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port || a.key === b.key) return false;
  const v6 = (x: ListenAddress): boolean => x.host.includes(':');
  if (a.host === IPV4_ANY) return !v6(b);
  if (b.host === IPV4_ANY) return !v6(a);
  if (a.host === IPV6_ANY) return v6(b);
  if (b.host === IPV6_ANY) return v6(a);
  // `localhost` is bound as the loopback address it resolves to: 127.0.0.1 or ::1.
  const loopback = (x: ListenAddress): boolean => x.host === '127.0.0.1' || x.host === '::1';
  if (a.host === 'localhost') return loopback(b);
  if (b.host === 'localhost') return loopback(a);
  return false;
}

/**
 * Whether `own`, the admin API's or the egress proxy's single address, cannot be bound beside
 * `other`: the same address, an overlap as above, or `[::]`, which those two bind dual stack (one
 * address serves IPv4 clients too) and so clashes with every address on its port, `0.0.0.0` and
 * `127.0.0.1` included.
 */
export function ownListenerClashes(own: ListenAddress, other: ListenAddress): boolean {
  if (own.port !== other.port) return false;
  return own.key === other.key || own.host === IPV6_ANY || listenAddressesOverlap(own, other);
}
