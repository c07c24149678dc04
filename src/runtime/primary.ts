/**
 * The primary process: it validates configs, forks and supervises the workers, rolls them on
 * reload, runs the active health checks once for the node and feeds every worker, serves the
 * admin listener, and writes the pid file. It serves no traffic itself.
 *
 *   start ─▶ fork N workers ─▶ each: drop privileges, load handlers, listen ─▶ 'ready'
 *   reload ─▶ validate ─▶ swap in place (routes, upstreams) | roll (new workers ready ─▶ old drain)
 *   crash ─▶ restart with backoff ─▶ 5 start-up crashes in 60 s: crash loop, reported, not restarted
 *            (the restarted worker gets the primary's copies of the TLS files: tls-file-keeper.ts)
 *   stop ─▶ every worker drains (shutdown_timeout) ─▶ exit
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AdminRequestError, AdminServer } from '../admin/admin-server.js';
import { type AdminChange, AdminSlot } from '../admin/admin-slot.js';
import type { MetricsJson } from '../admin/dashboard-stats.js';
import { redactConfig } from '../admin/redact-config.js';
import type { ConfigResult } from '../config/load.js';
import { formatProblem } from '../config/problem.js';
import type { ResolvedAdmin, ResolvedConfig } from '../config/types.js';
import { timerDelay } from '../core/duration.js';
import { keptProblems } from '../core/kept-problems.js';
import type { TlsFileCopies } from '../core/tls-file-copies.js';
import { VERSION } from '../core/version.js';
import { ERROR_CATALOGUE, type ErrorCode, isErrorCode } from '../errors/catalogue.js';
import { SluiceError } from '../errors/sluice-error.js';
import { HealthChecker } from '../health/active-checker.js';
import { logHealth } from '../health/health-log.js';
import { ClusterMetrics } from '../observability/cluster-metrics.js';
import { createLoggers, type Loggers } from '../observability/logger.js';
import { ControlPlaneMetrics, newRegistry } from '../observability/metrics.js';
import { ProfilerBusyError } from '../observability/profiler.js';
import { SharedStateMetrics } from '../observability/shared-state-metrics.js';
import { probeTarget } from '../proxy/health-probe.js';
import { UpstreamSet } from '../proxy/upstream-set.js';
import { BanManager } from '../security/ban-manager.js';
import { SharedState } from '../security/shared-state.js';
import { banRules } from '../server/gateway-tables.js';
import { CrashTracker } from './crash-tracker.js';
import { DescriptorWatch } from './descriptor-watch.js';
import { healthTargets } from './health-targets.js';
import { describeServers } from './instance.js';
import { type FromWorker, isFromWorker, type ToWorker, type WorkerStats } from './ipc.js';
import { listenFacts, useReusePort } from './listen-mode.js';
import { prepareWorkerLogFiles } from './log-files.js';
import { PidFile, type PidFileChange } from './pid-file.js';
import { planReload } from './reload-plan.js';
import { rootHandlersError } from './root-handlers.js';
import { TlsFileKeeper } from './tls-file-keeper.js';

/** How long a new worker may take to load its handlers and listen. */
const READY_TIMEOUT_MS = 30_000;
/**
 * How long a start waits for the bans in Redis: above the 2 s connect timeout, so a Redis that is
 * only slow to accept is waited for, as is one that accepts but does not answer yet (its commands'
 * 250 ms timeouts are no verdict); one that refuses connections ends the wait at once.
 */
const START_BANS_WAIT_MS = 3000;
/** How long the primary waits for a worker to answer a query. */
const QUERY_TIMEOUT_MS = 1000;

/** The outcome of a reload, as logged, returned and shown by /api/status. */
export interface ReloadOutcome {
  /**
   * The number of the reload request this answers, counted from 1 as requests arrive (SIGHUP,
   * `POST /api/reload`); `reloads.requested` in /api/status is the latest number given out.
   */
  readonly request: number;
  readonly ok: boolean;
  readonly at: string;
  readonly config: string;
  readonly how: 'swap' | 'roll' | 'refused' | 'failed';
  readonly problems: readonly string[];
  /**
   * How many problems `problems` leaves out: none in the answer to `POST /api/reload`; past the
   * first KEPT_PROBLEMS where the outcome is kept (/api/status) and logged.
   */
  readonly problems_omitted: number;
  /** The new file's warnings (as `sluice check` prints them), whatever the outcome. */
  readonly warnings: readonly string[];
  /** How many warnings `warnings` leaves out, as `problems_omitted` counts problems. */
  readonly warnings_omitted: number;
}

/** An outcome as the reload steps give it to `#record`. */
type Recorded = Omit<
  ReloadOutcome,
  'at' | 'config' | 'request' | 'problems_omitted' | 'warnings' | 'warnings_omitted'
>;

interface Slot {
  readonly index: number;
  worker: Worker | null;
  startedAt: number;
  restarts: number;
  readonly crashes: CrashTracker;
  state: 'starting' | 'ready' | 'restarting' | 'crash-loop' | 'retired';
  timer: NodeJS.Timeout | null;
  /** The config its worker was last given. */
  config: ResolvedConfig;
}

/**
 * How long a dead worker's IPC channel is waited for: it closes as soon as its last bytes are read
 * (milliseconds), unless something the worker started still holds it.
 */
const CHANNEL_CLOSE_WAIT_MS = 1000;

/** Resolves once a worker's IPC channel has closed (every message it sent has been read). */
function channelClosed(worker: Worker): Promise<void> {
  if (!worker.isConnected()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, CHANNEL_CLOSE_WAIT_MS);
    timer.unref();
    worker.once('disconnect', done);
    function done(): void {
      clearTimeout(timer);
      worker.off('disconnect', done);
      resolve();
    }
  });
}

/**
 * A reload problem from an error found while applying a config (an address in use, handlers as
 * root), as config problems read: `CODE message (hint: HINT)`; `fallback` for an error without a code.
 */
function errorProblem(err: unknown, fallback: ErrorCode, prefix = ''): string {
  const e =
    err instanceof SluiceError
      ? err
      : new SluiceError(fallback, err instanceof Error ? err.message : String(err));
  return `${e.code} ${prefix}${e.message} (hint: ${e.hint})`;
}

/**
 * A worker that did not report ready within READY_TIMEOUT_MS, at the start or a reload alike: named
 * with the handler module it was loading. A module's loading ends when its top-level code does, so
 * one that never finishes awaits something that never settles.
 */
function notReady(pid: number | undefined, loading: string | null): SluiceError {
  const after = `${READY_TIMEOUT_MS / 1000} s`;
  if (loading === null)
    return new SluiceError('SLUICE_E_RUNTIME_WORKER', `worker ${pid} not ready after ${after}`);
  return new SluiceError(
    'SLUICE_E_RUNTIME_WORKER',
    `worker ${pid} not ready after ${after}: handler ${loading} did not finish loading`,
    {
      hint: `a handler module must finish loading within ${after}; one that never does probably has a top-level await on a promise that never settles (a connection that never opens, a missing resolve)`,
    },
  );
}

/** A reload problem for an error sluice did not expect, in the form of the others: code, message, hint. */
function unexpectedProblem(err: unknown, file: string | null = null): string {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `${file === null ? '' : `${file}: `}SLUICE_E_RUNTIME_INTERNAL ${message} (hint: an error in sluice itself, with its stack in the log; the running config stays)`;
}

/** Worker counts from `workers:`. */
export function workerCount(config: ResolvedConfig): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** What the primary needs besides its config. */
export interface PrimaryOptions {
  /** The config file as the user named it (for log lines), or null. */
  readonly file: string | null;
  /** Reads the config file again for a reload; null when the config did not come from a file. */
  readonly reloadSource: (() => Promise<ConfigResult>) | null;
  /** Called when every worker is in a crash loop: nothing is serving. */
  readonly onFatal: (err: SluiceError) => void;
}

/** The supervising process of a multi-process sluice. */
export class Primary {
  #config: ResolvedConfig;
  readonly #options: PrimaryOptions;
  readonly #loggers: Loggers;
  #slots: Slot[] = [];
  readonly #retiring = new Set<Worker>();
  /**
   * Workers forked by a roll or a restart and not yet in a slot or draining, with the config they
   * started on once they reported ready (null before): a stop must end them too, or the primary
   * exits under them, and what the slots are told meanwhile (drains, bans, check results) they
   * must be told as well, or they serve without it once they take a slot.
   */
  readonly #starting = new Map<Worker, ResolvedConfig | null>();
  /** The workers that have taken a client connection: their crashes never make a crash loop. */
  readonly #serving = new WeakSet<Worker>();
  #upstreams: UpstreamSet;
  readonly #health: HealthChecker;
  /** Copies of the TLS files of the configs in use, for the workers that replace dead ones. */
  readonly #tlsFiles = new TlsFileKeeper();
  readonly #admin = new AdminSlot((settings) => this.#newAdmin(settings));
  readonly #pidFile = new PidFile((file, reason) =>
    this.#loggers.app.warn({ file, reason }, 'cannot remove pid_file; left in place'),
  );
  #reusePort = false;
  #stopping = false;
  #reloading: Promise<ReloadOutcome> | null = null;
  /**
   * The config file being read for a reload, when one is: one at a time, in the order asked. Read
   * off the primary's thread (load-off-thread.ts), two loads could finish out of order, and an older
   * file that took longer to check replaced the newer one that had been reported reloaded.
   */
  #loading: Promise<unknown> = Promise.resolve();
  /** Settles when a stop begins: a reload still reading its file is then refused at once. */
  #stopBegun: () => void = () => undefined;
  readonly #stopped = new Promise<'stopping'>((resolve) => {
    this.#stopBegun = () => resolve('stopping');
  });
  #lastReload: ReloadOutcome | null = null;
  readonly #reloads = { success: 0, failure: 0 };
  readonly #startedAt = Date.now();
  #messageId = 0;
  readonly #pending = new Map<number, (message: FromWorker) => void>();
  /** The primary's own metrics (workers, restarts, reloads, target health, process). */
  readonly #registry = newRegistry();
  readonly #control: ControlPlaneMetrics;
  readonly #cluster = new ClusterMetrics();
  #metricsTimer: NodeJS.Timeout | null = null;
  /** Says when the primary itself is out of descriptors (descriptor-watch.ts). */
  readonly #descriptors = new DescriptorWatch({
    onShort: (err) =>
      this.#loggers.app.error(
        {
          code: 'SLUICE_E_RUNTIME_FD_LIMIT',
          hint: ERROR_CATALOGUE.SLUICE_E_RUNTIME_FD_LIMIT.hint,
          reason: err.code,
        },
        'primary out of file descriptors: the connections it accepts (every server in round-robin mode, the admin API) are closed at once until some of its own close',
      ),
    onRecovered: (shortMs) =>
      this.#loggers.app.warn(
        { short_ms: shortMs },
        'primary has file descriptors again: connections are accepted',
      ),
  });
  /** Redis, when `state.redis` is set: bans shared across nodes. */
  #state: SharedState | null;
  /** The node's bans: fed by the workers' strikes, pushed to every worker. */
  #bans: BanManager;
  readonly #stateMetrics: SharedStateMetrics;

  constructor(config: ResolvedConfig, options: PrimaryOptions) {
    this.#config = config;
    this.#options = options;
    // The primary serves no requests: its loggers leave the access log to the workers (opening it
    // here as root would also follow whatever symlink the workers' user left at that path).
    this.#loggers = createLoggers({ ...config.log, access: 'off' });
    this.#upstreams = UpstreamSet.build(config.upstreams).set;
    this.#health = new HealthChecker(
      () => healthTargets(this.#upstreams),
      probeTarget,
      (upstream, origin, up, reason) => this.#applyHealth(upstream, origin, up, reason),
    );
    this.#stateMetrics = new SharedStateMetrics(this.#registry, () =>
      this.#redisHealth(this.#redisDownInWorkers),
    );
    this.#stateMetrics.showUp(config.state.redis !== null);
    this.#state = this.#newSharedState(config);
    this.#bans = new BanManager(this.#state, this.#loggers.app, (e) => this.#broadcastBan(e));
    this.#bans.setRules(banRules(config));
    this.#control = new ControlPlaneMetrics(this.#registry, {
      workers: () => this.#slots.filter((s) => s.worker !== null).length,
      targets: () => {
        const now = Date.now();
        return [...this.#upstreams.all()].flatMap((u) =>
          u.targets.map((t) => ({
            upstream: u.name,
            target: t.origin,
            // Passive failures live in the workers: their latest view (taken with each scrape).
            up:
              ['up', 'backup'].includes(u.state(t, now)) &&
              !this.#failedInWorkers.has(`${u.name}\n${t.origin}`),
          })),
        );
      },
      bans: () => this.#bans.all().length,
    });
  }

  /** The primary's logger. */
  get logger(): Loggers['app'] {
    return this.#loggers.app;
  }

  /** The config being served. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** The last reload's outcome. */
  get lastReload(): ReloadOutcome | null {
    return this.#lastReload;
  }

  /** Forks the workers and waits until every one listens; starts health checks and the admin API. */
  async start(): Promise<void> {
    refuseRootHandlers(this.#config);
    setupCluster();
    this.#reusePort = useReusePort(this.#config, listenFacts());
    const count = workerCount(this.#config);
    this.#prepareLogFiles(this.#config);
    this.#tlsFiles.follow(this.#config);
    // The bans other nodes made are read before any worker serves: otherwise a client they banned
    // was served until the read ended. Bounded, so an unreachable Redis delays start by no more.
    const bans = await this.#bans.loaded(START_BANS_WAIT_MS);
    if (bans !== 'loaded')
      this.#loggers.app.warn(
        { reason: bans, wait_ms: START_BANS_WAIT_MS },
        'shared state: the bans in Redis were not read before start; they are read when Redis answers',
      );
    try {
      const workers = await this.#forkMany(this.#config, count);
      this.#slots = workers.map((worker, index) => this.#newSlot(index, worker, this.#config));
      await this.#upstreams.startDns();
      this.#health.start();
      await this.#admin.start(this.#config.admin);
      this.#pidFile.start(this.#config.pidFile);
      // Fresh worker snapshots every 10 s, so a crash loses at most 10 s of a worker's counts.
      this.#metricsTimer = setInterval(() => void this.#collectWorkerMetrics(), 10_000);
      this.#metricsTimer.unref();
      this.#descriptors.start();
    } catch (err) {
      await this.#killAll();
      throw err;
    }
    this.#loggers.app.info(
      {
        workers: this.#slots.map((s) => s.worker?.process.pid),
        listen: this.#config.servers.flatMap((s) => s.listen.map((a) => a.key)),
        mode: this.#reusePort ? 'reuseport' : 'round-robin',
        config: this.#config.hash,
      },
      'sluice started',
    );
  }

  #newSlot(index: number, worker: Worker, config: ResolvedConfig): Slot {
    this.#starting.delete(worker);
    const slot: Slot = {
      index,
      worker,
      startedAt: Date.now(),
      restarts: 0,
      crashes: new CrashTracker(),
      state: 'ready',
      timer: null,
      config,
    };
    this.#watch(slot, worker);
    return slot;
  }

  /** Restarts the slot's worker when it dies unexpectedly. */
  #watch(slot: Slot, worker: Worker): void {
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker || this.#stopping) return;
      slot.worker = null;
      slot.state = 'restarting';
      const diedAt = Date.now();
      // Its `serving` may still be unread in the channel: the exit and the channel's last bytes
      // come to the primary in either order. The channel closes once they have been read.
      void channelClosed(worker).then(() => {
        if (this.#stopping || !this.#slots.includes(slot) || slot.state !== 'restarting') return;
        const uptimeMs = diedAt - slot.startedAt;
        const connected = this.#serving.has(worker);
        const decision = slot.crashes.crashed(diedAt, { uptimeMs, connected });
        if ('crashLoop' in decision) {
          this.#crashLoop(slot, decision.crashes);
          return;
        }
        this.#loggers.app.warn(
          {
            slot: slot.index,
            worker_pid: worker.process.pid,
            code,
            signal,
            uptime_ms: uptimeMs,
            served: connected,
            restarts: slot.restarts,
            restart_in_ms: decision.restartInMs,
          },
          'worker died; restarting it',
        );
        slot.timer = setTimeout(() => void this.#restart(slot), decision.restartInMs);
      });
    });
  }

  async #restart(slot: Slot): Promise<void> {
    slot.timer = null;
    if (this.#stopping) return;
    try {
      // During a swap, the config being swapped in: the others are switching to it.
      const config = this.#swapping ?? this.#config;
      // With the node's copies of its TLS files: a deploy that has them moved away at this moment
      // must not turn a crash into a crash loop, while the other workers serve on.
      const worker = await this.#fork(config, this.#tlsFiles.copies(config));
      // A reload rolled the workers while this one started: it belongs to no slot any more.
      if (!this.#slots.includes(slot) || this.#stopping) {
        this.#retire(worker, 0);
        return;
      }
      // A swap ended (or was undone) while this one started: it gets what the others run.
      const current = this.#swapping ?? this.#config;
      if (config !== current) this.#send(worker, { type: 'reload', id: ++this.#messageId, config: current });
      slot.config = current;
      this.#starting.delete(worker);
      slot.worker = worker;
      slot.startedAt = Date.now();
      slot.restarts++;
      this.#control.workerRestarts.inc();
      slot.state = 'ready';
      this.#watch(slot, worker);
      this.#loggers.app.info({ slot: slot.index, worker_pid: worker.process.pid }, 'worker restarted');
    } catch (err) {
      // Ended by a stop as it started: not a crash (counted, it could end in a crash loop and an exit 1).
      if (this.#stopping) return;
      this.#loggers.app.error({ err, slot: slot.index }, 'worker failed to start');
      const decision = slot.crashes.crashed(Date.now(), { uptimeMs: null, connected: false });
      if ('crashLoop' in decision) this.#crashLoop(slot, decision.crashes);
      else if (this.#slots.includes(slot)) {
        slot.timer = setTimeout(() => void this.#restart(slot), decision.restartInMs);
      }
    }
  }

  /**
   * A slot that crashed too often rests until the next reload; when every slot rests, nothing is
   * serving and sluice exits (whether the workers died running or failed to start again).
   */
  #crashLoop(slot: Slot, crashes: number): void {
    slot.state = 'crash-loop';
    this.#loggers.app.error(
      { slot: slot.index, crashes, window_s: 60 },
      'worker crash loop: not restarting it until the next reload',
    );
    if (this.#slots.every((s) => s.state === 'crash-loop')) {
      this.#options.onFatal(
        new SluiceError('SLUICE_E_RUNTIME_WORKER', 'every worker is in a crash loop; nothing is serving'),
      );
    }
  }

  /**
   * The fresh start a reload gives a slot that rests in a crash loop (a roll gives it by replacing
   * every slot): a swap skipped the slots without a worker, and the node went on with fewer.
   */
  #restartCrashLooped(): void {
    for (const slot of this.#slots) {
      if (slot.state !== 'crash-loop') continue;
      slot.crashes.reset();
      slot.state = 'restarting';
      this.#loggers.app.info({ slot: slot.index }, 'reload: restarting the worker of a crash loop');
      void this.#restart(slot);
    }
  }

  /**
   * Forks one worker with `config`; resolves when it listens, rejects when it fails to. Until the
   * caller puts it in a slot or retires it, the worker is in `#starting`, for a stop to find.
   * `tlsCopies`: what it may load TLS files from when they cannot be used (a worker that replaces
   * one; a start or a roll applies a config, whose files must load).
   */
  #fork(config: ResolvedConfig, tlsCopies: TlsFileCopies | null = null): Promise<Worker> {
    // A reload that was binding its admin address when the stop came forks nothing any more.
    if (this.#stopping)
      return Promise.reject(new SluiceError('SLUICE_E_RUNTIME_WORKER', 'sluice is stopping'));
    const worker = cluster.fork({ SLUICE_WORKER: '1' });
    this.#starting.set(worker, null);
    // Listening before `ready` (SO_REUSEPORT), a worker may take its first connection before it.
    const onServing = (message: unknown) => {
      if (!isFromWorker(message) || message.type !== 'serving') return;
      this.#serving.add(worker);
      worker.off('message', onServing);
    };
    worker.on('message', onServing);
    worker.once('exit', () => this.#starting.delete(worker));
    return new Promise<Worker>((resolve, reject) => {
      // The handler module the worker is loading, as it last said.
      let loading: string | null = null;
      const timer = setTimeout(() => fail(notReady(worker.process.pid, loading)), READY_TIMEOUT_MS);
      const cleanup = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      };
      const fail = (err: Error) => {
        cleanup();
        worker.process.kill('SIGKILL');
        reject(err);
      };
      const onMessage = (message: unknown) => {
        if (!isFromWorker(message)) return;
        if (message.type === 'hello') {
          this.#send(worker, {
            type: 'start',
            config,
            reusePort: this.#reusePort,
            workers: workerCount(config),
            bans: this.#bans.all(),
            tlsCopies: tlsCopies?.toWire() ?? null,
          });
        } else if (message.type === 'loading') {
          loading = message.module;
        } else if (message.type === 'ready') {
          cleanup();
          if (this.#starting.has(worker)) this.#starting.set(worker, config);
          const pid = worker.process.pid ?? 0;
          worker.on('message', (m: unknown) => this.#onWorkerMessage(worker, pid, m));
          worker.once('exit', () => this.#cluster.retire(pid));
          this.#sendHealthSnapshot(worker, config);
          // Again: a ban made while it started went only to the workers of the slots.
          for (const ban of this.#bans.all()) this.#send(worker, { type: 'ban', ban });
          resolve(worker);
        } else if (message.type === 'start-failed') {
          fail(
            new SluiceError(
              isErrorCode(message.code) ? message.code : 'SLUICE_E_RUNTIME_WORKER',
              message.error,
              message.hint === null ? {} : { hint: message.hint },
            ),
          );
        }
      };
      const onExit = (code: number | null, signal: string | null) =>
        fail(
          new SluiceError(
            'SLUICE_E_RUNTIME_WORKER',
            `worker exited while starting (code ${code}, signal ${signal})`,
          ),
        );
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      worker.on('error', () => undefined);
    });
  }

  async #forkMany(config: ResolvedConfig, count: number): Promise<Worker[]> {
    const results = await Promise.allSettled(Array.from({ length: count }, () => this.#fork(config)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      // The ones that started may have been handed connections already (round-robin gives them
      // out as soon as a worker listens): they drain as retired workers do, under the deadline of
      // the config they started on, rather than cut what they serve. (#retire keeps the deadline
      // of those a stop already told to drain.)
      for (const r of results) if (r.status === 'fulfilled') this.#retire(r.value, config.shutdownTimeoutMs);
      throw failed.reason;
    }
    return results.map((r) => (r as PromiseFulfilledResult<Worker>).value);
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }

  #broadcast(message: ToWorker): void {
    for (const slot of this.#slots) if (slot.worker !== null) this.#send(slot.worker, message);
  }

  /**
   * The workers a roll or a restart started that reported ready and have no slot yet, with their
   * config. They had the health snapshot and the bans at `ready`; what changes after it must reach
   * them too: a roll waits for every new worker, and one that got its snapshot first would
   * otherwise take its slot without a drain (or a ban) made while the others started.
   */
  *#readyStarting(): Iterable<[Worker, ResolvedConfig]> {
    for (const [worker, config] of this.#starting) if (config !== null) yield [worker, config];
  }

  /** A ban or an unban, to the workers of the slots and those about to take one. */
  #broadcastBan(message: ToWorker): void {
    this.#broadcast(message);
    for (const [worker] of this.#readyStarting()) this.#send(worker, message);
  }

  #onWorkerMessage(worker: Worker, pid: number, message: unknown): void {
    if (!isFromWorker(message)) return;
    if (message.type === 'drained') {
      // Node's cluster, sharing a socket round-robin, hands a connection to a worker and forgets
      // it until the worker answers; a worker that exits first leaves that client hanging for
      // good (seen: the first request after a rolling reload, about one run in three). The
      // worker's listener close reached this process before this message did, so no connection
      // goes to it any more, and those already sent are ahead of this answer: the worker
      // refuses them back to the rotation before it reads `exit`.
      this.#send(worker, { type: 'exit' });
      return;
    }
    if (message.type === 'final-metrics') {
      this.#cluster.update(pid, message.metrics);
      return;
    }
    if (message.type === 'strikes') {
      for (const [scope, address, n] of message.batch) this.#bans.strike(scope, address, n);
      return;
    }
    if (!('id' in message)) return;
    const waiter = this.#pending.get(message.id);
    if (waiter !== undefined) {
      this.#pending.delete(message.id);
      waiter(message);
    }
  }

  /** Sends a request to one worker and waits for the answer with the same id. */
  #ask<T extends FromWorker>(
    worker: Worker,
    build: (id: number) => ToWorker,
    timeoutMs = QUERY_TIMEOUT_MS,
  ): Promise<T | null> {
    const id = ++this.#messageId;
    return new Promise((resolve) => {
      // A worker that dies is not waited for until the timeout (a reload waited 30 s for one).
      const onExit = () => settle(null);
      const settle = (m: T | null) => {
        clearTimeout(timer);
        worker.off('exit', onExit);
        this.#pending.delete(id);
        resolve(m);
      };
      const timer = setTimeout(() => settle(null), timeoutMs);
      this.#pending.set(id, (m) => settle(m as T));
      worker.once('exit', onExit);
      this.#send(worker, build(id));
    });
  }

  #applyHealth(upstream: string, origin: string, up: boolean, reason: string | null): void {
    if (this.#upstreams.setHealth(upstream, origin, up))
      logHealth(this.#loggers.app, upstream, origin, up, reason);
    this.#broadcast({ type: 'health', upstream, origin, up });
    // Only where the worker's config still checks it, as in the snapshot (below).
    for (const [worker, config] of this.#readyStarting())
      if (config.upstreams[upstream]?.healthCheck != null)
        this.#send(worker, { type: 'health', upstream, origin, up });
  }

  /**
   * A new worker learns every health result known so far, and which targets an operator drained:
   * it builds its upstreams from the config, so a worker started by a rolling reload or after a
   * crash sent its share to a drained target again while the API still said "draining". Drains
   * go by URL: a rolling reload's workers list the next config's targets, where the same place
   * may hold another target (it drained that one instead; with the drained target removed, the
   * only one left, and every request was a 502). A target the next config removed has nothing
   * left to drain.
   * Check results go only to upstreams that have a check in the worker's `config`: a rolling
   * reload starts its workers while this set is still the previous config's, and a result of a
   * check the reload removed (a target marked down) would stay in the new worker for good, with
   * nothing left to probe it.
   */
  #sendHealthSnapshot(worker: Worker, config: ResolvedConfig): void {
    for (const u of this.#upstreams.all()) {
      const checked = config.upstreams[u.name]?.healthCheck != null;
      for (const t of u.targets) {
        if (checked && t.health !== 'unknown')
          this.#send(worker, { type: 'health', upstream: u.name, origin: t.origin, up: t.health === 'up' });
      }
      // id 0: no answer is waited for (#ask numbers from 1).
      for (const origin of u.drained)
        this.#send(worker, { type: 'target', id: 0, action: 'drain', upstream: u.name, origin });
    }
  }

  /** Re-reads the config file and reloads; the outcome is logged and returned. */
  async reloadFromFile(): Promise<ReloadOutcome> {
    const request = ++this.#requested;
    const source = this.#options.reloadSource;
    if (source === null)
      return this.#record(
        { ok: false, how: 'refused', problems: ['there is no config file to reload'] },
        request,
      );
    let result: ConfigResult | 'stopping';
    try {
      const load = this.#loading.then<ConfigResult | 'stopping'>(() =>
        this.#stopping ? 'stopping' : source(),
      );
      this.#loading = load.catch(() => undefined);
      result = await Promise.race([load, this.#stopped]);
    } catch (err) {
      // A check that throws is a bug in sluice, not in the file: it must still cost neither the
      // running config nor the reload's answer (it was a 500, and no failure was counted).
      this.#loggers.app.error({ err }, 'config reload: the file could not be checked');
      return this.#record(
        { ok: false, how: 'refused', problems: [unexpectedProblem(err, this.#options.file)] },
        request,
      );
    }
    if (result === 'stopping')
      return this.#record({ ok: false, how: 'refused', problems: ['sluice is stopping'] }, request);
    if (!result.ok) {
      return this.#record(
        { ok: false, how: 'refused', problems: result.problems.map((p) => formatProblem(p)) },
        request,
      );
    }
    // Logged as `sluice start` prints them, and returned with the outcome (they were dropped).
    const warnings = result.warnings.map((w) => formatProblem(w, 'warning'));
    if (warnings.length > 0) {
      const kept = keptProblems(warnings);
      this.#loggers.app.warn(
        { file: this.#options.file, warnings: kept.items, warnings_omitted: kept.omitted },
        'config reload: the file has warnings',
      );
    }
    return this.#reloadQueued(result.config, request, warnings);
  }

  /** Applies a validated config: swapped into the workers, or new workers rolled in. One at a time. */
  reload(next: ResolvedConfig): Promise<ReloadOutcome> {
    return this.#reloadQueued(next, ++this.#requested, []);
  }

  /** Reload requests numbered as they arrive, so an outcome can be told from another's. */
  #requested = 0;

  async #reloadQueued(
    next: ResolvedConfig,
    request: number,
    warnings: readonly string[],
  ): Promise<ReloadOutcome> {
    while (this.#reloading !== null) await this.#reloading.catch(() => undefined);
    this.#reloading = this.#reload(next, (o) => this.#record(o, request, warnings)).catch((err: unknown) => {
      this.#loggers.app.error({ err }, 'config reload failed unexpectedly');
      this.#pidFile.abandonPending();
      return this.#record(
        { ok: false, how: 'failed', problems: [unexpectedProblem(err)] },
        request,
        warnings,
      );
    });
    try {
      return await this.#reloading;
    } finally {
      this.#reloading = null;
      this.#tlsFiles.retain([this.#config]);
    }
  }

  /** Applies `next`; every outcome goes through `record`, which knows the request and its warnings. */
  async #reload(next: ResolvedConfig, record: (o: Recorded) => ReloadOutcome): Promise<ReloadOutcome> {
    if (this.#stopping) return record({ ok: false, how: 'refused', problems: ['sluice is stopping'] });
    const asRoot = rootHandlersError(next);
    if (asRoot !== null)
      return record({ ok: false, how: 'refused', problems: [errorProblem(asRoot, asRoot.code)] });
    const plan = planReload(this.#config, next, { current: this.#slots.length, next: workerCount(next) });
    const previous = this.#config;
    // A worker restarted during the reload may start on `next`.
    this.#tlsFiles.follow(next);
    // A new admin address is bound first: one that cannot be refuses the reload with nothing changed.
    let admin: AdminChange;
    try {
      admin = await this.#admin.prepare(previous.admin, next.admin);
    } catch (err) {
      return record({ ok: false, how: 'refused', problems: [errorProblem(err, 'SLUICE_E_RUNTIME_LISTEN')] });
    }
    // So is a new pid file written: one that cannot be refuses it too (`sluice reload` finds sluice by it).
    let pidFile: PidFileChange;
    try {
      pidFile = this.#pidFile.prepare(next.pidFile);
    } catch (err) {
      await admin.abort();
      return record({
        ok: false,
        how: 'refused',
        problems: [errorProblem(err, 'SLUICE_E_RUNTIME_PID_FILE')],
      });
    }
    const undo = async (): Promise<void> => {
      pidFile.abort();
      await admin.abort();
    };
    this.#prepareLogFiles(next);
    if (plan.kind === 'swap') {
      this.#swapping = next;
      let errors: string[];
      try {
        const answers = await Promise.all(
          this.#slots.map((s) => {
            if (s.worker === null) return Promise.resolve(null);
            s.config = next;
            return this.#ask<Extract<FromWorker, { type: 'reloaded' }>>(
              s.worker,
              (id) => ({ type: 'reload', id, config: next }),
              READY_TIMEOUT_MS,
            );
          }),
        );
        errors = answers.flatMap((a, i) => {
          if (a === null || a.error === null) return [];
          const code = isErrorCode(a.code) ? a.code : 'SLUICE_E_RUNTIME_WORKER';
          const err = new SluiceError(code, a.error, typeof a.hint === 'string' ? { hint: a.hint } : {});
          return [errorProblem(err, code, `worker ${this.#slots[i]?.worker?.process.pid}: `)];
        });
      } finally {
        this.#swapping = null;
      }
      if (errors.length > 0) {
        // Put the workers that did switch back on the previous config.
        this.#broadcast({ type: 'reload', id: ++this.#messageId, config: previous });
        for (const slot of this.#slots) slot.config = previous;
        await undo();
        return record({ ok: false, how: 'failed', problems: errors });
      }
      // A worker restarted while the others switched started on whatever was current then.
      for (const slot of this.#slots) {
        if (slot.worker !== null && slot.config !== next) {
          this.#send(slot.worker, { type: 'reload', id: ++this.#messageId, config: next });
          slot.config = next;
        }
      }
    } else {
      this.#loggers.app.info({ reasons: plan.reasons }, 'reload: starting new workers');
      let workers: Worker[];
      try {
        workers = await this.#forkMany(next, workerCount(next));
      } catch (err) {
        await undo();
        // The stop ended the workers still starting: that is the stop's doing, not a failed start.
        if (this.#stopping) return record({ ok: false, how: 'refused', problems: ['sluice is stopping'] });
        return record({ ok: false, how: 'failed', problems: [errorProblem(err, 'SLUICE_E_RUNTIME_WORKER')] });
      }
      if (this.#stopping) {
        // A stop came while they started: the old workers are draining under it; these go too.
        for (const worker of workers) this.#retire(worker, 0);
        await undo();
        return record({ ok: false, how: 'refused', problems: ['sluice is stopping'] });
      }
      const old = this.#slots;
      for (const slot of old) {
        if (slot.timer !== null) clearTimeout(slot.timer);
        slot.timer = null;
        // Detached from its slot first: the retired worker's exit is then not taken for a crash
        // (which restarted it, on the old config, in a slot no reload reaches any more).
        const worker = slot.worker;
        slot.worker = null;
        slot.state = 'retired';
        if (worker !== null) this.#retire(worker, next.shutdownTimeoutMs);
      }
      this.#slots = workers.map((worker, index) => {
        const slot = this.#newSlot(index, worker, next);
        slot.restarts = old[index]?.restarts ?? 0;
        return slot;
      });
    }
    this.#config = next;
    // Workers with a new log setup are new workers (a roll); the primary stays and follows it.
    this.#loggers.follow(next.log);
    admin.commit();
    pidFile.commit();
    if (plan.kind === 'swap') this.#restartCrashLooped();
    // The rules first: a removed rule's bans are lifted before a new manager would adopt them.
    this.#bans.setRules(banRules(next));
    if (previous.state.redis !== next.state.redis) await this.#replaceSharedState(next);
    const { set } = UpstreamSet.build(next.upstreams, this.#upstreams);
    set.inherit(this.#upstreams);
    this.#upstreams.retire();
    this.#upstreams = set;
    await set.startDns();
    return record({ ok: true, how: plan.kind, problems: [] });
  }

  /** Drains an old worker: it stops accepting, finishes what it serves, and exits by itself. */
  #retire(worker: Worker, deadlineMs: number): void {
    // A stop may have retired it already (a worker a roll was starting): its deadline stands.
    if (this.#retiring.has(worker)) return;
    this.#starting.delete(worker);
    this.#retiring.add(worker);
    worker.once('exit', () => this.#retiring.delete(worker));
    this.#send(worker, { type: 'shutdown', deadlineMs });
    // A worker that does not exit in time is stopped.
    const killAfter = timerDelay(deadlineMs + 5000);
    setTimeout(() => {
      if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, killAfter).unref();
  }

  #record(o: Recorded, request: number, warnings: readonly string[] = []): ReloadOutcome {
    const outcome: ReloadOutcome = {
      request,
      ...o,
      problems_omitted: 0,
      warnings,
      warnings_omitted: 0,
      at: new Date().toISOString(),
      config: this.#config.hash,
    };
    const problems = keptProblems(o.problems);
    const kept = keptProblems(warnings);
    this.#lastReload = {
      ...outcome,
      problems: problems.items,
      problems_omitted: problems.omitted,
      warnings: kept.items,
      warnings_omitted: kept.omitted,
    };
    this.#control.configReloads.labels(o.ok ? 'success' : 'failure').inc();
    if (o.ok) {
      this.#reloads.success++;
      this.#loggers.app.info({ how: o.how, config: this.#config.hash }, 'config reloaded');
    } else {
      this.#reloads.failure++;
      this.#loggers.app.error(
        { file: this.#options.file, problems: problems.items, problems_omitted: problems.omitted },
        'config reload refused; still serving the previous config',
      );
    }
    return outcome;
  }

  /** Stops the workers gracefully (each drains for up to `shutdown_timeout`), then everything else. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopBegun();
    this.#health.stop();
    this.#tlsFiles.close();
    if (this.#metricsTimer !== null) clearInterval(this.#metricsTimer);
    this.#descriptors.stop();
    const deadline = this.#config.shutdownTimeoutMs;
    // The workers a roll (or a restart) is starting: left out, the primary exited under them, and
    // each crashed in Node's cluster setup (an unhandled EPIPE) or lived on as an orphan. One that
    // reported ready may already hold connections handed to it, and drains like the others; one
    // still starting has served nothing, and is ended at once rather than waited for (loading
    // handlers may take up to READY_TIMEOUT_MS).
    const killed: Worker[] = [];
    for (const [worker, started] of [...this.#starting]) {
      if (started !== null) this.#retire(worker, deadline);
      else {
        worker.process.kill('SIGKILL');
        killed.push(worker);
      }
    }
    const all = this.#everyWorker();
    for (const slot of this.#slots) if (slot.timer !== null) clearTimeout(slot.timer);
    await Promise.all([
      ...killed.map(
        (worker) =>
          new Promise<void>((resolve) =>
            worker.isDead() ? resolve() : worker.once('exit', () => resolve()),
          ),
      ),
      ...all.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            worker.once('exit', () => resolve());
            this.#send(worker, { type: 'shutdown', deadlineMs: deadline });
            const killAfter = timerDelay(deadline + 5000);
            setTimeout(() => {
              if (!worker.isDead()) worker.process.kill('SIGKILL');
            }, killAfter).unref();
          }),
      ),
    ]);
    await this.#admin.close();
    await this.#upstreams.destroy();
    this.#bans.close();
    await this.#state?.close();
    this.removePidFile();
    this.#loggers.app.info('sluice stopped');
    await this.#loggers.close();
  }

  /**
   * Removes the pid file (also for an exit that does not wait for `stop()`: a second signal). One
   * that cannot be removed is logged and left (see PidFile).
   */
  removePidFile(): void {
    this.#pidFile.remove();
  }

  async #killAll(): Promise<void> {
    this.#stopping = true;
    this.#stopBegun();
    this.#health.stop();
    this.#tlsFiles.close();
    this.#descriptors.stop();
    for (const s of this.#slots) s.worker?.process.kill('SIGKILL');
    await this.#admin.close();
  }

  /** Gives `config`'s access log file to the workers' user (see log-files.ts); a failure is logged. */
  #prepareLogFiles(config: ResolvedConfig): void {
    const problem = prepareWorkerLogFiles(config);
    if (problem !== null) this.#loggers.app.warn(problem);
  }

  /**
   * Asks every worker to reopen its log files. The primary writes to stdout only (access: off): the
   * files are the workers', and each logs whether it reopened them; a "log files reopened" here
   * said so before any worker had tried, and also when every one of them failed.
   */
  reopenLogs(): void {
    this.#prepareLogFiles(this.#config);
    this.#broadcast({ type: 'reopen-logs' });
    this.#loggers.app.info('reopening log files in every worker');
  }

  /** Drains (or enables) target `index` of `upstream` in every worker; its origin, or null. */
  async setTarget(action: 'drain' | 'enable', upstream: string, index: number): Promise<string | null> {
    const u = this.#upstreams.find(upstream);
    const origin = u?.targets[index]?.origin;
    if (u === undefined || origin === undefined) return null;
    const t = action === 'drain' ? u.drain(origin) : u.enable(origin);
    if (t === null) return null;
    // By URL: a worker's list may be in another order (its own DNS answers, or a config a swap
    // gave it before this process took it).
    const workers = this.#slots.flatMap((s) => (s.worker === null ? [] : [s.worker]));
    for (const [worker] of this.#readyStarting()) workers.push(worker);
    await Promise.all(
      workers.map((w) => this.#ask(w, (id) => ({ type: 'target', id, action, upstream, origin: t.origin }))),
    );
    this.#loggers.app.info(
      { upstream, target: t.origin },
      action === 'drain' ? 'target draining' : 'target enabled',
    );
    return t.origin;
  }

  async #stats(): Promise<(WorkerStats | null)[]> {
    return Promise.all(
      this.#slots.map(async (s) => {
        if (s.worker === null) return null;
        const answer = await this.#ask<Extract<FromWorker, { type: 'stats' }>>(s.worker, (id) => ({
          type: 'query',
          id,
        }));
        return answer?.stats ?? null;
      }),
    );
  }

  /** The `/api/upstreams` document: the primary's health view with the workers' counts merged. */
  async upstreams(stats?: (WorkerStats | null)[]): Promise<{ upstreams: Record<string, unknown>[] }> {
    const per = stats ?? (await this.#stats());
    const now = Date.now();
    return {
      upstreams: [...this.#upstreams.all()].map((u) => {
        const view = u.describe(now) as { targets: Record<string, unknown>[] };
        const targets = view.targets.map((t) => {
          let inflight = 0;
          let fails = 0;
          let failed = false;
          for (const s of per) {
            const wu = s?.upstreams.find((x) => x.name === u.name) as
              | { targets: Record<string, unknown>[] }
              | undefined;
            const wt = wu?.targets.find((x) => x.target === t.target);
            if (wt === undefined) continue;
            inflight += Number(wt.inflight ?? 0);
            fails = Math.max(fails, Number(wt.fails ?? 0));
            if (wt.state === 'failed') failed = true;
          }
          // A backup fails as any target does (the metric already said 0 for it).
          const usable = t.state === 'up' || t.state === 'backup';
          return { ...t, inflight, fails, state: failed && usable ? 'failed' : t.state };
        });
        return { ...view, targets };
      }),
    };
  }

  /** The `/api/status` document. */
  async status(): Promise<Record<string, unknown>> {
    const stats = await this.#stats();
    const config = this.#config;
    return {
      version: VERSION,
      uptime_s: (Date.now() - this.#startedAt) / 1000,
      pid: process.pid,
      mode: this.#reusePort ? 'reuseport' : 'round-robin',
      workers: this.#slots.map((s, i) => ({
        slot: s.index,
        pid: s.worker?.process.pid ?? null,
        state: s.state,
        uptime_s: s.worker === null ? 0 : (Date.now() - s.startedAt) / 1000,
        restarts: s.restarts,
        requests: stats[i]?.served ?? null,
        connections: stats[i]?.connections ?? null,
      })),
      config: { hash: config.hash, file: config.file },
      state: { redis: this.#redisHealth(redisDownIn(stats)) },
      reloads: { ...this.#reloads, requested: this.#requested, last: this.#lastReload },
      servers: describeServers(config),
      ...(await this.upstreams(stats)),
    };
  }

  /**
   * Redis for the node, as `/api/status` and `sluice_shared_state_up` say it: down when the
   * primary's connection is, or when any worker serves on local state (`workersDown`). The
   * primary's alone said up while every worker logged Redis unreachable: each process counts its
   * own failures, and a worker that served rate-limited requests found a hung Redis first.
   */
  #redisHealth(workersDown: boolean): 'up' | 'down' | 'off' {
    const own = this.#state?.health ?? 'off';
    return own === 'up' && workersDown ? 'down' : own;
  }

  /** The primary's Redis connection for `config`, or null; its failures counted in the metrics. */
  #newSharedState(config: ResolvedConfig): SharedState | null {
    if (config.state.redis === null) return null;
    return new SharedState(config.state.redis, this.#loggers.app, {
      failure: (reason) => this.#stateMetrics.failure(reason),
      // Without a heartbeat the primary, which sends commands only for strikes, never saw a hang.
      heartbeat: true,
    });
  }

  /** A new `state.redis`: a new connection and ban manager, which keeps the bans in force. */
  async #replaceSharedState(next: ResolvedConfig): Promise<void> {
    const old = { state: this.#state, bans: this.#bans };
    this.#state = this.#newSharedState(next);
    this.#stateMetrics.showUp(next.state.redis !== null);
    this.#bans = new BanManager(this.#state, this.#loggers.app, (e) => this.#broadcastBan(e));
    // Before its first resync, which takes only the bans of scopes with a rule.
    this.#bans.setRules(banRules(next));
    this.#bans.adopt(old.bans.all());
    old.bans.close();
    await old.state?.close();
  }
  #newAdmin(settings: ResolvedAdmin): AdminServer {
    return new AdminServer(
      settings,
      {
        status: () => this.status(),
        upstreams: () => this.upstreams(),
        metrics: async () => {
          const registry = await this.#aggregate();
          return { contentType: registry.contentType, body: await registry.metrics() };
        },
        metricsJson: async () =>
          (await (await this.#aggregate()).getMetricsAsJSON()) as unknown as MetricsJson,
        cpuProfile: (seconds, worker, gone) => this.#profile('cpu', seconds, worker, gone),
        heapProfile: (worker) => this.#profile('heap', 0, worker),
        handles: () => this.#handles(),
        bans: async () => this.#bans.all(),
        unban: (address) => this.#bans.unban(address),
        config: async () => redactConfig(this.#config),
        reload: () => this.reloadFromFile(),
        setTarget: (action, upstream, index) => this.setTarget(action, upstream, index),
      },
      this.#loggers.app,
    );
  }

  /** The addresses the workers listen on (ports resolved when the config asked for port 0). */
  async addresses(): Promise<{
    servers: readonly { key: string; host: string; port: number }[];
    adminPort: number | null;
  }> {
    const stats = await this.#stats();
    return { servers: stats.find((s) => s !== null)?.addresses ?? [], adminPort: this.adminPort };
  }

  /** The workers of the slots and those draining. */
  #everyWorker(): Worker[] {
    return [...this.#slots.flatMap((s) => (s.worker === null ? [] : [s.worker])), ...this.#retiring];
  }

  /** Asks every worker for its metrics (kept as its latest snapshot). */
  async #collectWorkerMetrics(): Promise<void> {
    // Draining workers too: one killed at its deadline lost every count since it left its slot.
    await Promise.all(
      this.#everyWorker().map(async (worker) => {
        const answer = await this.#ask<Extract<FromWorker, { type: 'metrics' }>>(worker, (id) => ({
          type: 'metrics',
          id,
        }));
        // After its exit, the snapshot would stay among the live ones, its gauges with it.
        if (answer !== null && !worker.isDead())
          this.#cluster.update(worker.process.pid ?? 0, answer.metrics);
      }),
    );
  }

  /** The config a swap reload is putting into the workers, while it does. */
  #swapping: ResolvedConfig | null = null;

  /** Targets some worker holds as failed (max_fails reached), as `upstream\ntarget`; read by the target_up gauge. */
  #failedInWorkers: ReadonlySet<string> = new Set();

  /** Whether some worker served on local state at the last scrape; read by sluice_shared_state_up. */
  #redisDownInWorkers = false;

  /** The node's metrics: the primary's own and every worker's, summed. */
  async #aggregate() {
    const [, stats] = await Promise.all([this.#collectWorkerMetrics(), this.#stats()]);
    this.#failedInWorkers = failedTargets(stats);
    this.#redisDownInWorkers = redisDownIn(stats);
    return this.#cluster.aggregate((await this.#registry.getMetricsAsJSON()) as unknown as MetricsJson);
  }

  /** A profile of worker `index` (default the first running one). */
  async #profile(kind: 'cpu' | 'heap', seconds: number, index?: number, gone?: AbortSignal): Promise<Buffer> {
    const slot = index === undefined ? this.#slots.find((s) => s.worker !== null) : this.#slots[index];
    const worker = slot?.worker ?? null;
    if (worker === null) throw new AdminRequestError(404, `no running worker ${index ?? ''}`.trim());
    gone?.addEventListener('abort', () => this.#send(worker, { type: 'profile-cancel' }), { once: true });
    const answer = await this.#ask<Extract<FromWorker, { type: 'profile' }>>(
      worker,
      (id) => ({ type: 'profile', id, kind, seconds }),
      seconds * 1000 + 15_000,
    );
    // Gone before it answered (killed, crashed, or stopped): a retry reaches its replacement. (A
    // worker retiring after a rolling reload answers with the samples it took until it stopped.)
    if (answer === null && worker.isDead()) {
      throw new AdminRequestError(
        503,
        `worker ${slot?.index} (pid ${worker.process.pid}) exited before its ${kind} profile was done; ask again`,
        'SLUICE_E_ADMIN_WORKER_GONE',
      );
    }
    if (answer === null || answer.data === null) {
      const error = answer?.error ?? 'the worker did not answer';
      if (error === new ProfilerBusyError().message) throw new AdminRequestError(409, error);
      throw new SluiceError('SLUICE_E_RUNTIME_WORKER', error);
    }
    return Buffer.from(answer.data, 'base64');
  }

  async #handles(): Promise<Record<string, unknown>> {
    const workers = await Promise.all(
      this.#slots.map(async (s) => {
        if (s.worker === null) return { slot: s.index, state: s.state };
        const answer = await this.#ask<Extract<FromWorker, { type: 'handles' }>>(s.worker, (id) => ({
          type: 'handles',
          id,
        }));
        return { slot: s.index, ...(answer?.handles ?? { pid: s.worker.process.pid }) };
      }),
    );
    const resources: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
    return { primary: { pid: process.pid, resources }, workers };
  }

  /** The bound admin port, if any. */
  get adminPort(): number | null {
    return this.#admin.server?.port ?? null;
  }
}

/** Refuses a config whose handlers would run as root. */
function refuseRootHandlers(config: ResolvedConfig): void {
  const err = rootHandlersError(config);
  if (err !== null) throw err;
}

/**
 * V8 settings for workers, measured under proxy load (`wrk -c64` through one worker, 2-core VM):
 * - no allocation-site pretenuring: V8 pretenured per-request allocation sites and filled the
 *   old generation with short-lived garbage (1.8 MB promoted per scavenge, a mark-compact a second);
 * - a 16 MB initial old generation: a worker's old generation grows by about 1 MB/s of promoted
 *   request garbage under load, and V8's default first limit let it reach 57 MB before the first
 *   full GC (RSS 90 → 123 MB and back every 45 s); from 16 MB the first full GC comes sooner and
 *   V8 sizes the next limits from the live heap (about 10 MB): RSS stays at 87 MB, CPU per request
 *   unchanged (39–40 µs). (A 64 MB start was chosen before the SlotSet fix, when every full GC
 *   threw the worker into promoting most request objects: see core/slot-set.ts.)
 * - young generation semi-spaces of 4 MB rather than 16: a proxy worker under load steadies at
 *   78–79 MB RSS instead of 87–89 (8 MB semi-spaces) for at most 1 µs more CPU per request (36–39 →
 *   38–39 µs, 2 alternating runs of 40 s); a `respond` route's worker 4 MB less for about 0.5 µs.
 * Each is left out when the same flag is already given (on the command line or in NODE_OPTIONS).
 * Passed on the command line: `v8.setFlagsFromString` at run time did not take effect in workers.
 */
const WORKER_V8_FLAGS = [
  '--no-allocation-site-pretenuring',
  '--initial-old-space-size=16',
  '--max-semi-space-size=4',
];

/** The worker V8 flags not overridden by the operator's own. */
export function workerV8Flags(execArgv: readonly string[], nodeOptions: string): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((a) => flagName(a));
  return WORKER_V8_FLAGS.filter((f) => !given.includes(flagName(f)));
}

/** `--no-foo-bar=1` → `foo-bar` (V8 accepts `_` for `-` too). */
function flagName(arg: string): string {
  return arg
    .replace(/=.*$/, '')
    .replace(/^--(no-)?/, '')
    .replaceAll('_', '-');
}

let clusterReady = false;

/** Points cluster workers at worker-main (its .ts source under tsx, its .js build otherwise). */
function setupCluster(): void {
  if (clusterReady) return;
  clusterReady = true;
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  cluster.setupPrimary({
    exec: fileURLToPath(new URL(`./worker-main.${ts ? 'ts' : 'js'}`, import.meta.url)),
    execArgv: [
      ...(ts
        ? [...process.execArgv, '--import', 'tsx']
        : process.execArgv.filter((a) => !a.startsWith('--cpu-prof'))),
      ...workerV8Flags(process.execArgv, process.env.NODE_OPTIONS ?? ''),
    ],
  });
}

/** Whether some worker serves on local state: its Redis is down. */
function redisDownIn(stats: readonly (WorkerStats | null)[]): boolean {
  return stats.some((s) => s?.redis === 'down');
}

/** The targets any worker reports `failed` (passive health), as `upstream\ntarget`. */
function failedTargets(stats: readonly (WorkerStats | null)[]): Set<string> {
  const out = new Set<string>();
  for (const s of stats) {
    for (const u of s?.upstreams ?? []) {
      const targets = (u as { targets?: readonly Record<string, unknown>[] }).targets ?? [];
      for (const t of targets) if (t.state === 'failed') out.add(`${String(u.name)}\n${String(t.target)}`);
    }
  }
  return out;
}
