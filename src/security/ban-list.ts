/**
 * The bans a worker enforces: (scope, client address) → until when. Decided by the ban manager
 * (in the primary, or in a lone instance) and pushed here; checked on every request of a route
 * with a `ban:` rule. One Map lookup.
 *
 * Expired bans are dropped by an incremental sweep: a cursor walks the Map (in insertion order;
 * a JS Map iterator survives deletes and sees later inserts), 2 500 entries every 250 ms and two
 * more per ban added. A whole pass at once would pause a worker: ~200 ms over 1 000 000 bans half
 * of them expired, where a slice takes ~0.6 ms (10 000 entries a second). The steps per add keep
 * a flood of short bans (every address of a /64 banned for 1 s) within a constant factor of the
 * bans in force: the cursor moves twice as fast as the list grows, so each pass ends, and each
 * pass drops what had expired.
 */

/** One ban. */
export interface Ban {
  readonly scope: string;
  readonly address: string;
  /** Epoch ms. */
  readonly until: number;
}

const SWEEP_MS = 250;
/** Entries looked at per timed slice. */
const SWEEP_SLICE = 2500;
/** Entries looked at per ban added: more than the one it adds, so passes end. */
const SWEEP_PER_ADD = 2;

/** The active bans of this process. */
export class BanList {
  readonly #bans = new Map<string, Ban>();
  #cursor: MapIterator<[string, Ban]> | null = null;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  /** Adds (or extends) a ban. */
  add(ban: Ban, now = Date.now()): void {
    this.#bans.set(`${ban.scope}\n${ban.address}`, ban);
    this.sweep(now, SWEEP_PER_ADD);
  }

  /** Lifts every ban of `address`, in every scope; how many were in force (expired ones go too). */
  remove(address: string, now = Date.now()): number {
    let n = 0;
    for (const [id, ban] of this.#bans) {
      if (ban.address === address) {
        this.#bans.delete(id);
        if (ban.until > now) n++;
      }
    }
    return n;
  }

  /** Lifts every ban of `scope` (a rule a reload removed); how many were in force. */
  removeScope(scope: string, now = Date.now()): number {
    let n = 0;
    for (const [id, ban] of this.#bans) {
      if (ban.scope === scope) {
        this.#bans.delete(id);
        if (ban.until > now) n++;
      }
    }
    return n;
  }

  /** Whether `address` is banned in `scope` at `now`. */
  banned(scope: string, address: string, now = Date.now()): boolean {
    if (this.#bans.size === 0) return false;
    const ban = this.#bans.get(`${scope}\n${address}`);
    if (ban === undefined) return false;
    if (ban.until > now) return true;
    this.#bans.delete(`${scope}\n${address}`);
    return false;
  }

  /** Every active ban. */
  all(now = Date.now()): Ban[] {
    return [...this.#bans.values()].filter((b) => b.until > now);
  }

  /**
   * Drops the expired bans among the next `slice` entries, resuming where the last call stopped
   * and starting a new pass after the last entry.
   */
  sweep(now = Date.now(), slice = SWEEP_SLICE): void {
    for (let i = 0; i < slice && this.#bans.size > 0; i++) {
      this.#cursor ??= this.#bans.entries();
      const next = this.#cursor.next();
      if (next.done === true) {
        this.#cursor = null;
        return;
      }
      const [id, ban] = next.value;
      if (ban.until <= now) this.#bans.delete(id);
    }
  }

  /** Bans held, expired ones not yet swept included. */
  get size(): number {
    return this.#bans.size;
  }

  /** Stops the sweep timer. */
  close(): void {
    clearInterval(this.#timer);
  }
}
