/**
 * Upstreams at run time: each target owns an undici `Pool` of keep-alive connections; the upstream
 * picks a target with the balancer. Pools survive a reload when their target and settings are
 * unchanged, so a reload does not throw away warm connections.
 */
import { Pool } from 'undici';
import { pickWeighted, type WeightedPeer } from '../balancer/weighted-round-robin.js';
import type { ResolvedUpstream } from '../config/types.js';

/** Connection settings that require a separate pool when they differ. */
interface PoolSettings {
  readonly keepaliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** One target of an upstream: balancer state plus its connection pools. */
export class UpstreamTarget implements WeightedPeer {
  readonly origin: string;
  /** `host:port` of the origin, sent as Host when `preserve_host` is off. */
  readonly hostPort: string;
  readonly weight: number;
  effectiveWeight: number;
  currentWeight = 0;
  /** Requests in flight to this target from this worker. */
  inflight = 0;
  readonly #keepaliveTimeoutMs: number;
  /** Keyed by connect timeout: routes may set different ones for the same target. */
  readonly #pools = new Map<number, Pool>();

  constructor(origin: string, weight: number, keepaliveTimeoutMs: number) {
    this.origin = origin;
    this.hostPort = new URL(origin).host;
    this.weight = weight;
    this.effectiveWeight = weight;
    this.#keepaliveTimeoutMs = keepaliveTimeoutMs;
  }

  /** The pool for a connect timeout, created on first use. */
  pool(connectTimeoutMs: number): Pool {
    let pool = this.#pools.get(connectTimeoutMs);
    if (pool === undefined) {
      pool = createPool(this.origin, { keepaliveTimeoutMs: this.#keepaliveTimeoutMs, connectTimeoutMs });
      this.#pools.set(connectTimeoutMs, pool);
    }
    return pool;
  }

  /** Settings identity, to decide whether a reload may reuse this target's pools. */
  sameSettings(origin: string, keepaliveTimeoutMs: number): boolean {
    return this.origin === origin && this.#keepaliveTimeoutMs === keepaliveTimeoutMs;
  }

  /** Closes the pools gracefully: queued and in-flight requests finish first. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
  }

  /** Closes the pools at once, failing what is in flight. */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

function createPool(origin: string, s: PoolSettings): Pool {
  return new Pool(origin, {
    // nginx's `keepalive N` caches idle connections without capping busy ones; undici's
    // `connections: null` likewise opens as many as the load needs and keeps them until idle.
    connections: null,
    pipelining: 1,
    keepAliveTimeout: s.keepaliveTimeoutMs,
    // A target's `Keep-Alive: timeout=` hint may shorten our idle timeout, never lengthen it.
    keepAliveMaxTimeout: s.keepaliveTimeoutMs,
    connect: { timeout: s.connectTimeoutMs },
    // Timeouts are set per request from the route's `timeouts`.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/** One upstream: its targets and the balancer that picks among them. */
export class Upstream {
  readonly name: string;
  readonly targets: readonly UpstreamTarget[];
  /** `keepalive: 0` asks for a fresh connection per request. */
  readonly reuseConnections: boolean;

  constructor(config: ResolvedUpstream, targets: readonly UpstreamTarget[]) {
    this.name = config.name;
    this.targets = targets;
    this.reuseConnections = config.keepalive > 0;
  }

  /** Picks a target by smooth weighted round-robin, or `null` when none can take the request. */
  pick(): UpstreamTarget | null {
    const targets = this.targets;
    if (targets.length === 1) return targets[0]!;
    return pickWeighted(targets, alwaysEligible);
  }
}

const alwaysEligible = (): boolean => true;

/** All upstreams of one config generation. */
export class UpstreamSet {
  readonly #byName: Map<string, Upstream>;
  readonly #targets: UpstreamTarget[];

  private constructor(byName: Map<string, Upstream>, targets: UpstreamTarget[]) {
    this.#byName = byName;
    this.#targets = targets;
  }

  /**
   * Builds the upstreams of a config, reusing targets (and their warm pools) from `previous`
   * where origin and settings are unchanged. Returns the set and the targets no longer used.
   */
  static build(
    configs: Readonly<Record<string, ResolvedUpstream>>,
    previous?: UpstreamSet,
  ): { set: UpstreamSet; retired: UpstreamTarget[] } {
    const reusable = new Map<string, UpstreamTarget[]>();
    for (const t of previous === undefined ? [] : previous.#targets) {
      const list = reusable.get(t.origin);
      if (list) list.push(t);
      else reusable.set(t.origin, [t]);
    }
    const byName = new Map<string, Upstream>();
    const targets: UpstreamTarget[] = [];
    for (const config of Object.values(configs)) {
      const list = config.targets.map((tc) => {
        const candidates = reusable.get(tc.origin);
        const index =
          candidates?.findIndex(
            (t) => t.weight === tc.weight && t.sameSettings(tc.origin, config.keepaliveTimeoutMs),
          ) ?? -1;
        const target =
          index >= 0
            ? candidates!.splice(index, 1)[0]!
            : new UpstreamTarget(tc.origin, tc.weight, config.keepaliveTimeoutMs);
        targets.push(target);
        return target;
      });
      byName.set(config.name, new Upstream(config, list));
    }
    const retired = [...reusable.values()].flat();
    return { set: new UpstreamSet(byName, targets), retired };
  }

  /** The upstream of a name (config validation guarantees it exists). */
  get(name: string): Upstream {
    const upstream = this.#byName.get(name);
    if (!upstream) throw new Error(`unknown upstream ${name}`);
    return upstream;
  }

  /** Every upstream, for status pages. */
  all(): IterableIterator<Upstream> {
    return this.#byName.values();
  }

  /** Closes every pool gracefully. */
  async close(): Promise<void> {
    await Promise.all(this.#targets.map((t) => t.close()));
  }

  /** Closes every pool at once. */
  async destroy(): Promise<void> {
    await Promise.all(this.#targets.map((t) => t.destroy()));
  }
}
