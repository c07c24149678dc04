/**
 * One target of an upstream at run time: its balancer and health state, and its pools of
 * keep-alive connections: sluice's own HTTP/1.1 client (h1-client.ts), over TLS for https targets,
 * and undici `Pool`s for Upgrade requests. A target survives a reload (and a DNS refresh) when its
 * origin and connection settings (TLS included) are unchanged, keeping its warm connections and
 * its state; when only its settings changed, a new target takes over that state (`takeOver`). An
 * https target connects with its upstream's TLS settings (upstream-tls.ts); when their files
 * rotate, new pools take the new certificate and the old ones close once their requests are done.
 */
import type { Client, Dispatcher, Pool } from 'undici';
import { type Peer, resetWeights } from '../balancer/balancer.js';
import type { ResolvedUpstreamTls } from '../config/types.js';
import { undici } from '../core/undici.js';
import { clearFailures, type FailCounters } from '../health/passive-health.js';
import { H1Pool } from './h1-client.js';
import { hostOf, httpsConnector, UpstreamTls, upstreamServerName } from './upstream-tls.js';

/** What an active health check says of a target. */
export type TargetHealth = 'up' | 'down' | 'unknown';

/** How a target is configured (static, or one address of a `resolve: true` entry). */
export interface TargetSpec {
  /** Where connections go: `http://10.0.0.1:8080`. */
  readonly origin: string;
  /** Host header when `preserve_host` is off: the configured `host:port` (the DNS name for resolved targets). */
  readonly hostPort: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly down: boolean;
  readonly maxConns: number;
  readonly keepaliveTimeoutMs: number;
  /** Idle connections kept (`keepalive`; 0: a connection per request). */
  readonly keepalive: number;
  /** The upstream's `tls:` (used by https targets only), and its identity (`upstreamTlsKey`). */
  readonly tls: ResolvedUpstreamTls | null;
  readonly tlsKey: string;
}

/** A target: spec, balancer state, passive and active health, pools. */
export class UpstreamTarget implements Peer, FailCounters {
  readonly spec: TargetSpec;
  readonly origin: string;
  readonly hostPort: string;
  readonly weight: number;
  effectiveWeight: number;
  currentWeight = 0;
  conns = 0;
  fails = 0;
  accessed = 0;
  checked = 0;
  health: TargetHealth;
  /**
   * For https targets, a fixed server name passed with each Upgrade request, so undici does not
   * derive one from the Host header and reconnect whenever it changes; undefined for http targets.
   */
  readonly servername: string | undefined;
  /** The name sent in SNI and verified; undefined for an IP address without `server_name`. */
  readonly #sni: string | undefined;
  #released = false;
  /** Keyed by connect timeout: routes may set different ones for the same target. */
  readonly #pools = new Map<number, Pool>();
  readonly #h1Pools = new Map<number, H1Pool>();
  /** One-request clients (`freshClient`), until they close. */
  readonly #fresh = new Set<Client>();
  readonly #https: boolean;
  readonly #tls: UpstreamTls | null;
  readonly #unsubscribe: (() => void) | null;

  /** An https target with `tls:` reads its files here (shared with targets of the same settings). */
  constructor(spec: TargetSpec, health: TargetHealth) {
    this.spec = spec;
    this.origin = spec.origin;
    this.hostPort = spec.hostPort;
    this.weight = spec.weight;
    this.effectiveWeight = spec.weight;
    this.health = health;
    this.#https = spec.origin.startsWith('https:');
    const host = hostOf(spec.hostPort);
    this.#sni = this.#https ? upstreamServerName(spec.tls, host) : undefined;
    this.servername = this.#https ? (this.#sni ?? host) : undefined;
    this.#tls = this.#https && spec.tls !== null ? UpstreamTls.acquire(spec.tls) : null;
    this.#unsubscribe = this.#tls?.subscribe(() => this.#rotate()) ?? null;
  }

  /** The pool for a connect timeout, created on first use. */
  pool(connectTimeoutMs: number): Pool {
    let pool = this.#pools.get(connectTimeoutMs);
    if (pool === undefined) {
      pool = new (undici().Pool)(this.origin, {
        ...this.#clientOptions(connectTimeoutMs),
        // nginx's `keepalive N` caches idle connections without capping busy ones; undici's
        // `connections: null` likewise opens as many as the load needs and keeps them until idle.
        connections: null,
      });
      this.#pools.set(connectTimeoutMs, pool);
    }
    return pool;
  }

  /**
   * Sends one request on a connection of its own, closed once that request is done (undici's
   * `close()` waits for it; an upgraded socket belongs to the tunnel by then). The keep-alive
   * race's retry goes out this way: the pool would hand it another idle connection, as stale as
   * the first.
   */
  dispatchFresh(
    connectTimeoutMs: number,
    options: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ): void {
    const client = new (undici().Client)(this.origin, this.#clientOptions(connectTimeoutMs));
    this.#fresh.add(client);
    client.dispatch(options, handler);
    client
      .close()
      .catch(() => undefined)
      .finally(() => this.#fresh.delete(client));
  }

  #clientOptions(connectTimeoutMs: number): Client.Options {
    return {
      pipelining: 1,
      keepAliveTimeout: this.spec.keepaliveTimeoutMs,
      // A target's `Keep-Alive: timeout=` hint may shorten our idle timeout, never lengthen it.
      keepAliveMaxTimeout: this.spec.keepaliveTimeoutMs,
      connect: this.#https
        ? httpsConnector(
            this.#tls?.connectionOptions ?? { rejectUnauthorized: true },
            this.#sni,
            connectTimeoutMs,
          )
        : { timeout: connectTimeoutMs },
      // Timeouts are set per request from the route's `timeouts`.
      headersTimeout: 0,
      bodyTimeout: 0,
    };
  }

  /**
   * sluice's own client for a connect timeout, created on first use. An https target's connects
   * with the TLS files as loaded now (a rotation replaces the pool) and the target's fixed SNI name.
   */
  h1(connectTimeoutMs: number): H1Pool {
    let pool = this.#h1Pools.get(connectTimeoutMs);
    if (pool === undefined) {
      pool = new H1Pool(this.origin, {
        connectTimeoutMs,
        keepaliveTimeoutMs: this.spec.keepaliveTimeoutMs,
        maxIdle: this.spec.keepalive,
        tls: this.#https
          ? { options: this.#tls?.connectionOptions ?? { rejectUnauthorized: true }, servername: this.#sni }
          : null,
      });
      this.#h1Pools.set(connectTimeoutMs, pool);
    }
    return pool;
  }

  /** Whether a new spec can keep this target's state and connections. */
  reusableFor(spec: TargetSpec): boolean {
    const s = this.spec;
    return (
      s.origin === spec.origin &&
      s.hostPort === spec.hostPort &&
      s.weight === spec.weight &&
      s.backup === spec.backup &&
      s.down === spec.down &&
      s.maxConns === spec.maxConns &&
      s.keepaliveTimeoutMs === spec.keepaliveTimeoutMs &&
      s.keepalive === spec.keepalive &&
      s.tlsKey === spec.tlsKey
    );
  }

  /**
   * Continues from `previous`, the target at this URL in the generation a reload replaces (this
   * one itself when the reload kept it): its active-check result and its passive failures, each
   * only where `carry` says it means the same under the new settings; what is not carried starts
   * as for a new target (`health`, no failures, full weight). An operator's drain is the
   * upstream's, by URL. A rebuilt target's balancer position and connections start afresh.
   */
  takeOver(
    previous: UpstreamTarget,
    carry: { readonly health: boolean; readonly failures: boolean },
    health: TargetHealth,
  ): void {
    this.health = carry.health ? previous.health : health;
    if (carry.failures) {
      this.fails = previous.fails;
      this.accessed = previous.accessed;
      this.checked = previous.checked;
    } else {
      clearFailures(this);
      resetWeights(this);
    }
  }

  /** The TLS files changed: new requests go to new pools; the old ones close when their requests are done. */
  #rotate(): void {
    const pools: (Pool | H1Pool)[] = [...this.#pools.values(), ...this.#h1Pools.values()];
    this.#pools.clear();
    this.#h1Pools.clear();
    for (const p of pools) p.close().catch(() => undefined);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#unsubscribe?.();
    this.#tls?.release();
  }

  /** Closes the pools gracefully: queued and in-flight requests finish first. */
  async close(): Promise<void> {
    this.#release();
    await Promise.all(this.#takePools().map((p) => p.close().catch(() => undefined)));
  }

  /** Closes the pools at once, failing what is in flight. */
  async destroy(): Promise<void> {
    this.#release();
    await Promise.all(this.#takePools().map((p) => p.destroy().catch(() => undefined)));
  }

  /** Every pool (and one-request client), removed from the target. */
  #takePools(): (Pool | Client | H1Pool)[] {
    const pools = [...this.#pools.values(), ...this.#fresh, ...this.#h1Pools.values()];
    this.#pools.clear();
    this.#fresh.clear();
    this.#h1Pools.clear();
    return pools;
  }
}
