/**
 * The balancer contract: given the peers of one group (the primaries, or the backups), pick one
 * that may take this request. Which peers may is decided by the caller (tried for this request,
 * down, failed, full, draining); the balancer only decides among them, and keeps its own state.
 */

/** What every balancer sees of a target. */
export interface Peer {
  /** Configured weight, 1–1000. */
  readonly weight: number;
  /** Smooth weighted round-robin state (nginx `effective_weight`, `current_weight`). */
  effectiveWeight: number;
  currentWeight: number;
  /** Requests (and tunnels) in flight to this peer from this worker. */
  conns: number;
  /**
   * The `host:port` as configured (the DNS name's for the addresses of a `resolve: true` entry):
   * the name consistent hashing places on its ring, as nginx places a server's address.
   */
  readonly hostPort: string;
}

/** The request being balanced. */
export interface PickContext<P extends Peer> {
  /** Whether `peer` may take this request. */
  usable(peer: P): boolean;
  /** `ip_hash`: the client address; `hash`: the evaluated `hash_key`; otherwise ''. */
  readonly key: string;
}

/** One balancing algorithm over a fixed list of peers. */
export interface Balancer<P extends Peer> {
  /** A usable peer, or null when none may take the request. */
  pick(ctx: PickContext<P>): P | null;
}

/** Resets the smooth weighted round-robin state of a peer (new or re-enabled). */
export function resetWeights(peer: Peer): void {
  peer.effectiveWeight = peer.weight;
  peer.currentWeight = 0;
}
