/**
 * The network a client address stands for, for limits and bans that should hold against address
 * rotation: an IPv4 address is itself; an IPv6 address stands for its /64, the block one subscriber
 * gets (RFC 6177), within which a client picks any address it likes (privacy addresses change
 * daily, and an attacker can rotate per request). Written in RFC 5952 form: `2001:db8:1:2::/64`.
 */
import { isIPv6 } from 'node:net';
import { ipBytes } from './ip-bytes.js';
import { unmapIpv4 } from './ip-set.js';

/** Networks already written, by address: a client makes many requests (bounded like headerName's). */
const MAX_CACHED = 4096;
const cache = new Map<string, string>();

/** `address` itself for IPv4 (also IPv4-mapped IPv6, or anything not IPv6); its /64 network for IPv6. */
export function clientNetwork(address: string): string {
  // No colon, no IPv6: the common IPv4 case costs one scan.
  if (!address.includes(':')) return address;
  let network = cache.get(address);
  if (network === undefined) {
    const v4 = unmapIpv4(address);
    network = v4 !== address ? v4 : isIPv6(address) ? ipv6Network64(address) : address;
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(address, network);
  }
  return network;
}

function ipv6Network64(address: string): string {
  const b = ipBytes(address);
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // The URL parser writes IPv6 hosts in RFC 5952 form (lower case, longest zero run as ::).
  const compact = new URL(`http://[${groups.join(':')}::]/`).hostname.slice(1, -1);
  return `${compact}/64`;
}
