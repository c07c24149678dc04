/**
 * Rate limiting by token bucket per (scope, key). Local buckets live in the worker; with
 * `state.redis` every take is one atomic Redis script, shared by every worker of every node, and
 * falls back to the local buckets the moment Redis does not answer.
 *
 * Local buckets are per worker: with N workers each gets 1/N of the rate and burst (`share`), so
 * a client spread over the workers gets the configured rate in total, and one pinned to a single
 * keep-alive connection gets less, never more. Memory is bounded: full buckets (idle keys) are
 * swept every 10 s, and past 100 000 keys the table is cleared (failing open) rather than grown.
 */
import type { ResolvedRateLimit } from '../config/types.js';
import { PREFIX, type SharedState } from './shared-state.js';
import { type Bucket, fullBucket, type TakeResult, take } from './token-bucket.js';

const MAX_KEYS = 100_000;
const SWEEP_MS = 10_000;

/** Takes a token for a request. */
export interface RateLimiter {
  take(scope: string, key: string, rule: ResolvedRateLimit): TakeResult | Promise<TakeResult>;
  close(): void;
}

/** Buckets in this process. */
export class LocalRateLimiter implements RateLimiter {
  readonly #buckets = new Map<string, { bucket: Bucket; rule: ResolvedRateLimit }>();
  readonly #share: number;
  readonly #timer: NodeJS.Timeout;

  /** `share`: this process's part of the configured rate (1 / workers). */
  constructor(share = 1) {
    this.#share = share;
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  take(scope: string, key: string, rule: ResolvedRateLimit, now = Date.now()): TakeResult {
    const id = `${scope}\n${key}`;
    const perSecond = rule.perSecond * this.#share;
    const burst = Math.floor(rule.burst * this.#share);
    let entry = this.#buckets.get(id);
    if (entry === undefined) {
      if (this.#buckets.size >= MAX_KEYS) this.#buckets.clear();
      entry = { bucket: fullBucket(burst, now), rule };
      this.#buckets.set(id, entry);
    }
    return take(entry.bucket, perSecond, burst, now);
  }

  #sweep(now = Date.now()): void {
    for (const [id, { bucket, rule }] of this.#buckets) {
      const capacity = Math.floor(rule.burst * this.#share) + 1;
      if (bucket.tokens + ((now - bucket.at) / 1000) * rule.perSecond * this.#share >= capacity)
        this.#buckets.delete(id);
    }
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** Buckets in Redis, with the local ones as the fallback. */
export class SharedRateLimiter implements RateLimiter {
  readonly #state: SharedState;
  readonly #local: LocalRateLimiter;

  constructor(state: SharedState, localShare: number) {
    this.#state = state;
    this.#local = new LocalRateLimiter(localShare);
  }

  take(scope: string, key: string, rule: ResolvedRateLimit): TakeResult | Promise<TakeResult> {
    if (!this.#state.up) return this.#local.take(scope, key, rule);
    const capacity = rule.burst + 1;
    return this.#state.take(`${PREFIX}rl:${encodeURIComponent(scope)}:${key}`, rule.perSecond, capacity).then(
      ([allowed, left]) => {
        const tokens = Number(left);
        return {
          allowed: allowed === 1,
          remaining: Math.floor(tokens),
          retryAfter: allowed === 1 ? 0 : Math.ceil((1 - tokens) / rule.perSecond),
          reset: Math.ceil((capacity - tokens) / rule.perSecond),
          limit: capacity,
        };
      },
      () => this.#local.take(scope, key, rule),
    );
  }

  close(): void {
    this.#local.close();
  }
}
