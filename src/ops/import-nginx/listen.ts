/**
 * nginx `listen` → a sluice listen address and the flags that matter to sluice. nginx writes
 * `80`, `*:80`, `127.0.0.1`, `127.0.0.1:8080`, `[::]:80`, `localhost:8080`; sluice writes
 * `":80"`, `"127.0.0.1:8080"`, `"[::]:80"`. A missing port is 80, as in nginx.
 */
import { parseListenAddress } from '../../config/listen-address.js';
import type { ListenAddress } from '../../config/types.js';

/** A converted `listen`. */
export interface ListenPlan {
  /** As sluice writes it: `":80"`, `"[::]:443"`, `"127.0.0.1:8080"`. */
  readonly text: string;
  readonly address: ListenAddress;
  readonly ssl: boolean;
  readonly http2: boolean;
  readonly isDefault: boolean;
  /** `backlog=N`, which sluice has per server (`limits.backlog`). */
  readonly backlog: number | undefined;
  /**
   * `[::]:PORT ipv6only=off`: nginx binds one socket for both families. sluice binds `[::]`
   * IPv6-only, so the caller adds the IPv4 wildcard of the same port beside it.
   */
  readonly dualStack: boolean;
  /** Parameters with no sluice equivalent, as written. */
  readonly dropped: readonly string[];
}

/** Listen parameters that only tune the socket and that sluice sets for itself. */
const SOCKET_TUNING =
  /^(reuseport|deferred|bind|ipv6only=on|so_keepalive=.*|fastopen=.*|rcvbuf=.*|sndbuf=.*|accept_filter=.*|setfib=.*)$/;

/** Parses the arguments of one `listen`; the error says why it cannot be carried over. */
export function parseListen(args: readonly string[]): ListenPlan | { error: string } {
  const [spec, ...params] = args;
  if (spec === undefined) return { error: 'listen needs an address' };
  if (spec.startsWith('unix:')) return { error: `sluice listens on TCP only, not on ${spec}` };
  const text = sluiceAddress(spec);
  if (text === null) return { error: `${JSON.stringify(spec)} is not an address sluice can listen on` };
  const address = parseListenAddress(text);
  if ('error' in address) return { error: address.error };
  let ssl = false;
  let http2 = false;
  let isDefault = false;
  let backlog: number | undefined;
  let dualStack = false;
  const dropped: string[] = [];
  for (const p of params) {
    if (p === 'ssl') ssl = true;
    else if (p === 'http2') http2 = true;
    else if (p === 'default_server' || p === 'default') isDefault = true;
    else if (/^backlog=\d+$/.test(p)) backlog = Number(p.slice('backlog='.length));
    // Only the IPv6 wildcard takes IPv4 connections with ipv6only=off; on any other address it does nothing.
    else if (p === 'ipv6only=off') dualStack = address.host === '::';
    else if (!SOCKET_TUNING.test(p)) dropped.push(p);
  }
  return { text, address, ssl, http2, isDefault, backlog, dualStack, dropped };
}

/** The IPv4 side of a dual-stack `[::]:PORT ipv6only=off`: `:PORT` with the same parameters. */
export function ipv4Side(plan: ListenPlan): ListenPlan | null {
  const text = `:${plan.address.port}`;
  const address = parseListenAddress(text);
  if ('error' in address) return null;
  return { ...plan, text, address, dualStack: false, dropped: [] };
}

/** The sluice spelling of an nginx address, or `null` when it has none. */
function sluiceAddress(spec: string): string | null {
  if (/^\d+$/.test(spec)) return `:${spec}`;
  if (spec === '*') return ':80';
  if (spec.startsWith('[')) {
    const m = /^(\[[^\]]+\])(?::(\d+))?$/.exec(spec);
    return m ? `${m[1]}:${m[2] ?? '80'}` : null;
  }
  const m = /^([^:]+)(?::(\d+))?$/.exec(spec);
  if (!m) return null;
  const host = m[1] === '*' ? '' : m[1]!;
  return `${host}:${m[2] ?? '80'}`;
}
