/**
 * The bans a worker enforces: (scope, client address) → until when. Decided by the ban manager
 * (in the primary, or in a lone instance) and pushed here; checked on every request of a route
 * with a `ban:` rule. One Map lookup.
 */

/** One ban. */
export interface Ban {
  readonly scope: string;
  readonly address: string;
  /** Epoch ms. */
  readonly until: number;
}

/** The active bans of this process. */
export class BanList {
  readonly #bans = new Map<string, Ban>();

  /** Adds (or extends) a ban. */
  add(ban: Ban): void {
    this.#bans.set(`${ban.scope}\n${ban.address}`, ban);
  }

  /** Lifts every ban of `address`, in every scope; how many there were. */
  remove(address: string): number {
    let n = 0;
    for (const [id, ban] of this.#bans) {
      if (ban.address === address) {
        this.#bans.delete(id);
        n++;
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
}
