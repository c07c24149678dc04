/** `trusted_proxies` entries: an IPv4/IPv6 address or CIDR block, normalised to CIDR text. */
import { isIP } from 'node:net';
import { canonicalIp } from '../core/ip-set.js';

/** `10.0.0.1` → `10.0.0.1/32`, `fd00::/8` → `fd00::/8`; the error says what is wrong. */
export function normaliseCidr(text: string): { cidr: string } | { error: string } {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  // Node's BlockList drops a zone id: `fe80::1%eth0` would match fe80::1 on every interface.
  const percent = address.indexOf('%');
  if (family === 6 && percent !== -1) {
    return {
      error: `${JSON.stringify(address)} has an IPv6 zone id (${JSON.stringify(address.slice(percent))}), but rules apply on every interface; write the address without it`,
    };
  }
  if (family === 0) return { error: `${JSON.stringify(address)} is not an IP address` };
  const max = family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > max) {
    return { error: `${JSON.stringify(prefixText)} is not a prefix length for IPv${family} (0-${max})` };
  }
  // Clients are matched as the IPv4 address an IPv4-mapped one carries, against IPv4 blocks only
  // (ip-set.ts): a mapped block is written as the IPv4 block it covers, or it would match nothing.
  const mapped = family === 6 ? canonicalIp(address) : null;
  if (mapped !== null && isIP(mapped) === 4) {
    if (prefix < 96) {
      return {
        error: `${JSON.stringify(text)} covers more than the IPv4-mapped addresses (::ffff:0:0/96); write the IPv4 block, e.g. 0.0.0.0/0, and the IPv6 one apart`,
      };
    }
    return { cidr: `${mapped}/${prefix - 96}` };
  }
  return { cidr: `${address.toLowerCase()}/${prefix}` };
}
