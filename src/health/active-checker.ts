/**
 * Active health checks: each target of an upstream with `health_check` is probed every `interval`;
 * `rise` passes in a row mark it up, `fall` failures in a row mark it down (Traefik's users asked
 * for these thresholds after one failed probe evicted a server). A target starts `unknown`.
 *
 * The checker sees targets only through a narrow view (what to probe, and the health each target
 * currently has), and reports through one callback, so it can run in the primary process and feed
 * every worker. Each tick re-reports a known state a target does not show yet (a target that
 * arrived with a reload, a DNS refresh or a new worker).
 */
import type { ResolvedHealthCheck, ResolvedUpstreamTls } from '../config/types.js';

/** One target to probe, as the checker sees it. */
export interface HealthTarget {
  readonly upstream: string;
  readonly origin: string;
  /** The Host header for probes when the check sets none. */
  readonly hostPort: string;
  readonly check: ResolvedHealthCheck;
  /** The upstream's `tls:` for https targets (CA, client certificate, server name, SPIFFE id). */
  readonly tls?: ResolvedUpstreamTls | null;
  /** What the target currently shows. */
  readonly health: 'up' | 'down' | 'unknown';
}

/**
 * A probe this host could not make (no file descriptor left): neither a pass nor a failure of the
 * target. Counted as one, it took every target down together, as requests once did.
 */
export const NOT_PROBED = Symbol('sluice.notProbed');

/**
 * Probes one target; resolves null when it passes, else why it failed (`status 503`, `connect
 * ECONNREFUSED 127.0.0.1:9001`, `certificate has expired`), or NOT_PROBED. Must not reject.
 */
export type Probe = (target: HealthTarget) => Promise<string | null | typeof NOT_PROBED>;

/**
 * Receives a state change (or a re-report of a known state); a target found down comes with the
 * reason its last probe failed: "target down" alone sent the operator to the access log.
 */
export type HealthReport = (upstream: string, origin: string, up: boolean, reason: string | null) => void;

interface ProbeState {
  passes: number;
  fails: number;
  status: 'up' | 'down' | 'unknown';
  /** Why the last probe failed (null after a pass). */
  reason: string | null;
  nextAt: number;
  probing: boolean;
}

/** How often the checker looks for due probes (so an interval below it probes at this pace). */
const TICK_MS = 100;

/** Runs the probes of every target a view lists. */
export class HealthChecker {
  readonly #view: () => readonly HealthTarget[];
  readonly #probe: Probe;
  readonly #report: HealthReport;
  readonly #states = new Map<string, ProbeState>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    view: () => readonly HealthTarget[],
    probe: Probe,
    report: HealthReport,
    now: () => number = Date.now,
  ) {
    this.#view = view;
    this.#probe = probe;
    this.#report = report;
    this.#now = now;
  }

  /** Starts probing (the first probes go out at once). */
  start(): void {
    if (this.#timer !== null) return;
    this.tick();
    this.#timer = setInterval(() => this.tick(), TICK_MS);
    this.#timer.unref();
  }

  /** Stops probing; probes in flight are ignored when they come back. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One round: start due probes, re-report states targets do not show, forget vanished targets. */
  tick(): void {
    const now = this.#now();
    const seen = new Set<string>();
    for (const target of this.#view()) {
      const key = `${target.upstream}\n${target.origin}`;
      seen.add(key);
      let state = this.#states.get(key);
      if (state === undefined) {
        state = { passes: 0, fails: 0, status: 'unknown', reason: null, nextAt: now, probing: false };
        this.#states.set(key, state);
      }
      if (state.status !== 'unknown' && state.status !== target.health) {
        this.#report(target.upstream, target.origin, state.status === 'up', state.reason);
      }
      if (!state.probing && now >= state.nextAt) this.#run(target, state, now);
    }
    for (const key of this.#states.keys()) if (!seen.has(key)) this.#states.delete(key);
  }

  /**
   * Starts a probe. The next is due `interval` after this one was due, so probes start every
   * `interval` whatever the probe takes and however late the tick came (due after the probe ended,
   * a 200 ms interval on the 100 ms tick probed every 300 ms: 7 probes in 2 s). A probe still
   * running is not overlapped: the next starts when it ends, and the schedule starts over from
   * there rather than catching up.
   */
  #run(target: HealthTarget, state: ProbeState, now: number): void {
    state.probing = true;
    state.nextAt += target.check.intervalMs;
    if (state.nextAt <= now) state.nextAt = now + target.check.intervalMs;
    void this.#probe(target).then((failure) => {
      state.probing = false;
      if (this.#timer === null || failure === NOT_PROBED) return;
      this.record(target, state, failure);
    });
  }

  /** Counts one probe result (null: passed, else why not) and reports a change of state. */
  private record(target: HealthTarget, state: ProbeState, failure: string | null): void {
    state.reason = failure;
    if (failure === null) {
      state.passes++;
      state.fails = 0;
      if (state.status !== 'up' && state.passes >= target.check.rise) {
        state.status = 'up';
        this.#report(target.upstream, target.origin, true, null);
      }
    } else {
      state.fails++;
      state.passes = 0;
      if (state.status !== 'down' && state.fails >= target.check.fall) {
        state.status = 'down';
        this.#report(target.upstream, target.origin, false, failure);
      }
    }
  }

  /** The checker's view of every target, for status pages. */
  states(): { upstream: string; origin: string; status: string; passes: number; fails: number }[] {
    return [...this.#states].map(([key, s]) => {
      const [upstream = '', origin = ''] = key.split('\n');
      return { upstream, origin, status: s.status, passes: s.passes, fails: s.fails };
    });
  }
}
