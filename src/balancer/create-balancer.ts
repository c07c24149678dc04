/** The registry of balancing algorithms: `balance:` names to implementations. */
import type { BalanceKind } from '../config/types.js';
import { assertNever } from '../core/assert-never.js';
import type { Balancer, Peer } from './balancer.js';
import { ConsistentHash } from './consistent-hash.js';
import { IpHash } from './ip-hash.js';
import { LeastConn } from './least-conn.js';
import { RandomTwo } from './random-two.js';
import { WeightedRoundRobin } from './weighted-round-robin.js';

/** Creates the balancer named by `balance:` over `peers`. */
export function createBalancer<P extends Peer>(kind: BalanceKind, peers: readonly P[]): Balancer<P> {
  switch (kind) {
    case 'round_robin':
      return new WeightedRoundRobin(peers);
    case 'least_conn':
      return new LeastConn(peers);
    case 'ip_hash':
      return new IpHash(peers);
    case 'hash':
      return new ConsistentHash(peers);
    case 'random':
      return new RandomTwo(peers);
    default:
      return assertNever(kind, 'balance');
  }
}
