/**
 * What the gateway asks of the security services on a request: is the client banned, may it take
 * a rate-limit token, and (after the answer) does this answer count towards a ban. Implemented by
 * the runtime: bans pushed from the node's ban manager, buckets local or in Redis.
 */

import type { ResolvedRateLimit } from '../config/types.js';
import type { TakeResult } from './token-bucket.js';

/** The security services of one process. */
export interface GuardServices {
  banned(scope: string, address: string): boolean;
  take(scope: string, key: string, rule: ResolvedRateLimit): TakeResult | Promise<TakeResult>;
  /** Reports an answer a ban rule lists. */
  strike(scope: string, address: string): void;
}
