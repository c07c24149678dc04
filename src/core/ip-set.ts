/**
 * A set of CIDR blocks answering "is this address inside?", on Node's `net.BlockList` (native).
 * As in nginx's allow/deny, an IPv4 address is checked against the IPv4 blocks only and an IPv6
 * address against the IPv6 ones, and an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a
 * dual-stack listener reports) as the IPv4 address it carries. One BlockList for both families
 * matched IPv4 addresses against IPv6 blocks as `::ffff:a.b.c.d`, so `deny: "::/0"` ("no IPv6")
 * refused every IPv4 client and `trusted_proxies: ["::/0"]` trusted any IPv4 peer's X-Forwarded-For.
 */
import { BlockList, isIP } from 'node:net';

/** An IPv4-mapped IPv6 address, in any case. */
const MAPPED = /^::ffff:/i;

/** An immutable set of address blocks. */
export class IpSet {
  readonly #v4 = new BlockList();
  readonly #v6 = new BlockList();
  readonly size: number;

  /** Builds the set from validated CIDR texts (`10.0.0.0/8`, `::1/128`). */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const slash = cidr.indexOf('/');
      const net = slash === -1 ? cidr : cidr.slice(0, slash);
      const v6 = isIP(net) === 6;
      const prefix = slash === -1 ? (v6 ? 128 : 32) : Number(cidr.slice(slash + 1));
      if (v6) this.#v6.addSubnet(net, prefix, 'ipv6');
      else this.#v4.addSubnet(net, prefix, 'ipv4');
    }
    this.size = cidrs.length;
  }

  /** Whether `address` (plain, IPv4-mapped or IPv6) lies in one of the blocks of its family. */
  has(address: string): boolean {
    const family = isIP(address);
    if (family === 4) return this.#v4.check(address, 'ipv4');
    if (family !== 6) return false;
    // Peers and X-Forwarded-For entries come canonical (`::ffff:1.2.3.4`, dotted); the test
    // allocates nothing for the IPv6 addresses that are not mapped.
    if (MAPPED.test(address)) {
      const v4 = address.includes('.') ? address.slice(7) : canonicalIp(address);
      if (v4 !== null && isIP(v4) === 4) return this.#v4.check(v4, 'ipv4');
    }
    return this.#v6.check(address, 'ipv6');
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.indexOf('.') !== -1 ? address.slice(7) : address;
}

/**
 * An address as sluice keys bans, rate limits and logs by: IPv4 dotted, IPv6 in RFC 5952 form
 * (lower case, longest zero run as `::`), an IPv4-mapped IPv6 address as the IPv4 address it
 * carries; null when `text` is not an address (or has a zone id). Peer addresses come in this form
 * from Node already; X-Forwarded-For entries may be spelt any way, and `2001:DB8::77` had a bucket
 * (and a ban) of its own apart from `2001:db8::77`.
 */
export function canonicalIp(text: string): string | null {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6 || text.includes('%')) return null;
  // The URL parser writes IPv6 hosts in RFC 5952 form, and IPv4-mapped ones in hex (::ffff:102:304).
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const hi = Number.parseInt(mapped[1]!, 16);
  const lo = Number.parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * One X-Forwarded-For entry's address: a bare address, or one with a port as some load
 * balancers write it (`203.0.113.7:50312`, `[2001:db8::1]:443`), as nginx's realip reads them;
 * null when it is neither.
 */
function forwardedAddress(entry: string): string | null {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']');
    if (end === -1 || !PORT_SUFFIX.test(entry.slice(end + 1))) return null;
    return canonicalIp(entry.slice(1, end));
  }
  const colon = entry.indexOf(':');
  // One colon: IPv4 with a port; more: IPv6, whose colons are its own.
  if (colon !== -1 && colon === entry.lastIndexOf(':')) {
    if (!PORT_SUFFIX.test(entry.slice(colon))) return null;
    return canonicalIp(entry.slice(0, colon));
  }
  return canonicalIp(entry);
}

/** Nothing, or `:` and a port, after an address. */
const PORT_SUFFIX = /^(?::\d{1,5})?$/;

/**
 * The client address from an X-Forwarded-For chain sent by a trusted peer, as nginx's
 * `real_ip_recursive on`: the right-most address that is not itself a trusted proxy. Empty entries
 * (`1.2.3.4,,`) are skipped; an entry that is not an address ends the walk, as in nginx: the client
 * is the last address read (a trusted proxy's), or null when it is the right-most entry (the peer
 * stays the client).
 */
export function clientFromForwardedFor(chain: string, trusted: IpSet): string | null {
  const parts = chain.split(',');
  let leftmost: string | null = null;
  for (let i = parts.length - 1; i >= 0; i--) {
    const entry = parts[i]!.trim();
    if (entry === '') continue;
    const addr = forwardedAddress(entry);
    // nginx (ngx_http_get_forwarded_addr_internal) keeps the last address it parsed: the
    // nearest trusted proxy's entry when one came before, else nothing (the peer stays).
    if (addr === null) return leftmost;
    if (!trusted.has(addr)) return addr;
    leftmost = addr;
  }
  // Every entry a trusted proxy: the left-most is the client.
  return leftmost;
}
