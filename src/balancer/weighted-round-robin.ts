/**
 * nginx's smooth weighted round-robin (`ngx_http_upstream_get_peer`): on each pick every usable
 * peer adds its effective weight to its current weight; the peer with the largest current weight
 * wins and has the total subtracted. Weights 5/1/1 give `a a b a c a a`: interleaved, not bursty.
 * The effective weight, lowered by failures, climbs back by 1 each time the peer is considered.
 * O(peers) per pick, no allocation.
 */
import type { Balancer, Peer, PickContext } from './balancer.js';

/** Smooth weighted round-robin over a list of peers. */
export class WeightedRoundRobin<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];

  constructor(peers: readonly P[]) {
    this.#peers = peers;
  }

  pick(ctx: PickContext<P>): P | null {
    return pickWeighted(this.#peers, ctx);
  }
}

/** One smooth weighted round-robin step over `peers`; also the fallback of the hash balancers. */
export function pickWeighted<P extends Peer>(peers: readonly P[], ctx: PickContext<P>): P | null {
  let best: P | null = null;
  let total = 0;
  for (const peer of peers) {
    if (!ctx.usable(peer)) continue;
    peer.currentWeight += peer.effectiveWeight;
    total += peer.effectiveWeight;
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
    if (best === null || peer.currentWeight > best.currentWeight) best = peer;
  }
  if (best !== null) best.currentWeight -= total;
  return best;
}
