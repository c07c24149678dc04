/**
 * A set of CIDR blocks answering "is this address inside?", on Node's `net.BlockList` (native,
 * IPv4 and IPv6). IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, what a dual-stack listener
 * reports) are checked as the IPv4 address they carry.
 */
import { BlockList, isIP } from 'node:net';

/** An immutable set of address blocks. */
export class IpSet {
  readonly #list = new BlockList();
  readonly size: number;

  /** Builds the set from validated CIDR texts (`10.0.0.0/8`, `::1/128`). */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const slash = cidr.indexOf('/');
      const net = slash === -1 ? cidr : cidr.slice(0, slash);
      const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
      const prefix = slash === -1 ? (family === 'ipv6' ? 128 : 32) : Number(cidr.slice(slash + 1));
      this.#list.addSubnet(net, prefix, family);
    }
    this.size = cidrs.length;
  }

  /** Whether `address` (plain, IPv4-mapped or IPv6) lies in one of the blocks. */
  has(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.indexOf('.') !== -1 ? address.slice(7) : address;
}

/**
 * The client address from an X-Forwarded-For chain sent by a trusted peer, as nginx's
 * `real_ip_recursive on`: the right-most address that is not itself a trusted proxy.
 */
export function clientFromForwardedFor(chain: string, trusted: IpSet): string | null {
  const parts = chain.split(',');
  for (let i = parts.length - 1; i >= 0; i--) {
    const addr = unmapIpv4(parts[i]!.trim());
    if (isIP(addr) === 0) return null;
    if (!trusted.has(addr) || i === 0) return addr;
  }
  return null;
}
