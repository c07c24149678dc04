/**
 * nginx's weighted `least_conn` (`ngx_http_upstream_get_least_conn_peer`): the usable peer with
 * the fewest requests in flight relative to its weight (`conns / weight`, compared by cross
 * multiplication); several tied peers are chosen among by smooth weighted round-robin.
 * O(peers) per pick.
 */
import type { Balancer, Peer, PickContext } from './balancer.js';

/** Weighted least-connections over a list of peers. */
export class LeastConn<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];

  constructor(peers: readonly P[]) {
    this.#peers = peers;
  }

  pick(ctx: PickContext<P>): P | null {
    const peers = this.#peers;
    let best: P | null = null;
    let bestIndex = -1;
    let many = false;
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[i]!;
      if (!ctx.usable(peer)) continue;
      if (best === null || peer.conns * best.weight < best.conns * peer.weight) {
        best = peer;
        bestIndex = i;
        many = false;
      } else if (peer.conns * best.weight === best.conns * peer.weight) {
        many = true;
      }
    }
    if (best === null || !many) return best;
    // Ties: smooth weighted round-robin among the peers with the least load.
    const least = best;
    let total = 0;
    for (let i = bestIndex; i < peers.length; i++) {
      const peer = peers[i]!;
      if (!ctx.usable(peer) || peer.conns * least.weight !== least.conns * peer.weight) continue;
      peer.currentWeight += peer.effectiveWeight;
      total += peer.effectiveWeight;
      if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
      if (peer.currentWeight > best.currentWeight) best = peer;
    }
    best.currentWeight -= total;
    return best;
  }
}
