/**
 * Rate limiting by token bucket per (scope, key). Local buckets live in the worker; with
 * `state.redis` every take is one atomic Redis script, shared by every worker of every node, and
 * falls back to the local buckets the moment Redis does not answer.
 *
 * Local buckets are per worker: with N workers each refills at 1/N of the rate and holds 1/N of
 * the `burst + 1` tokens (`workerBurst`), so a client spread over the workers gets the configured
 * rate in total, and one pinned to a single keep-alive connection gets less. A worker's bucket
 * holds at least the one token a request needs: with burst + 1 < N the workers let up to N through
 * at once (burst 0 with 2 workers: 2), then the rate. Memory is bounded: full buckets (idle keys)
 * are swept every 10 s, and past 100 000 keys the least recently used go first (core/lru-map.ts),
 * so a client sending new keys cannot reset the buckets of those still sending.
 */
import type { ResolvedRateLimit } from '../config/types.js';
import { LruMap } from '../core/lru-map.js';
import { PREFIX, type SharedState } from './shared-state.js';
import { type Bucket, fullBucket, type TakeResult, take } from './token-bucket.js';

/** Keys a worker keeps buckets for: 36 MB measured with IPv6 addresses as keys (more for long ones). */
const MAX_KEYS = 100_000;
const SWEEP_MS = 10_000;

/** Takes a token for a request. */
export interface RateLimiter {
  take(scope: string, key: string, rule: ResolvedRateLimit): TakeResult | Promise<TakeResult>;
  close(): void;
}

/**
 * The burst of this worker's bucket when `workers` processes each keep one for the same clients:
 * the `burst + 1` tokens split evenly and rounded down, so the buckets add up to no more than
 * `burst + 1` (burst 2 over 2 workers: one token each, 2 at once in all), but never below the one
 * token a request needs: when burst + 1 < workers, up to `workers` get through at once.
 */
export function workerBurst(burst: number, workers: number): number {
  return Math.max(1, Math.floor((burst + 1) / workers)) - 1;
}

/** Buckets in this process. */
export class LocalRateLimiter implements RateLimiter {
  readonly #buckets = new LruMap<string, { bucket: Bucket; rule: ResolvedRateLimit }>(MAX_KEYS);
  readonly #workers: number;
  readonly #timer: NodeJS.Timeout;

  /** `workers`: how many processes keep buckets of their own for the same clients. */
  constructor(workers = 1) {
    this.#workers = workers;
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  take(scope: string, key: string, rule: ResolvedRateLimit, now = Date.now()): TakeResult {
    const id = `${scope}\n${key}`;
    const perSecond = rule.perSecond / this.#workers;
    const burst = workerBurst(rule.burst, this.#workers);
    let entry = this.#buckets.get(id);
    if (entry === undefined) {
      entry = { bucket: fullBucket(burst, now), rule };
      this.#buckets.set(id, entry);
    }
    return take(entry.bucket, perSecond, burst, now);
  }

  #sweep(now = Date.now()): void {
    for (const [id, { bucket, rule }] of this.#buckets) {
      const capacity = workerBurst(rule.burst, this.#workers) + 1;
      if (bucket.tokens + ((now - bucket.at) / 1000) * (rule.perSecond / this.#workers) >= capacity)
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

  /** `localWorkers`: as for LocalRateLimiter, for the buckets used while Redis is away. */
  constructor(state: SharedState, localWorkers: number) {
    this.#state = state;
    this.#local = new LocalRateLimiter(localWorkers);
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
