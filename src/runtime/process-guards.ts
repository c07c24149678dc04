/**
 * The security services of one process (GuardServices): the bans it enforces, its rate-limit
 * buckets (local, or in Redis with `state.redis`), and where strikes go — to the process's own ban
 * manager when it runs alone, or to the primary in batches (every 250 ms, counts per client) when
 * it is a worker: a scan of a thousand 404s costs a few IPC messages, not a thousand.
 */
import type { ResolvedConfig } from '../config/types.js';
import { type Ban, BanList } from '../security/ban-list.js';
import { type BanEvent, BanManager } from '../security/ban-manager.js';
import type { GuardServices } from '../security/guard-services.js';
import { LocalRateLimiter, type RateLimiter, SharedRateLimiter } from '../security/rate-limiter.js';
import { SharedState, type StateHooks, type StateLog } from '../security/shared-state.js';
import { banRules } from '../server/gateway-tables.js';

const STRIKE_BATCH_MS = 250;

/** Strikes waiting to be reported: [scope, address, count]. */
export type StrikeBatch = [string, string, number][];

/** How this process takes part. */
export type GuardMode =
  | { readonly kind: 'alone' }
  | { readonly kind: 'worker'; readonly workers: number; readonly report: (batch: StrikeBatch) => void };

/** Bans, buckets and strikes for one process. */
export class ProcessGuards implements GuardServices {
  readonly bans = new BanList();
  readonly #limiter: RateLimiter;
  readonly #state: SharedState | null;
  readonly #manager: BanManager | null;
  readonly #mode: GuardMode;
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(config: ResolvedConfig, log: StateLog, mode: GuardMode, hooks: StateHooks = {}) {
    this.#mode = mode;
    // Alone, this process is also the control plane, which reports Redis's state: it keeps a heartbeat.
    this.#state =
      config.state.redis === null
        ? null
        : new SharedState(config.state.redis, log, { ...hooks, heartbeat: mode.kind === 'alone' });
    const workers = mode.kind === 'worker' ? Math.max(1, mode.workers) : 1;
    this.#limiter =
      this.#state === null ? new LocalRateLimiter(workers) : new SharedRateLimiter(this.#state, workers);
    this.#manager = mode.kind === 'alone' ? new BanManager(this.#state, log, (e) => this.#apply(e)) : null;
    this.#manager?.setRules(banRules(config));
  }

  /** A lone process's own manager decided: its list follows, as a worker's follows the primary's. */
  #apply(e: BanEvent): void {
    switch (e.type) {
      case 'ban':
        this.bans.add(e.ban);
        return;
      case 'unban':
        this.bans.remove(e.address);
        return;
      case 'unban-scope':
        this.bans.removeScope(e.scope);
        return;
    }
  }

  banned(scope: string, address: string): boolean {
    return this.bans.banned(scope, address);
  }

  take(...args: Parameters<RateLimiter['take']>): ReturnType<RateLimiter['take']> {
    return this.#limiter.take(...args);
  }

  strike(scope: string, address: string): void {
    if (this.#manager !== null) {
      this.#manager.strike(scope, address);
      return;
    }
    const id = `${scope}\n${address}`;
    this.#pending.set(id, (this.#pending.get(id) ?? 0) + 1);
    if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#flush(), STRIKE_BATCH_MS);
      this.#timer.unref();
    }
  }

  #flush(): void {
    this.#timer = null;
    if (this.#mode.kind !== 'worker' || this.#pending.size === 0) return;
    const batch: StrikeBatch = [...this.#pending].map(([id, n]) => {
      const cut = id.indexOf('\n');
      return [id.slice(0, cut), id.slice(cut + 1), n];
    });
    this.#pending = new Map();
    this.#mode.report(batch);
  }

  /** A new config's ban rules. */
  reload(config: ResolvedConfig): void {
    this.#manager?.setRules(banRules(config));
  }

  /** The active bans (a lone process's own; a worker's as pushed to it). */
  all(): Ban[] {
    return this.#manager?.all() ?? this.bans.all();
  }

  /** Lifts the bans of an address (a lone process only; workers are told by the primary). */
  async unban(address: string): Promise<number> {
    return this.#manager === null ? this.bans.remove(address) : this.#manager.unban(address);
  }

  /** Whether this process's Redis is up; 'off' without `state.redis`. */
  get redis(): 'up' | 'down' | 'off' {
    return this.#state?.health ?? 'off';
  }

  /** Stops timers and closes Redis. */
  async close(): Promise<void> {
    this.#flush();
    this.#limiter.close();
    this.bans.close();
    this.#manager?.close();
    await this.#state?.close();
  }
}
