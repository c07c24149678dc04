/**
 * How a listen address is served, fixed when its socket server is created: plain HTTP/1.1, TLS
 * with HTTP/1.1, or TLS with HTTP/2 and HTTP/1.1 (chosen per connection by ALPN). The servers
 * sharing an address decide together: all of them terminate TLS or none does (one socket cannot
 * be both), and HTTP/2 is offered on a TLS address as soon as one of its servers asks for it
 * (ALPN is settled in the handshake, as with nginx's `listen … http2`). `http2` on a plain address
 * is ignored: sluice serves HTTP/2 over TLS only.
 */
import type { ResolvedConfig, ResolvedServer } from '../config/types.js';
import { nameList } from '../core/name-list.js';
import { SluiceError } from '../errors/sluice-error.js';

/** The protocol setup of one listen address. */
export interface ListenerMode {
  readonly tls: boolean;
  readonly http2: boolean;
}

/** The mode of an address from the servers on it; throws SLUICE_E_RUNTIME_LISTEN when they disagree on TLS. */
export function listenerMode(addressKey: string, servers: readonly ResolvedServer[]): ListenerMode {
  const withTls = servers.filter((s) => s.tls !== null);
  if (withTls.length > 0 && withTls.length < servers.length) {
    const plain = servers.filter((s) => s.tls === null).map((s) => s.name);
    throw new SluiceError(
      'SLUICE_E_RUNTIME_LISTEN',
      `cannot listen on ${addressKey}: servers ${names(withTls.map((s) => s.name))} set tls but ${names(plain)} do not; the servers sharing a listen address must all use TLS or none`,
    );
  }
  const tls = withTls.length > 0;
  return { tls, http2: tls && servers.some((s) => s.http2) };
}

/** Whether a listener created for `a` can serve `b` (no new socket server needed). */
export function sameListenerMode(a: ListenerMode, b: ListenerMode): boolean {
  return a.tls === b.tls && a.http2 === b.http2;
}

/** Why `next` cannot be swapped into listeners created for `current`: one reason per changed address. */
export function listenerModeChanges(current: ResolvedConfig, next: ResolvedConfig): string[] {
  const before = modes(current);
  const reasons: string[] = [];
  for (const [key, mode] of modes(next)) {
    const old = before.get(key);
    if (old !== undefined && !sameListenerMode(old, mode)) {
      reasons.push(`${key}: ${describeMode(old)} → ${describeMode(mode)}`);
    }
  }
  return reasons;
}

/** The mode of every listen address of a config. */
export function modes(config: ResolvedConfig): Map<string, ListenerMode> {
  const byAddress = new Map<string, ResolvedServer[]>();
  for (const server of config.servers) {
    for (const address of server.listen)
      byAddress.set(address.key, [...(byAddress.get(address.key) ?? []), server]);
  }
  return new Map([...byAddress].map(([key, servers]) => [key, listenerMode(key, servers)]));
}

/** `plain HTTP/1.1`, `TLS` or `TLS with HTTP/2`. */
export function describeMode(mode: ListenerMode): string {
  return !mode.tls ? 'plain HTTP/1.1' : mode.http2 ? 'TLS with HTTP/2' : 'TLS';
}

function names(list: readonly string[]): string {
  return nameList(list.map((n) => JSON.stringify(n)));
}
