/**
 * Restart decisions for a crashed worker, as PM2 makes them (`min_uptime`,
 * `exp_backoff_restart_delay`). Pure, with an explicit clock.
 *
 * - Every crash is restarted after a back-off: 100 ms, doubling with each crash in a row up to
 *   10 s; a worker that had run 30 s before it died starts the series again at 100 ms.
 * - A *start-up* crash — the worker never reported ready, or died within 5 s of it before it had
 *   taken a client connection — also counts toward a crash loop: 5 of them within 60 s and the
 *   slot is reported and not restarted, instead of spinning the CPU on a worker that cannot start
 *   (a broken handler, a bad deploy). A worker that had served and then died (a request that
 *   crashes it, say) never counts: clients must not be able to crash-loop the node away.
 */

/** What to do after a crash. */
export type CrashDecision =
  | { readonly restartInMs: number }
  | { readonly crashLoop: true; readonly crashes: number };

/** What the tracker needs to know of the life that ended. */
export interface WorkerLife {
  /** From `ready` to death, ms; null when it never reported ready (failed to start). */
  readonly uptimeMs: number | null;
  /** Whether it had taken a client connection: it was serving. */
  readonly connected: boolean;
}

export const CRASH_WINDOW_MS = 60_000;
export const CRASH_LOOP_COUNT = 5;
/**
 * PM2's min_uptime, at 5 s rather than its 1 s: a worker has loaded its handlers before it is
 * ready, so what still kills an idle one by itself is its own asynchronous start (a connection
 * made at load that fails), and a name lookup that fails takes the resolver's 5 s timeout.
 * It only ever sorts out idle workers: one that took a connection is stable at any uptime.
 */
export const MIN_UPTIME_MS = 5_000;
/** A life this long resets the back-off (PM2 resets exp_backoff_restart_delay after 30 s). */
export const STABLE_UPTIME_MS = 30_000;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 10_000;

/** Whether a crash is one of a worker that could not start (counted toward a crash loop). */
export function isStartupCrash(life: WorkerLife): boolean {
  return life.uptimeMs === null || (life.uptimeMs < MIN_UPTIME_MS && !life.connected);
}

/** The crash history of one worker slot. */
export class CrashTracker {
  /** When the start-up crashes of the last CRASH_WINDOW_MS happened. */
  readonly #startupCrashes: number[] = [];
  /** Crashes in a row, for the back-off. */
  #streak = 0;

  /** Records a crash at `now` and decides. */
  crashed(now: number, life: WorkerLife): CrashDecision {
    if (life.uptimeMs !== null && life.uptimeMs >= STABLE_UPTIME_MS) this.#streak = 0;
    this.#streak++;
    if (isStartupCrash(life)) {
      const times = this.#startupCrashes;
      times.push(now);
      while (times.length > 0 && now - times[0]! > CRASH_WINDOW_MS) times.shift();
      if (times.length >= CRASH_LOOP_COUNT) return { crashLoop: true, crashes: times.length };
    }
    // Capped before the power, so a slot crashing for days does not overflow to Infinity.
    return { restartInMs: Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(this.#streak - 1, 20)) };
  }

  /** Forgets the history (a reload gives a crash-looping slot a fresh start). */
  reset(): void {
    this.#startupCrashes.length = 0;
    this.#streak = 0;
  }
}
