/**
 * nginx's `ip_hash` (`ngx_http_upstream_get_ip_hash_peer`): the first three octets of an IPv4
 * client address, or the whole IPv6 address, are hashed (`h = (h * 113 + byte) % 6271` from 89)
 * onto the peers' weight line. Down peers keep their slot, so other clients do not move; an
 * unusable peer rehashes, and after 20 rehashes the pick falls back to round-robin.
 */
import { ipBytes } from '../core/ip-bytes.js';
import type { Balancer, Peer, PickContext } from './balancer.js';
import { pickWeighted } from './weighted-round-robin.js';

const MAX_REHASH = 20;

/** Client-address affinity over a list of peers. */
export class IpHash<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];
  readonly #totalWeight: number;

  constructor(peers: readonly P[]) {
    this.#peers = peers;
    this.#totalWeight = peers.reduce((sum, p) => sum + p.weight, 0);
  }

  pick(ctx: PickContext<P>): P | null {
    const bytes = ipBytes(ctx.key);
    const length = bytes.length === 4 ? 3 : bytes.length;
    let hash = 89;
    for (let tries = 0; tries < MAX_REHASH; tries++) {
      for (let i = 0; i < length; i++) hash = (hash * 113 + bytes[i]!) % 6271;
      const peer = this.slot(hash % this.#totalWeight);
      if (ctx.usable(peer)) return peer;
    }
    return pickWeighted(this.#peers, ctx);
  }

  /** The peer owning position `w` on the weight line (each peer holds `weight` positions). */
  private slot(w: number): P {
    let rest = w;
    for (const peer of this.#peers) {
      if (rest < peer.weight) return peer;
      rest -= peer.weight;
    }
    return this.#peers[this.#peers.length - 1]!;
  }
}
