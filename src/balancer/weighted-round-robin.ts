/**
 * nginx's smooth weighted round-robin (`ngx_http_upstream_get_peer`): on each pick every eligible
 * peer adds its effective weight to its current weight; the peer with the largest current weight
 * wins and has the total subtracted. Weights 5/1/1 give `a a b a c a a`: interleaved, not bursty.
 * O(peers) per pick, no allocation.
 */

/** The per-peer state the algorithm keeps. */
export interface WeightedPeer {
  readonly weight: number;
  /** Starts at `weight`; lowered by failures (see health), climbs back by 1 per pick. */
  effectiveWeight: number;
  currentWeight: number;
}

/** Creates the algorithm state for a peer of the given weight. */
export function weightedPeer(weight: number): WeightedPeer {
  return { weight, effectiveWeight: weight, currentWeight: 0 };
}

/** Picks one of `peers` for which `eligible` holds, or `null` when none is eligible. */
export function pickWeighted<P extends WeightedPeer>(
  peers: readonly P[],
  eligible: (peer: P) => boolean,
): P | null {
  let best: P | null = null;
  let total = 0;
  for (const peer of peers) {
    if (!eligible(peer)) continue;
    peer.currentWeight += peer.effectiveWeight;
    total += peer.effectiveWeight;
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
    if (best === null || peer.currentWeight > best.currentWeight) best = peer;
  }
  if (best !== null) best.currentWeight -= total;
  return best;
}
