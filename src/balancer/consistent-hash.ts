/**
 * Ketama-style consistent hashing (nginx `hash $key consistent`): every peer owns 160 × weight
 * points on a 32-bit ring (CRC32 of its origin and the point number); a key goes to the first
 * point at or after CRC32(key). Adding or removing one of N peers moves about 1/N of the keys.
 * An unusable peer passes the key on to the next point; after 20 points the pick falls back to
 * round-robin, as does an empty key. Lookup is a binary search: O(log points).
 */
import { crc32 } from 'node:zlib';
import type { Balancer, Peer, PickContext } from './balancer.js';
import { pickWeighted } from './weighted-round-robin.js';

const POINTS_PER_WEIGHT = 160;
const MAX_NEXT = 20;

/** Consistent hashing over a list of peers. */
export class ConsistentHash<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];
  readonly #hashes: Uint32Array;
  readonly #owners: P[];

  constructor(peers: readonly P[]) {
    this.#peers = peers;
    const points: { hash: number; peer: P }[] = [];
    for (const peer of peers) {
      for (let i = 0; i < POINTS_PER_WEIGHT * peer.weight; i++)
        points.push({ hash: crc32(`${peer.origin}#${i}`), peer });
    }
    points.sort((a, b) => a.hash - b.hash);
    this.#hashes = Uint32Array.from(points.map((p) => p.hash));
    this.#owners = points.map((p) => p.peer);
  }

  pick(ctx: PickContext<P>): P | null {
    const n = this.#hashes.length;
    if (n === 0) return null;
    // An empty key (the variable is unset: a request without the header or cookie) is no key, as in
    // nginx: round-robin, rather than every such request on the one peer that owns CRC32('').
    if (ctx.key === '') return pickWeighted(this.#peers, ctx);
    let i = this.#firstAtOrAfter(crc32(ctx.key));
    for (let tries = 0; tries < MAX_NEXT; tries++, i++) {
      const peer = this.#owners[i % n]!;
      if (ctx.usable(peer)) return peer;
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
