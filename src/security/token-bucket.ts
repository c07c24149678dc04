/**
 * A token bucket: `perSecond` tokens added continuously, up to `burst + 1`; a request takes one.
 * With burst 0 requests are let through one per 1/rate seconds; `burst: 20` lets 20 more through
 * at once, as nginx's `limit_req ... burst=20 nodelay`. Pure, with an explicit clock (ms).
 */

/** The state of one bucket. */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

/** The outcome of taking a token. */
export interface TakeResult {
  readonly allowed: boolean;
  /** Tokens left after this request (whole). */
  readonly remaining: number;
  /** Seconds until a token is available (0 when allowed). */
  readonly retryAfter: number;
  /** Seconds until the bucket is full again. */
  readonly reset: number;
  /** The bucket size. */
  readonly limit: number;
}

/** Takes one token from `bucket` at `now`. */
export function take(bucket: Bucket, perSecond: number, burst: number, now: number): TakeResult {
  const capacity = burst + 1;
  const elapsed = Math.max(0, now - bucket.at) / 1000;
  bucket.tokens = Math.min(capacity, bucket.tokens + elapsed * perSecond);
  bucket.at = now;
  const allowed = bucket.tokens >= 1;
  if (allowed) bucket.tokens -= 1;
  return {
    allowed,
    remaining: Math.floor(bucket.tokens),
    retryAfter: allowed ? 0 : Math.ceil((1 - bucket.tokens) / perSecond),
    reset: Math.ceil((capacity - bucket.tokens) / perSecond),
    limit: capacity,
  };
}

/** A new, full bucket. */
export function fullBucket(burst: number, now: number): Bucket {
  return { tokens: burst + 1, at: now };
}
