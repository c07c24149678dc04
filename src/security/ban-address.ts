/**
 * What `DELETE /api/bans/{address}` takes: a client address, or the IPv6 /64 network a
 * `per: network` rule bans (`2001:db8:1:2::/64`), both in the canonical form bans are kept under.
 */
import { isIPv6 } from 'node:net';
import { clientNetwork } from '../core/client-network.js';
import { canonicalIp } from '../core/ip-set.js';

/**
 * The canonical form of an address or IPv6 /64 that can be banned, or null for anything else. Any
 * other text was answered 200 `lifted: 0`, so a typo read as "not banned" (and `*` was once taken
 * as a pattern).
 */
export function banAddress(text: string): string | null {
  const ip = canonicalIp(text);
  if (ip !== null) return ip;
  if (!text.endsWith('/64')) return null;
  const prefix = text.slice(0, -3);
  if (!isIPv6(prefix)) return null;
  const network = canonicalIp(prefix);
  if (network === null || network.includes('.')) return null;
  // Bans are kept under the network with its host bits cleared; `2001:db8:1:2:3::/64` names the
  // same /64 and was answered lifted: 0.
  return clientNetwork(network);
}
