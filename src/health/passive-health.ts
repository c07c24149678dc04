/**
 * nginx's passive health accounting (`ngx_http_upstream_free_round_robin_peer` and friends), as
 * pure functions over a peer's counters and an explicit clock, so tests can drive time:
 *
 * - `max_fails` failures (0 = never count) within `fail_timeout` make a peer unavailable for
 *   `fail_timeout` after the last failure.
 * - On failure: `fails++`, `accessed = checked = now`, and the effective weight drops by
 *   `weight / max_fails` (not below 0) — it climbs back by 1 per pick, a gentle ramp.
 * - When a peer is picked after a full `fail_timeout` without failures, `checked = now`; a success
 *   on such a request (`accessed < checked`) resets `fails`. After `fail_timeout` one request is let
 *   through; if it fails, the rest starts again.
 */

/** The counters passive health keeps per peer (times in ms). */
export interface FailCounters {
  readonly weight: number;
  effectiveWeight: number;
  fails: number;
  /** Time of the last failure. */
  accessed: number;
  /** Time of the last failure, or of the first pick after a quiet `fail_timeout`. */
  checked: number;
}

/** The passive-health settings of an upstream. */
export interface FailPolicy {
  readonly maxFails: number;
  readonly failTimeoutMs: number;
}

/** Whether the peer is resting after `max_fails` failures. */
export function isFailed(p: FailCounters, policy: FailPolicy, now: number): boolean {
  return policy.maxFails > 0 && p.fails >= policy.maxFails && now - p.checked <= policy.failTimeoutMs;
}

/** Called when the peer is picked for a request. */
export function onPicked(p: FailCounters, policy: FailPolicy, now: number): void {
  if (now - p.checked > policy.failTimeoutMs) p.checked = now;
}

/**
 * Called when a request to the peer failed; returns true when this failure takes it out: at
 * `max_fails`, and again at each failure after it (the trial request after `fail_timeout` that
 * fails too), where nginx logs "upstream server temporarily disabled" each time.
 */
export function onFailure(p: FailCounters, policy: FailPolicy, now: number): boolean {
  p.fails++;
  p.accessed = now;
  p.checked = now;
  if (policy.maxFails > 0) {
    p.effectiveWeight -= Math.floor(p.weight / policy.maxFails);
    if (p.effectiveWeight < 0) p.effectiveWeight = 0;
    return p.fails >= policy.maxFails;
  }
  if (p.effectiveWeight < 0) p.effectiveWeight = 0;
  return false;
}

/** Called when a request to the peer succeeded. */
export function onSuccess(p: FailCounters): void {
  if (p.accessed < p.checked) p.fails = 0;
}

/** Forgets past failures (an active health check passed, or an operator re-enabled the peer). */
export function clearFailures(p: FailCounters): void {
  p.fails = 0;
  p.accessed = 0;
  p.checked = 0;
}
