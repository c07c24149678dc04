/**
 * nginx's consistent hashing (`hash $key consistent`, ngx_http_upstream_hash_module.c) point for
 * point, so that a key keeps its target when an upstream moves from nginx to sluice (a cache
 * behind it stays warm):
 *
 * - each target is named by its `host:port` as configured, nginx's server address as written;
 *   a name owns 160 × weight points on a 32-bit ring (Cache::Memcached::Fast's ring): point j is
 *   CRC32(host "\0" port prev), prev being point j-1's hash as 4 little-endian bytes (0 for the
 *   first); a name without a port hashes an empty port. Points with equal hashes are kept once.
 * - a key goes to the first point at or after CRC32(key), wrapping around. Targets sharing a name
 *   (the addresses of a `resolve: true` entry) share its points; one of them is picked by smooth
 *   weighted round-robin, as nginx picks among a server's addresses.
 * - a point whose targets are all unusable passes the key to the next point; after 20 more
 *   points, and for an empty key, the pick is round-robin.
 *
 * Adding or removing one of N targets moves about 1/N of the keys. Lookup is a binary search,
 * O(log points); the ring is built once per balancer.
 */
import { crc32 } from 'node:zlib';
import type { Balancer, Peer, PickContext } from './balancer.js';
import { pickWeighted } from './weighted-round-robin.js';

const POINTS_PER_WEIGHT = 160;
/** Points tried after the key's own before falling back to round-robin (nginx `hp->tries > 20`). */
const MAX_NEXT = 20;

/** A point on the ring: its hash and the name that owns it. */
export interface RingPoint {
  readonly hash: number;
  readonly name: string;
}

/**
 * nginx's ring for names (`host:port`) and their weights, sorted by hash, equal hashes kept once.
 * Exported for tests, which check it against points nginx computes.
 */
export function nginxRing(servers: readonly { name: string; weight: number }[]): RingPoint[] {
  const points: RingPoint[] = [];
  const prev = Buffer.alloc(4);
  for (const { name, weight } of servers) {
    const base = crc32(ringBase(name));
    prev.writeUInt32LE(0);
    for (let j = 0; j < POINTS_PER_WEIGHT * weight; j++) {
      const hash = crc32(prev, base);
      points.push({ hash, name });
      prev.writeUInt32LE(hash);
    }
  }
  points.sort((a, b) => a.hash - b.hash);
  return points.filter((p, i) => i === 0 || p.hash !== points[i - 1]!.hash);
}

/**
 * `host "\0" port`: nginx takes as the port the digits after the last colon (none in `app` or
 * `[::1]`), and the rest as the host.
 */
function ringBase(name: string): Buffer {
  let j = name.length;
  while (j > 0 && name.charCodeAt(j - 1) >= 0x30 && name.charCodeAt(j - 1) <= 0x39) j--;
  const split = j > 0 && name[j - 1] === ':';
  const host = split ? name.slice(0, j - 1) : name;
  const port = split ? name.slice(j) : '';
  return Buffer.from(`${host}\0${port}`, 'latin1');
}

/** Consistent hashing over a list of peers. */
export class ConsistentHash<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];
  readonly #hashes: Uint32Array;
  /** The peers owning each point (one, or the addresses sharing a name). */
  readonly #owners: (readonly P[])[];

  constructor(peers: readonly P[]) {
    this.#peers = peers;
    const byName = new Map<string, P[]>();
    for (const peer of peers) {
      const group = byName.get(peer.hostPort);
      if (group === undefined) byName.set(peer.hostPort, [peer]);
      else group.push(peer);
    }
    const ring = nginxRing([...byName].map(([name, group]) => ({ name, weight: group[0]!.weight })));
    this.#hashes = Uint32Array.from(ring.map((p) => p.hash));
    this.#owners = ring.map((p) => byName.get(p.name)!);
  }

  pick(ctx: PickContext<P>): P | null {
    const n = this.#hashes.length;
    if (n === 0) return null;
    // An empty key (the variable is unset: a request without the header or cookie) is no key, as in
    // nginx: round-robin, rather than every such request on the one peer that owns CRC32('').
    if (ctx.key === '') return pickWeighted(this.#peers, ctx);
    let i = this.#firstAtOrAfter(crc32(ctx.key));
    for (let tries = 0; tries <= MAX_NEXT; tries++, i++) {
      const peer = pickWeighted(this.#owners[i % n]!, ctx);
      if (peer !== null) return peer;
    }
    return pickWeighted(this.#peers, ctx);
  }

  #firstAtOrAfter(hash: number): number {
    let lo = 0;
    let hi = this.#hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#hashes[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
