/**
 * Restart decisions for a crashed worker: exponential backoff (100 ms doubling to 10 s), and a
 * crash loop — 5 crashes within 60 s — reported and not restarted, instead of spinning the CPU
 * on a worker that cannot start (a broken handler, a bad deploy). Pure, with an explicit clock.
 */

/** What to do after a crash. */
export type CrashDecision =
  | { readonly restartInMs: number }
  | { readonly crashLoop: true; readonly crashes: number };

export const CRASH_WINDOW_MS = 60_000;
export const CRASH_LOOP_COUNT = 5;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 10_000;

/** The crash history of one worker slot. */
export class CrashTracker {
  readonly #times: number[] = [];

  /** Records a crash at `now` and decides. */
  crashed(now: number): CrashDecision {
    this.#times.push(now);
    while (this.#times.length > 0 && now - this.#times[0]! > CRASH_WINDOW_MS) this.#times.shift();
    const recent = this.#times.length;
    if (recent >= CRASH_LOOP_COUNT) return { crashLoop: true, crashes: recent };
    return { restartInMs: Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (recent - 1)) };
  }

  /** Forgets the history (a reload gives a crash-looping slot a fresh start). */
  reset(): void {
    this.#times.length = 0;
  }
}
