/**
 * All upstreams of one config generation. Built from the resolved config, lending targets (with
 * their warm pools) from the previous generation where nothing about them changed; as it starts to
 * serve, it takes over what the previous generation knows of each URL (drain, health); refreshes
 * `resolve: true` targets from DNS; applies health-check results.
 */
import type { ResolvedUpstream } from '../config/types.js';
import { DnsRefresher, type FailureStreak, type ResolveHost } from './dns-refresher.js';
import { type TargetReuse, Upstream } from './upstream.js';
import type { TargetSpec, UpstreamTarget } from './upstream-target.js';

/** Hooks for what the set cannot decide alone. */
export interface UpstreamSetOptions {
  /** DNS resolution (injectable for tests). */
  readonly resolve?: ResolveHost;
  /** Called when a DNS refresh changes an upstream's targets (for logs). */
  readonly onResolved?: (upstream: string, host: string, origins: readonly string[]) => void;
  /**
   * Called when DNS resolution fails (the first failure of a streak, a new error, then once a
   * minute: dns-refresher.ts); the previous addresses stay.
   */
  readonly onResolveError?: (upstream: string, host: string, err: unknown, streak: FailureStreak) => void;
  /** Called when resolution works again after a failure streak. */
  readonly onResolveRecovered?: (upstream: string, host: string, streak: FailureStreak) => void;
}

/** The upstreams of a config generation. */
export class UpstreamSet {
  readonly #byName = new Map<string, Upstream>();
  readonly #refreshers: DnsRefresher[] = [];
  /** Targets dropped by DNS refreshes; closed once their requests finish. */
  readonly #retired = new Set<UpstreamTarget>();

  private constructor() {}

  /**
   * Builds the upstreams of a config, reusing targets from `previous` where origin and settings
   * are unchanged. Returns the set and the previous targets no longer used. The state of the URLs
   * it keeps is taken over by `inherit`, once the set serves.
   */
  static build(
    configs: Readonly<Record<string, ResolvedUpstream>>,
    previous?: UpstreamSet,
  ): { set: UpstreamSet; retired: UpstreamTarget[] } {
    const pool = new Map<string, UpstreamTarget[]>();
    if (previous !== undefined) {
      for (const u of previous.#byName.values()) {
        for (const t of u.targets) {
          const key = `${u.name}\n${t.origin}`;
          pool.set(key, [...(pool.get(key) ?? []), t]);
        }
      }
    }
    const set = new UpstreamSet();
    for (const config of Object.values(configs)) {
      const reuse: TargetReuse = (spec: TargetSpec) => {
        const list = pool.get(`${config.name}\n${spec.origin}`);
        const i = list?.findIndex((t) => t.reusableFor(spec)) ?? -1;
        return i >= 0 ? list?.splice(i, 1)[0] : undefined;
      };
      const upstream = new Upstream(config, reuse);
      // Resolved addresses carry over too, so a reload does not empty a DNS upstream until it re-resolves.
      const old = previous === undefined ? undefined : previous.#byName.get(config.name);
      for (const { index, config: entry } of upstream.resolveEntries()) {
        const host = new URL(entry.origin).host;
        const carried = old?.targets.filter((t) => t.hostPort === host).map((t) => t.origin) ?? [];
        if (carried.length > 0) upstream.setResolved(index, carried, reuse);
      }
      set.#byName.set(config.name, upstream);
    }
    const retired = [...pool.values()].flat();
    return { set, retired };
  }

  /**
   * Takes over the state `previous` has for the URLs both list (see Upstream.inherit): called
   * right as this set replaces `previous`, so nothing done to `previous` since `build` is lost.
   */
  inherit(previous: UpstreamSet): void {
    for (const upstream of this.#byName.values()) {
      const old = previous.#byName.get(upstream.name);
      if (old !== undefined) upstream.inherit(old);
    }
  }

  /**
   * Starts DNS refreshing for `resolve: true` targets and waits for the first resolution of each
   * (bounded by `firstWaitMs`), so the first requests find targets.
   */
  async startDns(options: UpstreamSetOptions = {}, firstWaitMs = 5000): Promise<void> {
    const firsts: Promise<void>[] = [];
    for (const upstream of this.#byName.values()) {
      for (const { index, config } of upstream.resolveEntries()) {
        const url = new URL(config.origin);
        const refresher = new DnsRefresher({
          host: url.hostname,
          protocol: url.protocol,
          port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
          minTtlMs: upstream.config.dnsMinTtlMs,
          maxTtlMs: upstream.config.dnsMaxTtlMs,
          ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
          apply: (origins) => {
            const same =
              origins.length === upstream.targets.filter((t) => t.hostPort === url.host).length &&
              origins.every((o) => upstream.targets.some((t) => t.origin === o));
            if (same) return;
            for (const t of upstream.setResolved(index, origins)) this.#retire(t);
            options.onResolved?.(upstream.name, url.hostname, origins);
          },
          onError: (err, streak) => options.onResolveError?.(upstream.name, url.hostname, err, streak),
          onRecovered: (streak) => options.onResolveRecovered?.(upstream.name, url.hostname, streak),
        });
        this.#refreshers.push(refresher);
        firsts.push(refresher.start());
      }
    }
    if (firsts.length === 0) return;
    await Promise.race([Promise.all(firsts), new Promise((r) => setTimeout(r, firstWaitMs).unref())]);
  }

  #retire(t: UpstreamTarget): void {
    this.#retired.add(t);
    void t.close().then(() => this.#retired.delete(t));
  }

  /** The upstream of a name (config validation guarantees it exists). */
  get(name: string): Upstream {
    const upstream = this.#byName.get(name);
    if (!upstream) throw new Error(`unknown upstream ${name}`);
    return upstream;
  }

  /** The upstream of a name, or undefined. */
  find(name: string): Upstream | undefined {
    return this.#byName.get(name);
  }

  /** Every upstream, for status pages and health checks. */
  all(): IterableIterator<Upstream> {
    return this.#byName.values();
  }

  /** Applies a health-check result; returns whether the target's state changed. */
  setHealth(upstream: string, origin: string, up: boolean): boolean {
    return this.#byName.get(upstream)?.setHealth(origin, up) ?? false;
  }

  #stopDns(): void {
    for (const r of this.#refreshers) r.stop();
    this.#refreshers.length = 0;
  }

  /** Stops DNS refreshing and closes every pool gracefully (requests in flight finish). */
  async close(): Promise<void> {
    this.#stopDns();
    await Promise.all([...this.#byName.values()].flatMap((u) => u.targets.map((t) => t.close())));
  }

  /** Stops DNS refreshing only: the targets live on in the next generation. */
  retire(): void {
    this.#stopDns();
  }

  /** Stops DNS refreshing and closes every pool at once. */
  async destroy(): Promise<void> {
    this.#stopDns();
    await Promise.all([
      ...[...this.#byName.values()].flatMap((u) => u.targets.map((t) => t.destroy())),
      ...[...this.#retired].map((t) => t.destroy()),
    ]);
  }
}
