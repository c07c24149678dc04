/**
 * Power of two random choices (nginx `random two least_conn`): draw two usable peers at random,
 * weighted by weight, and take the one with fewer requests in flight relative to its weight. As
 * good as least_conn at spreading load, without its O(peers) scan or its herd behaviour when many
 * workers see the same counts. Falls back to round-robin when 20 draws find nothing usable.
 * Unlike nginx, which draws two different peers and on a tie takes the second (3:1 weights, idle:
 * 75 % to the lighter peer), the draws may coincide and a tie keeps the first: unloaded traffic
 * follows the weights.
 */
import type { Balancer, Peer, PickContext } from './balancer.js';
import { pickWeighted } from './weighted-round-robin.js';

const MAX_DRAWS = 20;

/** Two random choices over a list of peers; `random` is injectable for tests. */
export class RandomTwo<P extends Peer> implements Balancer<P> {
  readonly #peers: readonly P[];
  readonly #cumulative: number[];
  readonly #random: () => number;

  constructor(peers: readonly P[], random: () => number = Math.random) {
    this.#peers = peers;
    let sum = 0;
    this.#cumulative = peers.map((p) => {
      sum += p.weight;
      return sum;
    });
    this.#random = random;
  }

  pick(ctx: PickContext<P>): P | null {
    const a = this.#draw(ctx);
    if (a === null) return pickWeighted(this.#peers, ctx);
    const b = this.#draw(ctx);
    if (b === null || b === a) return a;
    return b.conns * a.weight < a.conns * b.weight ? b : a;
  }

  #draw(ctx: PickContext<P>): P | null {
    const total = this.#cumulative[this.#cumulative.length - 1] ?? 0;
    for (let tries = 0; tries < MAX_DRAWS; tries++) {
      const r = this.#random() * total;
      let lo = 0;
      let hi = this.#cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.#cumulative[mid]! <= r) lo = mid + 1;
        else hi = mid;
      }
      const peer = this.#peers[lo];
      if (peer !== undefined && ctx.usable(peer)) return peer;
    }
    return null;
  }
}
