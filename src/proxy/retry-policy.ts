/**
 * Whether a failed attempt goes on to the next target: nginx's `proxy_next_upstream` rules
 * (BEHAVIOUR.md section 2) as one pure decision, tested for every method × failure × state.
 *
 * 1. Never once a response byte went to the client.
 * 2. Never when a streamed request body was (partly) sent: it cannot be replayed.
 * 3. POST, LOCK and PATCH: never once sent, unless `non_idempotent`.
 * 4. A connection error on a reused idle keep-alive connection is the keep-alive race (the
 *    target closed the socket as the request went out): retried on a fresh connection to the same
 *    target without using a try, up to 2 times.
 * 5. Otherwise only for the conditions listed in `retry.on`, within `tries` (and one try per
 *    target not configured down, as nginx's `peer.tries`) and `timeout`.
 *
 * Each target is tried at most once per request; that is the caller's bookkeeping.
 */
import type { ResolvedRetry, RetryCondition } from '../config/types.js';

/** How an attempt failed. */
export type AttemptFailure =
  | { readonly kind: 'error' | 'timeout' | 'invalid_header' }
  | { readonly kind: 'status'; readonly status: number };

/** What is known about the request when an attempt fails. */
export interface AttemptFacts {
  readonly method: string;
  readonly failure: AttemptFailure;
  /** The request started being written to the target. */
  readonly sent: boolean;
  /** The failed connection was a reused idle keep-alive one. */
  readonly reusedConnection: boolean;
  /** A response byte already went to the client. */
  readonly responseStarted: boolean;
  /** The request body can be sent again (no body, or a buffered one). */
  readonly replayable: boolean;
  /** Attempts counted against `tries` so far, this one included. */
  readonly attempts: number;
  /** The upstream's targets not configured `down`: one try each at most (nginx's `peer.tries`). */
  readonly targets: number;
  /** Since the first attempt, ms. */
  readonly elapsedMs: number;
  /** Keep-alive race retries already made. */
  readonly staleRetries: number;
}

/** `retry`: to another target; `retry_stale`: again, without using a try; `stop`: answer now. */
export type RetryDecision = 'retry' | 'retry_stale' | 'stop';

/** Keep-alive race retries allowed per request. */
export const MAX_STALE_RETRIES = 2;

const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

/** The `retry.on` condition a failure falls under, or null for statuses never retried. */
export function conditionOf(failure: AttemptFailure): RetryCondition | null {
  if (failure.kind !== 'status') return failure.kind;
  switch (failure.status) {
    case 500:
    case 502:
    case 503:
    case 504:
    case 429:
    case 403:
    case 404:
      return `http_${failure.status}`;
    default:
      return null;
  }
}

/** Decides what happens after a failed attempt. */
export function decideRetry(policy: ResolvedRetry, f: AttemptFacts): RetryDecision {
  if (f.responseStarted) return 'stop';
  if (f.sent && !f.replayable) return 'stop';
  if (f.sent && NON_IDEMPOTENT.has(f.method) && !policy.nonIdempotent) return 'stop';
  if (f.failure.kind === 'error' && f.reusedConnection && f.staleRetries < MAX_STALE_RETRIES)
    return 'retry_stale';
  const condition = conditionOf(f.failure);
  if (condition === null || !policy.on.includes(condition)) return 'stop';
  // Every target tried (or `tries` used): the failure answers. A retry that then finds no target
  // to pick answers 502 "no live upstreams" instead (forward.ts), as in nginx.
  if (f.attempts >= (policy.tries > 0 ? Math.min(policy.tries, f.targets) : f.targets)) return 'stop';
  if (policy.timeoutMs > 0 && f.elapsedMs >= policy.timeoutMs) return 'stop';
  return 'retry';
}

/**
 * Whether the attempt counts as a target failure for `max_fails`: errors, timeouts and invalid
 * headers always; 5xx and 429 only when listed in `retry.on` (and, the caller's part, only when
 * the request is passed on because of it); 403 and 404 never; a keep-alive race is not the
 * target's fault.
 */
export function countsAsFailure(
  policy: ResolvedRetry,
  failure: AttemptFailure,
  staleConnection: boolean,
): boolean {
  if (failure.kind !== 'status') return !(staleConnection && failure.kind === 'error');
  const condition = conditionOf(failure);
  if (condition === null || condition === 'http_403' || condition === 'http_404') return false;
  return policy.on.includes(condition);
}
