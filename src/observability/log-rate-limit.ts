/**
 * A bound on how many lines of one kind a process writes: at most `perSecond` in each one-second
 * window (a fixed window: one comparison and one counter per line, no timer). The lines left out
 * are counted, and the next line written says how many (`suppressed`), so a flood of refused
 * clients costs the log `perSecond` lines a second, and the gap is visible where it happened.
 */
export class LogRateLimit {
  readonly #perSecond: number;
  readonly #now: () => number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #written = 0;
  #suppressed = 0;

  /** `now` in milliseconds (tests pass their own clock). */
  constructor(perSecond: number, now: () => number = () => performance.now()) {
    this.#perSecond = perSecond;
    this.#now = now;
  }

  /**
   * Whether a line may be written now: null when it must be left out (and is counted), else the
   * number of lines left out since the last one written.
   */
  take(): number | null {
    const now = this.#now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#written = 0;
    }
    if (this.#written >= this.#perSecond) {
      this.#suppressed++;
      return null;
    }
    this.#written++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}
