/**
 * One running sluice in this process: listeners, upstream pools, the admin listener and the
 * loggers for one resolved config, with start, in-place reload and graceful close.
 *
 * Reload compiles the new config into fresh tables and swaps them into the listeners that stay;
 * listeners for new addresses are bound before any old one is closed, and upstream targets that
 * did not change keep their warm connection pools.
 */
import { AdminServer } from '../admin/admin-server.js';
import type { ResolvedConfig } from '../config/types.js';
import { VERSION } from '../core/version.js';
import { HealthChecker, type HealthTarget } from '../health/active-checker.js';
import { JsonAccessLog, writeAccessLine } from '../observability/access-log.js';
import { createLoggers, type Loggers } from '../observability/logger.js';
import { probeTarget } from '../proxy/health-probe.js';
import type { UpstreamSet } from '../proxy/upstream-set.js';
import type { UpstreamTarget } from '../proxy/upstream-target.js';
import type { Exchange, ExchangeObserver } from '../server/exchange.js';
import { compileTables, type GatewayTables, type ListenerTable } from '../server/gateway-tables.js';
import { HttpListener } from '../server/http-listener.js';

/** A bound address, as reported to users and tests. */
export interface BoundAddress {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

/** The addresses an instance is serving on. */
export interface SluiceAddresses {
  readonly servers: readonly BoundAddress[];
  readonly admin: BoundAddress | null;
}

/** A running sluice for one resolved config. */
export class SluiceInstance {
  #tables: GatewayTables;
  readonly #listeners = new Map<string, HttpListener>();
  #admin: AdminServer | null = null;
  readonly #loggers: Loggers;
  readonly #ownsLoggers: boolean;
  readonly #startedAt = Date.now();
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  readonly #jsonAccess: JsonAccessLog | null;
  readonly #health: HealthChecker;
  readonly #observer: ExchangeObserver = {
    finished: (x: Exchange) => {
      if (this.#jsonAccess !== null) this.#jsonAccess.write(x);
      else if (this.#loggers.access !== null) writeAccessLine(this.#loggers.access, x);
    },
    targetDisabled: (x: Exchange, target: string) => {
      this.#loggers.app.warn(
        {
          upstream: x.upstream,
          target,
          fail_timeout_ms: this.#tables.upstreams.find(x.upstream ?? '')?.config.failTimeoutMs,
        },
        'upstream target temporarily disabled',
      );
    },
  };

  constructor(config: ResolvedConfig, loggers?: Loggers) {
    this.#tables = compileTables(config).tables;
    this.#ownsLoggers = loggers === undefined;
    this.#loggers = loggers ?? createLoggers(config.log);
    this.#jsonAccess = this.#loggers.accessSink === null ? null : new JsonAccessLog(this.#loggers.accessSink);
    this.#health = new HealthChecker(
      () => healthTargets(this.#tables.upstreams),
      probeTarget,
      (upstream, origin, up) => {
        if (this.#tables.upstreams.setHealth(upstream, origin, up)) {
          this.#loggers.app[up ? 'info' : 'warn'](
            { upstream, target: origin },
            up ? 'health check: target up' : 'health check: target down',
          );
        }
      },
    );
  }

  /** The application logger. */
  get logger(): Loggers['app'] {
    return this.#loggers.app;
  }

  /** Reopens log files (SIGUSR1 after logrotate). */
  reopenLogs(): void {
    this.#loggers.reopen();
    this.#loggers.app.info('log files reopened');
  }

  /** The config being served. */
  get config(): ResolvedConfig {
    return this.#tables.config;
  }

  /** Binds every listener; on a partial failure, closes what was opened and rethrows. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start an instance that is ${this.#state}`);
    this.#state = 'running';
    try {
      for (const [key, table] of this.#tables.listeners) {
        const listener = this.#newListener(table);
        this.#listeners.set(key, listener);
        await listener.listen();
      }
      await this.#startDns(this.#tables.upstreams);
      this.#health.start();
      const admin = this.#tables.config.admin;
      if (admin !== null) {
        this.#admin = new AdminServer(admin.listen, this.#adminControl());
        await this.#admin.listen();
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
    this.#loggers.app.info(
      { listen: this.addresses().servers.map((a) => a.key), config: this.#tables.config.hash },
      'sluice started',
    );
  }

  /**
   * Serves a new config without dropping requests: new listeners first, then the swap, then the
   * removed listeners and retired upstream targets are closed gracefully.
   */
  async reload(config: ResolvedConfig): Promise<void> {
    if (this.#state !== 'running') throw new Error(`cannot reload an instance that is ${this.#state}`);
    const { tables, retired } = compileTables(config, this.#tables);
    await this.#startDns(tables.upstreams);
    const opened: HttpListener[] = [];
    try {
      for (const [key, table] of tables.listeners) {
        if (this.#listeners.has(key)) continue;
        const listener = this.#newListener(table);
        await listener.listen();
        opened.push(listener);
        this.#listeners.set(key, listener);
      }
    } catch (err) {
      for (const l of opened) await l.close(0);
      for (const [key, l] of this.#listeners) if (opened.includes(l)) this.#listeners.delete(key);
      tables.upstreams.retire();
      throw err;
    }
    this.#tables.upstreams.retire();
    this.#tables = tables;
    const closing: Promise<void>[] = [];
    for (const [key, listener] of this.#listeners) {
      const table = tables.listeners.get(key);
      if (table) {
        listener.update(table);
      } else {
        this.#listeners.delete(key);
        closing.push(listener.close(config.shutdownTimeoutMs));
      }
    }
    closing.push(...retired.map((t: UpstreamTarget) => t.close()));
    this.#loggers.app.info({ config: config.hash }, 'config reloaded');
    await Promise.all(closing);
  }

  /** Stops accepting, drains requests in flight for up to `deadlineMs`, then closes everything. */
  async close(deadlineMs = this.#tables.config.shutdownTimeoutMs): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    this.#health.stop();
    await Promise.all([...this.#listeners.values()].map((l) => l.close(deadlineMs)));
    this.#listeners.clear();
    await this.#admin?.close();
    this.#admin = null;
    await this.#tables.upstreams.destroy();
    this.#state = 'closed';
    if (this.#ownsLoggers) this.#loggers.close();
  }

  /** The addresses being served (ports resolved when the config asked for port 0). */
  addresses(): SluiceAddresses {
    const servers: BoundAddress[] = [];
    for (const [key, listener] of this.#listeners) {
      const table = this.#tables.listeners.get(key);
      if (table) servers.push({ key, host: table.address.host, port: listener.port });
    }
    const adminAddress = this.#tables.config.admin?.listen;
    const admin =
      this.#admin && adminAddress
        ? { key: adminAddress.key, host: adminAddress.host, port: this.#admin.port }
        : null;
    return { servers, admin };
  }

  /** The `/api/status` document. */
  status(): Record<string, unknown> {
    const config = this.#tables.config;
    return {
      version: VERSION,
      uptime_s: (Date.now() - this.#startedAt) / 1000,
      pid: process.pid,
      workers: [{ pid: process.pid, uptime_s: process.uptime(), restarts: 0 }],
      config: { hash: config.hash, file: config.file },
      servers: config.servers.map((s) => ({
        name: s.name,
        listen: s.listen.map((a) => a.key),
        server_names: s.serverNames,
        routes: s.routes.map((r) => ({ name: r.name, action: r.action.kind })),
      })),
      ...this.upstreams(),
    };
  }

  /** The `/api/upstreams` document. */
  upstreams(): { upstreams: Record<string, unknown>[] } {
    const now = Date.now();
    return { upstreams: [...this.#tables.upstreams.all()].map((u) => u.describe(now)) };
  }

  /**
   * Stops sending new requests to a target (requests in flight finish); `enable` undoes it and
   * forgets the target's failures. Returns the target's origin, or null when there is no such target.
   */
  drainTarget(upstream: string, index: number): string | null {
    const t = this.#tables.upstreams.find(upstream)?.drain(index) ?? null;
    if (t !== null) this.#loggers.app.info({ upstream, target: t.origin }, 'target draining');
    return t?.origin ?? null;
  }

  /** Sends requests to a drained or failed target again. */
  enableTarget(upstream: string, index: number): string | null {
    const t = this.#tables.upstreams.find(upstream)?.enable(index) ?? null;
    if (t !== null) this.#loggers.app.info({ upstream, target: t.origin }, 'target enabled');
    return t?.origin ?? null;
  }

  async #startDns(set: UpstreamSet): Promise<void> {
    await set.startDns({
      onResolved: (upstream, host, origins) =>
        this.#loggers.app.info({ upstream, host, targets: origins }, 'dns targets updated'),
      onResolveError: (upstream, host, err) =>
        this.#loggers.app.warn(
          { upstream, host, err: String(err) },
          'dns resolution failed; keeping the previous targets',
        ),
    });
  }

  #newListener(table: ListenerTable): HttpListener {
    return new HttpListener(table, this.#observer, (err, context) =>
      this.#loggers.app.error({ err, ...context }, 'internal error while serving a request'),
    );
  }

  #adminControl() {
    return { status: () => this.status(), upstreams: () => this.upstreams() };
  }
}

/** The health-check view of an upstream set: every target of every upstream with a health_check. */
function healthTargets(set: UpstreamSet): HealthTarget[] {
  const out: HealthTarget[] = [];
  for (const u of set.all()) {
    const check = u.config.healthCheck;
    if (check === null) continue;
    for (const t of u.targets) {
      if (t.spec.down) continue;
      out.push({ upstream: u.name, origin: t.origin, hostPort: t.hostPort, check, health: t.health });
    }
  }
  return out;
}
