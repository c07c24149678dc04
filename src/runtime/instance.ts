/**
 * One running sluice data plane in this process: listeners, upstreams, handler modules and the
 * loggers for one resolved config, with start, in-place reload and graceful close. A worker
 * process runs one; `createSluice()` runs one in the caller's process (then it also runs the
 * health checks and the admin listener, which the primary runs in multi-process mode).
 *
 * Reload compiles the new config into fresh tables and swaps them into the listeners that stay;
 * listeners for new addresses are bound before any old one is closed, and upstream targets that
 * did not change keep their warm connection pools and health.
 */

import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { MetricsJson } from '../admin/admin-server.js';
import { AdminServer } from '../admin/admin-server.js';
import { AdminSlot } from '../admin/admin-slot.js';
import { redactConfig } from '../admin/redact-config.js';
import type { ResolvedAdmin, ResolvedConfig } from '../config/types.js';
import { VERSION } from '../core/version.js';
import { EgressServer } from '../egress/egress-server.js';
import { ERROR_CATALOGUE } from '../errors/catalogue.js';
import { type LoadedHandler, loadHandler } from '../handlers/load-handler.js';
import { HealthChecker } from '../health/active-checker.js';
import { logHealth } from '../health/health-log.js';
import { JsonAccessLog, writeAccessLine } from '../observability/access-log.js';
import { LogRateLimit } from '../observability/log-rate-limit.js';
import { createLoggers, type Loggers } from '../observability/logger.js';
import { ControlPlaneMetrics, DataPlaneMetrics, newRegistry } from '../observability/metrics.js';
import { Profiler } from '../observability/profiler.js';
import { SharedStateMetrics } from '../observability/shared-state-metrics.js';
import { Tracer } from '../observability/tracer.js';
import type { ResolveHost } from '../proxy/dns-refresher.js';
import { probeTarget } from '../proxy/health-probe.js';
import type { LocalFailureCode } from '../proxy/upstream-error.js';
import type { UpstreamSet } from '../proxy/upstream-set.js';
import type { UpstreamTarget } from '../proxy/upstream-target.js';
import { setUpstreamTlsLog } from '../proxy/upstream-tls.js';
import type { Exchange, ExchangeObserver } from '../server/exchange.js';
import {
  compileTables,
  type GatewayTables,
  handlerModules,
  type ListenerTable,
} from '../server/gateway-tables.js';
import { HttpListener, type ListenOptions } from '../server/http-listener.js';
import { isClientCertFailure } from '../server/tls-handshake-failure.js';
import type { TlsRefusal } from '../server/tls-terminator.js';
import { guardExternalMemory } from './external-memory-guard.js';
import { healthTargets } from './health-targets.js';
import { type GuardMode, ProcessGuards } from './process-guards.js';

/**
 * Lines a second, per process, about refused client certificates: enough to see who is refused and
 * why; a flood (a misconfigured fleet reconnecting, or a scan) is counted in
 * sluice_tls_handshake_failures_total and does not fill the log.
 */
const CLIENT_CERT_LINES_PER_SECOND = 10;

/**
 * The least time a stop gives the tracer to export its last spans, even when draining used the
 * whole deadline: a collector on the host or its network takes a batch in milliseconds, so the spans
 * of requests cut at the deadline still go out, well inside the primary's kill at the deadline + 5 s.
 */
const TRACER_FLUSH_MIN_MS = 500;

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
  readonly egress: BoundAddress | null;
}

/** How an instance runs: alone, or as a worker of a primary. */
export interface InstanceOptions {
  /** Loggers to use instead of creating them from the config (tests). */
  readonly loggers?: Loggers;
  /** Run active health checks here (alone) or receive results from the primary (worker). Default true. */
  readonly healthChecks?: boolean;
  /** Serve the admin listener here. Default true. */
  readonly admin?: boolean;
  /** How listeners bind (a worker may bind its own socket with SO_REUSEPORT). */
  readonly listen?: ListenOptions;
  /** Called once, at the first client connection to any of its servers. */
  readonly onFirstConnection?: () => void;
  /** How this process takes part in bans (alone: its own ban manager; worker: reports to the primary). */
  readonly guardMode?: GuardMode;
  /** Called as each handler module starts to load (a worker tells the primary). */
  readonly onHandlerLoading?: (module: string) => void;
  /** The primary's admin actions (a worker's instance has no admin listener; this one runs alone). */
  readonly reloadSource?: () => Promise<{
    ok: boolean;
    how: string;
    problems: readonly string[];
    config: string;
  }>;
  /** How `resolve: true` names are resolved (tests answer with addresses of their own). */
  readonly resolve?: ResolveHost;
}

/**
 * The least time handler `close()` hooks get when the drain used up shutdown_timeout: the primary
 * kills a stopping worker 5 s after the deadline, so 1 s leaves the rest for its exit.
 */
const HANDLER_CLOSE_MIN_MS = 1000;

/** A running data plane for one resolved config. */
export class SluiceInstance {
  #config: ResolvedConfig;
  /** Stops the external-memory watch (external-memory-guard.ts). */
  #stopMemoryGuard: (() => void) | null = null;
  #tables: GatewayTables | null = null;
  readonly #listeners = new Map<string, HttpListener>();
  readonly #handlers = new Map<string, LoadedHandler>();
  readonly #admin = new AdminSlot((settings) => this.#newAdmin(settings));
  /** The egress forward proxy, when `egress:` is set (in every worker, like the servers). */
  #egress: EgressServer | null = null;
  readonly #loggers: Loggers;
  readonly #ownsLoggers: boolean;
  readonly #options: InstanceOptions;
  readonly #startedAt = Date.now();
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  readonly #jsonAccess: JsonAccessLog | null;
  readonly #health: HealthChecker | null;
  /** Requests answered by this instance (for the spread of load across workers). */
  #served = 0;
  /** The data-plane metrics (and, alone, the control-plane ones) of this process. */
  readonly registry: Registry;
  readonly #metrics: DataPlaneMetrics;
  readonly #tracer: Tracer | null;
  readonly profiler = new Profiler();
  /** Bans, rate-limit buckets and strikes of this process. */
  readonly guards: ProcessGuards;
  readonly #observer: ExchangeObserver;
  /** onFirstConnection, at most once for all the listeners (those of a reload included). */
  readonly #firstConnection = (): void => {
    const notify = this.#options.onFirstConnection;
    if (notify === undefined || this.#connected) return;
    this.#connected = true;
    notify();
  };
  #connected = false;
  #makeObserver(): ExchangeObserver {
    const metrics = this.#metrics;
    const guards = this.guards;
    return {
      tracer: this.#tracer,
      guards,
      finished: (x: Exchange) => {
        this.#served++;
        const server = x.server;
        const ban = x.guards?.ban ?? null;
        if (ban?.statuses.has(x.status) && strikable(x)) guards.strike(ban.scope, ban.client(x.remoteAddr));
        if (x.errorCode === 'SLUICE_E_AUTH_RATE_LIMITED' && server !== null)
          metrics.rateLimited.labels(server.name).inc();
        if (server !== null) {
          metrics.request(
            x.route ?? server,
            server.name,
            x.route?.name ?? '',
            x.method,
            x.status,
            x.durationMs / 1000,
          );
        }
        if (this.#jsonAccess !== null) this.#jsonAccess.write(x);
        else if (this.#loggers.access !== null) writeAccessLine(this.#loggers.access, x);
      },
      attemptDone: (key, upstream, target, code, seconds) =>
        metrics.attempt(key, upstream, target, code, seconds),
      retrying: (x: Exchange) => metrics.retry(x.upstream ?? ''),
      targetDisabled: (x: Exchange, target: string) => {
        this.#loggers.app.warn(
          {
            upstream: x.upstream,
            target,
            fail_timeout_ms: this.#tables?.upstreams.find(x.upstream ?? '')?.config.failTimeoutMs,
          },
          'upstream target temporarily disabled',
        );
      },
      localFailure: (x: Exchange, code: LocalFailureCode, err: Error) =>
        this.#limitedLine(
          this.#localFailureLines,
          'error',
          {
            code,
            hint: ERROR_CATALOGUE[code].hint,
            upstream: x.upstream,
            target: x.target,
            request_id: x.requestId,
            err,
          },
          'out of file descriptors for a connection to an upstream target: answered 503, no target counted as failed',
        ),
      handlerError: (x: Exchange, err: unknown) => {
        // Said as the client sees it: a 500 only when nothing had been sent.
        const res = x.res;
        if (x.errorCode === 'SLUICE_E_HANDLER_TIMEOUT') {
          // What abandoning a handler does to it (its request.signal aborted, a fetch() it passed
          // the signal to rejected): the 504 and its access line said what happened.
          this.#loggers.app.debug(
            { err, request_id: x.requestId, route: x.route?.name ?? null, path: x.path },
            'handler failed after handler_timeout had answered 504 in its place',
          );
          return;
        }
        this.#loggers.app.error(
          { err, request_id: x.requestId, trace_id: x.traceId, route: x.route?.name ?? null, path: x.path },
          res.writableFinished || (res.writableEnded && !res.destroyed)
            ? 'handler threw after its answer was complete; the answer stands'
            : res.headersSent || x.rawAnswer
              ? 'handler failed after its answer started; the answer is broken'
              : res.destroyed
                ? 'handler failed; its client had gone'
                : 'handler failed; answered 500',
        );
      },
    };
  }

  constructor(config: ResolvedConfig, options: InstanceOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#ownsLoggers = options.loggers === undefined;
    this.#loggers = options.loggers ?? createLoggers(config.log);
    this.#jsonAccess = this.#loggers.accessSink === null ? null : new JsonAccessLog(this.#loggers.accessSink);
    this.registry = newRegistry();
    this.#metrics = new DataPlaneMetrics(
      this.registry,
      () => this.connections(),
      () => this.#loggers.droppedLines(),
    );
    if (options.admin !== false) {
      // Alone, this process is also the control plane.
      new ControlPlaneMetrics(this.registry, {
        workers: () => 1,
        targets: () => this.#targetStates(),
        bans: () => this.guards.all().length,
      });
    }
    const tracing = config.tracing;
    this.#tracer =
      tracing.otlpEndpoint === null
        ? null
        : new Tracer({ ...tracing, otlpEndpoint: tracing.otlpEndpoint }, (obj, msg, level = 'warn') =>
            this.#loggers.app[level](obj, msg),
          );
    setUpstreamTlsLog({
      reloadFailed: (err, info) =>
        this.#loggers.app.error(
          { err, ...info },
          'upstream TLS files not reloaded; the previous ones stay in use',
        ),
      copyInUse: (err, info) =>
        this.#loggers.app.warn(
          {
            err,
            event: 'tls_copy_in_use',
            ...info,
            detail:
              'the upstream TLS files cannot be used as this worker starts; it uses the copies the node loaded last, and loads the files as soon as they change',
          },
          'upstream TLS files cannot be used; using the copies the node loaded last',
        ),
    });
    const stateMetrics = new SharedStateMetrics(this.registry, () => this.guards.redis);
    // Alone, this process is the node's view of Redis; a worker's gauges would be summed.
    if (options.admin !== false) stateMetrics.showUp(config.state.redis !== null);
    this.guards = new ProcessGuards(config, this.#loggers.app, options.guardMode ?? { kind: 'alone' }, {
      failure: (reason) => stateMetrics.failure(reason),
    });
    this.#observer = this.#makeObserver();
    this.#health =
      options.healthChecks === false
        ? null
        : new HealthChecker(
            () => (this.#tables === null ? [] : healthTargets(this.#tables.upstreams)),
            probeTarget,
            (upstream, origin, up, reason) => this.applyHealth(upstream, origin, up, reason),
          );
  }

  /** The application logger. */
  get logger(): Loggers['app'] {
    return this.#loggers.app;
  }

  /** The config being served. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** Requests answered so far. */
  get served(): number {
    return this.#served;
  }

  /** Reopens log files (SIGUSR1 after logrotate); a file that cannot be is logged as an error. */
  reopenLogs(): void {
    const failures = this.#loggers.reopen();
    for (const { file, reason } of failures) {
      this.#loggers.app.error(
        { file, reason },
        'log file not reopened; its lines go on to the file that was open (moved or not)',
      );
    }
    if (failures.length === 0) this.#loggers.app.info('log files reopened');
  }

  /** Loads handlers, binds every listener; on a partial failure, closes what was opened and rethrows. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start an instance that is ${this.#state}`);
    this.#state = 'running';
    try {
      this.#stopMemoryGuard = guardExternalMemory();
      await this.profiler.startHeapSampling();
      await this.#loadHandlers(this.#config);
      const { tables } = compileTables(this.#config, undefined, this.#handlers);
      this.#tables = tables;
      for (const [key, table] of tables.listeners) {
        const listener = this.#newListener(table);
        this.#listeners.set(key, listener);
        await listener.listen();
      }
      await this.#startDns(tables.upstreams);
      await this.#startEgress(this.#config);
      this.#health?.start();
      if (this.#options.admin !== false) await this.#admin.start(this.#config.admin);
    } catch (err) {
      await this.close(0);
      throw err;
    }
    this.#loggers.app.info(
      // The bans it enforces from its first request (a worker gets the node's with its config).
      {
        listen: this.addresses().servers.map((a) => a.key),
        config: this.#config.hash,
        bans: this.guards.all().length,
      },
      // A worker's start is one of several; the primary announces the whole.
      this.#options.admin === false ? 'worker ready' : 'sluice started',
    );
  }

  /** The admin listener of a lone instance (not yet bound). */
  #newAdmin(settings: ResolvedAdmin): AdminServer {
    return new AdminServer(
      settings,
      {
        status: async () => this.status(),
        upstreams: async () => this.upstreams(),
        metrics: async () => ({
          contentType: this.registry.contentType,
          body: await this.registry.metrics(),
        }),
        metricsJson: async () => (await this.registry.getMetricsAsJSON()) as unknown as MetricsJson,
        cpuProfile: (seconds, _worker, gone) => {
          gone?.addEventListener('abort', () => this.profiler.endCpu(), { once: true });
          return this.profiler.cpu(seconds);
        },
        heapProfile: () => this.profiler.heap(),
        handles: async () => ({ workers: [this.handles()] }),
        bans: async () => this.guards.all(),
        unban: (address) => this.guards.unban(address),
        config: async () => redactConfig(this.#config),
        reload: async () =>
          this.#options.reloadSource?.() ??
          Promise.resolve({
            ok: false,
            how: 'refused',
            problems: ['this sluice has no config file to reload'],
            config: this.#config.hash,
          }),
        setTarget: async (action, upstream, index) =>
          action === 'drain' ? this.drainTarget(upstream, index) : this.enableTarget(upstream, index),
      },
      this.#loggers.app,
    );
  }

  /**
   * Serves a new config without dropping requests: new listeners first, then the swap, then the
   * removed listeners and retired upstream targets are closed gracefully. Handler modules already
   * loaded stay loaded (a code change needs new processes: the primary rolls the workers).
   */
  async reload(config: ResolvedConfig): Promise<void> {
    const current = this.#tables;
    if (this.#state !== 'running' || current === null) {
      throw new Error(`cannot reload an instance that is ${this.#state}`);
    }
    // A new admin address is bound first: one that cannot be fails the reload with nothing changed.
    const admin =
      this.#options.admin === false ? null : await this.#admin.prepare(this.#config.admin, config.admin);
    let compiled: ReturnType<typeof compileTables>;
    try {
      await this.#loadHandlers(config);
      compiled = compileTables(config, current, this.#handlers);
    } catch (err) {
      await admin?.abort();
      throw err;
    }
    const { tables, retired } = compiled;
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
      await admin?.abort();
      throw err;
    }
    current.upstreams.retire();
    // The state of the targets now, not as it was when the tables were built: a drain, an enable or
    // a check result may have come while DNS answered and new listeners were bound.
    tables.upstreams.inherit(current.upstreams);
    this.#tables = tables;
    this.#config = config;
    admin?.commit();
    this.guards.reload(config);
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
    // A new egress address is listening before the reload is done; the old one drains.
    closing.push((await this.#reloadEgress(config)).drained);
    this.#loggers.app.info(
      { config: config.hash },
      this.#options.admin === false ? 'worker reloaded' : 'config reloaded',
    );
    // The new tables serve from here on: what the old ones leave (listeners no longer configured,
    // targets no longer listed, an egress address given up) drains in the background. Waiting for
    // it held the reload's outcome for as long as the longest request to a removed target. A
    // close() waits for it too, so a stop does not cut those requests.
    const drained = Promise.all(closing)
      .catch((err: unknown) => this.#loggers.app.error({ err }, 'closing what a reload left behind failed'))
      .then(() => {
        this.#leftovers.delete(drained);
      });
    this.#leftovers.add(drained);
  }

  /** What reloads left draining (see reload). */
  readonly #leftovers = new Set<Promise<void>>();

  /**
   * Stops accepting, drains requests in flight for up to `deadlineMs`, then closes everything. A
   * second call waits for the first (a worker asked twice to stop exited mid-drain).
   */
  close(deadlineMs = this.#config.shutdownTimeoutMs): Promise<void> {
    this.#closing ??= this.#close(deadlineMs);
    return this.#closing;
  }

  #closing: Promise<void> | null = null;

  async #close(deadlineMs: number): Promise<void> {
    if (this.#state === 'closed') return;
    this.#stopMemoryGuard?.();
    const deadline = performance.now() + deadlineMs;
    this.#state = 'closing';
    this.#health?.stop();
    const leftovers = Promise.all(this.#leftovers);
    // One deadline for all of them, side by side: one after the other, a request on a server and
    // a tunnel on the egress listener took twice shutdown_timeout, and the primary's kill (at the
    // deadline plus 5 s) came before the egress had logged its cuts.
    await Promise.all([
      ...[...this.#listeners.values()].map((l) => l.close(deadlineMs)),
      this.#egress?.close(deadlineMs),
      // A removed target's requests have no deadline of their own.
      Promise.race([leftovers, new Promise((r) => setTimeout(r, deadlineMs).unref())]),
    ]);
    this.#listeners.clear();
    this.#egress = null;
    await this.#admin.close();
    await this.#tables?.upstreams.destroy();
    // The last spans go out beside the handlers' close() hooks, within what is left of the deadline
    // (at least TRACER_FLUSH_MIN_MS): awaited first and unbounded, a collector down or hanging held
    // the stop 6-12 s, and the primary's kill (the deadline plus 5 s) came before any close() ran.
    const flushMs = Math.max(deadline - performance.now(), TRACER_FLUSH_MIN_MS);
    const closeMs = Math.max(deadline - performance.now(), HANDLER_CLOSE_MIN_MS);
    await Promise.all([this.#tracer?.shutdown(flushMs), this.#closeModules(closeMs)]);
    this.#state = 'closed';
    if (this.#ownsLoggers) await this.#loggers.close();
  }

  /** Closes the guards and the profiler, then calls the handler modules' close() (#closeHandlers). */
  async #closeModules(limitMs: number): Promise<void> {
    await this.guards.close();
    await this.profiler.close();
    await this.#closeHandlers(limitMs);
  }

  /**
   * Calls every handler module's `close()` side by side, and waits for them for `limitMs` at most.
   * One after the other, a hook that never settled held the stop until the primary's kill (the
   * deadline plus 5 s), unlogged, and the hooks after it were never called.
   */
  async #closeHandlers(limitMs: number): Promise<void> {
    const log = this.#loggers.app;
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limitMs);
      timer.unref();
    });
    await Promise.all(
      [...this.#handlers.values()].map(async (handler) => {
        const closing = handler.close().then(
          () => 'closed' as const,
          (err: unknown) => {
            log.error({ err, module: handler.module }, 'handler close() failed');
            return 'failed' as const;
          },
        );
        if ((await Promise.race([closing, timeUp])) === 'timeout') {
          log.warn(
            { module: handler.module, waited_ms: limitMs },
            'handler close() did not settle in time; stopping without it',
          );
        }
      }),
    );
    clearTimeout(timer);
  }

  async #startEgress(config: ResolvedConfig): Promise<void> {
    if (config.egress === null) return;
    const egress = new EgressServer(config.egress, this.#loggers.app);
    await egress.listen();
    this.#egress = egress;
  }

  /** New policies in place; a moved, added or removed egress listener opened or closed. */
  /**
   * Swaps the egress proxy's policies, or its listener: resolves once a new one listens, with the
   * old one's drain (wrapped: a promise resolved with a promise would wait for it).
   */
  async #reloadEgress(config: ResolvedConfig): Promise<{ drained: Promise<void> }> {
    const current = this.#egress;
    if (current !== null && config.egress !== null && current.listenKey === config.egress.listen.key) {
      current.update(config.egress);
      return { drained: Promise.resolve() };
    }
    // The new listener first (no gap for clients), then the old one drains.
    this.#egress = null;
    try {
      await this.#startEgress(config);
    } catch (err) {
      this.#loggers.app.error({ err }, 'egress listener not started');
    }
    return { drained: current?.close(config.shutdownTimeoutMs) ?? Promise.resolve() };
  }

  /** Applies an active health-check result (from this instance's checker, or from the primary). */
  applyHealth(upstream: string, origin: string, up: boolean, reason: string | null = null): void {
    if (this.#tables?.upstreams.setHealth(upstream, origin, up) && this.#health !== null)
      logHealth(this.#loggers.app, upstream, origin, up, reason);
  }

  /** The addresses being served (ports resolved when the config asked for port 0). */
  addresses(): SluiceAddresses {
    const servers: BoundAddress[] = [];
    for (const [key, listener] of this.#listeners) {
      const table = this.#tables?.listeners.get(key);
      if (table) servers.push({ key, host: table.address.host, port: listener.port });
    }
    const adminAddress = this.#config.admin?.listen;
    const admin =
      this.#admin.server && adminAddress
        ? { key: adminAddress.key, host: adminAddress.host, port: this.#admin.server.port }
        : null;
    const egressAddress = this.#config.egress?.listen;
    const egress =
      this.#egress && egressAddress
        ? { key: egressAddress.key, host: egressAddress.host, port: this.#egress.port }
        : null;
    return { servers, admin, egress };
  }

  /** Every target with whether it can take requests, for `sluice_upstream_target_up`. */
  #targetStates(): { upstream: string; target: string; up: boolean }[] {
    if (this.#tables === null) return [];
    const now = Date.now();
    return [...this.#tables.upstreams.all()].flatMap((u) =>
      u.targets.map((t) => ({
        upstream: u.name,
        target: t.origin,
        up: ['up', 'backup'].includes(u.state(t, now)),
      })),
    );
  }

  /** Active handles and requests in flight, for `/debug/handles`. */
  handles(): Record<string, unknown> {
    const resources: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
    const now = performance.now();
    return {
      pid: process.pid,
      resources,
      inflight: [...this.#listeners.values()].flatMap((l) =>
        [...l.active()].map((x) => ({
          method: x.method,
          path: x.path,
          route: x.route?.name ?? null,
          upstream: x.upstream,
          target: x.target,
          age_ms: Math.round(now - x.startedAt),
          request_id: x.requestId,
        })),
      ),
    };
  }

  /** Open client connections across listeners. */
  connections(): number {
    let n = 0;
    for (const l of this.#listeners.values()) n += l.connections;
    return n;
  }

  /** The `/api/status` document. */
  status(): Record<string, unknown> {
    const config = this.#config;
    return {
      version: VERSION,
      uptime_s: (Date.now() - this.#startedAt) / 1000,
      pid: process.pid,
      workers: [{ pid: process.pid, uptime_s: process.uptime(), restarts: 0, requests: this.#served }],
      config: { hash: config.hash, file: config.file },
      state: { redis: this.guards.redis },
      servers: describeServers(config),
      ...this.upstreams(),
    };
  }

  /** The `/api/upstreams` document. */
  upstreams(): { upstreams: Record<string, unknown>[] } {
    const now = Date.now();
    return {
      upstreams: this.#tables === null ? [] : [...this.#tables.upstreams.all()].map((u) => u.describe(now)),
    };
  }

  /**
   * Stops sending new requests to a target (requests in flight finish); `enable` undoes it and
   * forgets the target's failures. Returns the target's origin, or null when there is no such target.
   */
  drainTarget(upstream: string, index: number): string | null {
    return this.#setTargetAt('drain', upstream, index);
  }

  /** Sends requests to a drained or failed target again. */
  enableTarget(upstream: string, index: number): string | null {
    return this.#setTargetAt('enable', upstream, index);
  }

  #setTargetAt(action: 'drain' | 'enable', upstream: string, index: number): string | null {
    const origin = this.#tables?.upstreams.find(upstream)?.targets[index]?.origin;
    return origin === undefined ? null : this.setTargetByOrigin(action, upstream, origin);
  }

  /** Drains or enables the target of a URL (as the primary names it to its workers); its origin, or null. */
  setTargetByOrigin(action: 'drain' | 'enable', upstream: string, origin: string): string | null {
    const u = this.#tables?.upstreams.find(upstream);
    const t = (action === 'drain' ? u?.drain(origin) : u?.enable(origin)) ?? null;
    if (t !== null)
      this.#loggers.app.info(
        { upstream, target: t.origin },
        action === 'drain' ? 'target draining' : 'target enabled',
      );
    return t?.origin ?? null;
  }

  async #loadHandlers(config: ResolvedConfig): Promise<void> {
    for (const module of handlerModules(config)) {
      if (this.#handlers.has(module)) continue;
      this.#options.onHandlerLoading?.(module);
      try {
        this.#handlers.set(module, await loadHandler(module));
      } catch (err) {
        // The message says what and where; the stack (the module's error, as `cause`) is for
        // `log.level: debug`.
        this.#loggers.app.debug({ err, module }, 'handler module failed to load');
        throw err;
      }
    }
  }

  async #startDns(set: UpstreamSet): Promise<void> {
    await set.startDns({
      ...(this.#options.resolve === undefined ? {} : { resolve: this.#options.resolve }),
      onResolved: (upstream, host, origins) =>
        this.#loggers.app.info({ upstream, host, targets: origins }, 'dns targets updated'),
      onResolveError: (upstream, host, err, streak) =>
        this.#loggers.app.warn(
          { upstream, host, err, failures: streak.failures, failed_for_ms: streak.failedForMs },
          'dns resolution failed; keeping the previous targets',
        ),
      onResolveRecovered: (upstream, host, streak) =>
        this.#loggers.app.info(
          { upstream, host, failures: streak.failures, failed_for_ms: streak.failedForMs },
          'dns resolution recovered',
        ),
    });
  }

  #newListener(table: ListenerTable): HttpListener {
    const log = this.#loggers.app;
    return new HttpListener(
      table,
      this.#observer,
      (err, context) => {
        // A certificate that cannot be (re)loaded is an operator's problem, not a request's.
        if (context.event === 'tls_reload_failed') {
          // `err` through pino's serializer (type, message, stack, OpenSSL's code), as every
          // other line with an error logs it; String(err) made it "Error: …", not the documented object.
          log.error({ err, ...context }, 'TLS certificate not reloaded; the previous one stays in use');
        } else {
          log.error({ err, ...context }, 'internal error while serving a request');
        }
      },
      this.#options.listen,
      {
        tlsReloaded: (info) => log.info(info, 'TLS certificate reloaded'),
        tlsCopyInUse: (err, info) =>
          log.warn(
            { err, ...info },
            'TLS certificate files cannot be used; serving the copy the node loaded last',
          ),
        tlsRefused: (refusal) => this.#tlsRefused(refusal),
        h2Refused: (info) => this.#h2Refused(info),
        h2StreamRefused: (reason) => this.#metrics.http2StreamsRefused.labels(reason).inc(),
        firstConnection: this.#firstConnection,
        staleTlsGraceMs: () => this.#config.shutdownTimeoutMs,
        tlsClientCertsChanged: (info) =>
          log.info(
            info,
            'TLS client-certificate policy changed: connections checked under the old one are closed after their answers',
          ),
      },
    );
  }

  /** Lines about HTTP/2 connections closed for Rapid Reset, as many a second as client certificates. */
  readonly #h2RefusedLines = new LogRateLimit(CLIENT_CERT_LINES_PER_SECOND);

  /**
   * An HTTP/2 connection closed with ENHANCE_YOUR_CALM for opening streams over the concurrent
   * limit while its earlier ones were still being let go (Rapid Reset): one warning, rate-limited,
   * in place of an access line for each of the streams refused.
   */
  #h2Refused(info: { listener: string; remoteAddr: string; refused: number }): void {
    this.#limitedLine(
      this.#h2RefusedLines,
      'warn',
      {
        event: 'http2_streams_refused',
        listener: info.listener,
        remote_addr: info.remoteAddr,
        refused: info.refused,
      },
      'HTTP/2 client kept opening streams over the concurrent limit; connection closed (ENHANCE_YOUR_CALM)',
    );
  }

  /**
   * Lines about upstream connections this host could not open (out of descriptors, of local ports):
   * as many a second as client certificates; every such request has its access line as well.
   */
  readonly #localFailureLines = new LogRateLimit(CLIENT_CERT_LINES_PER_SECOND);

  /**
   * Writes a line when `limit` lets it, saying how many of its kind were left out before it
   * (`suppressed`). Its fields are built even when it is left out: these are refusals, not requests.
   */
  #limitedLine(
    limit: LogRateLimit,
    level: 'info' | 'warn' | 'error',
    fields: Record<string, unknown>,
    msg: string,
  ): void {
    const suppressed = limit.take();
    if (suppressed === null) return;
    this.#loggers.app[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }

  /** Lines about refused client certificates: a flood of refused clients writes this many a second. */
  readonly #clientCertLines = new LogRateLimit(CLIENT_CERT_LINES_PER_SECOND);

  /**
   * Counts a TLS connection refused before its first request, and logs a refused client
   * certificate (nginx: "client SSL certificate verify error", at info), at most
   * CLIENT_CERT_LINES_PER_SECOND lines a second; the next line written says how many were left out.
   */
  #tlsRefused(r: TlsRefusal): void {
    this.#metrics.tlsHandshakeFailures.labels(r.reason).inc();
    if (!isClientCertFailure(r.reason)) return;
    this.#limitedLine(
      this.#clientCertLines,
      'info',
      {
        event: 'tls_client_cert_refused',
        listener: r.listener,
        remote_addr: r.remoteAddr,
        server: r.server,
        sni: r.sni,
        reason: r.reason,
        tls_error: r.code,
      },
      r.reason === 'client_cert_missing'
        ? 'client certificate required and not sent; connection refused'
        : 'client certificate did not verify; connection refused',
    );
  }
}

/** The servers of a config as `/api/status` shows them. */
export function describeServers(config: ResolvedConfig): Record<string, unknown>[] {
  return config.servers.map((s) => ({
    name: s.name,
    listen: s.listen.map((a) => a.key),
    server_names: s.serverNames,
    routes: s.routes.map((r) => ({ name: r.name, action: r.action.kind })),
  }));
}

/**
 * Whether an answer may strike its client. A trusted proxy's own address never does: an answer
 * refused before its X-Forwarded-For was read (a head the parser refused) names only the proxy,
 * and banning it would refuse every client behind it.
 */
function strikable(x: Exchange): boolean {
  return x.remoteAddr !== '' && x.server?.trusted?.has(x.remoteAddr) !== true;
}
