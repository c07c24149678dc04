/**
 * The entry point of a worker process (forked by the primary through node:cluster). It waits for
 * its config, drops privileges, runs a data-plane instance, and obeys the primary: reload in
 * place, apply health results, drain and enable targets, report stats, shut down gracefully.
 *
 * A handler's stray exception must not take the worker down with every request it serves: uncaught
 * errors are logged and the worker goes on (requests are isolated by the gateway; a handler that
 * corrupts its own state is the handler's problem, and its errors are in the log).
 */

import type { MetricsJson } from '../admin/dashboard-stats.js';
import type { ResolvedConfig } from '../config/types.js';
import { TlsFileCopies, type TlsFileCopiesWire } from '../core/tls-file-copies.js';
import { ERROR_CATALOGUE } from '../errors/catalogue.js';
import { SluiceError } from '../errors/sluice-error.js';
import { preopenForLogs } from '../observability/line-writer.js';
import type { Ban } from '../security/ban-list.js';
import { SluiceInstance } from './instance.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { LostHandoffs } from './lost-handoffs.js';
import { dropPrivileges } from './privileges.js';

let instance: SluiceInstance | null = null;

/** How long a drained worker waits for the primary's `exit` before it exits anyway. */
const EXIT_WAIT_MS = 2000;

function send(message: FromWorker): void {
  process.send?.(message);
}

async function start(
  config: ResolvedConfig,
  reusePort: boolean,
  workers: number,
  bans: readonly Ban[],
  tlsCopies: TlsFileCopiesWire | null,
): Promise<void> {
  // Only while it starts: a reload reads the files, or fails, as in every other worker.
  const release = TlsFileCopies.hold(tlsCopies === null ? null : TlsFileCopies.fromWire(tlsCopies));
  try {
    // With the primary's shared sockets the worker binds nothing itself: drop root first, so no
    // handler code ever runs as root. With SO_REUSEPORT the ports are >= 1024 or root is kept
    // (the primary chose that mode knowing this).
    if (config.user !== null) {
      preopenForLogs(1); // a private non-blocking stdout, opened while /proc/self is still ours
      dropPrivileges(config.user, config.group);
    }
    instance = new SluiceInstance(config, {
      healthChecks: false,
      admin: false,
      listen: { reusePort },
      onFirstConnection: () => send({ type: 'serving' }),
      guardMode: { kind: 'worker', workers, report: (batch) => send({ type: 'strikes', batch }) },
      onHandlerLoading: (module) => send({ type: 'loading', module }),
    });
    for (const ban of bans) instance.guards.bans.add(ban);
    await instance.start();
    if (!reusePort) watchDescriptors(instance);
    send({ type: 'ready' });
  } catch (err) {
    send({
      type: 'start-failed',
      error: err instanceof Error ? err.message : String(err),
      code: err instanceof SluiceError ? err.code : null,
      hint: err instanceof SluiceError ? err.hint : null,
    });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100).unref();
  } finally {
    release();
  }
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'start':
      await start(message.config, message.reusePort, message.workers, message.bans, message.tlsCopies);
      return;
    case 'ban':
      instance?.guards.bans.add(message.ban);
      return;
    case 'unban':
      instance?.guards.bans.remove(message.address);
      return;
    case 'unban-scope':
      instance?.guards.bans.removeScope(message.scope);
      return;
    case 'reload':
      try {
        await instance?.reload(message.config);
        send({ type: 'reloaded', id: message.id, error: null });
      } catch (err) {
        send({
          type: 'reloaded',
          id: message.id,
          error: err instanceof Error ? err.message : String(err),
          code: err instanceof SluiceError ? err.code : null,
          hint: err instanceof SluiceError ? err.hint : null,
        });
      }
      return;
    case 'shutdown':
      await instance?.close(message.deadlineMs);
      // Not gone yet: the primary may have handed this worker a connection it must give back
      // (see 'exit'). A primary that does not answer is not waited for long.
      send({ type: 'drained' });
      setTimeout(() => process.exit(0), EXIT_WAIT_MS).unref();
      return;
    case 'exit': {
      // The counters' last values, so the node's totals do not drop when this worker is gone.
      // Sent last: its write callback also means every refusal of a late connection went out.
      const metrics =
        instance === null ? [] : ((await instance.registry.getMetricsAsJSON()) as unknown as MetricsJson);
      process.send?.({ type: 'final-metrics', metrics } satisfies FromWorker, () => process.exit(0));
      return;
    }
    case 'metrics':
      send({
        type: 'metrics',
        id: message.id,
        metrics:
          instance === null ? [] : ((await instance.registry.getMetricsAsJSON()) as unknown as MetricsJson),
      });
      return;
    case 'profile-cancel':
      instance?.profiler.endCpu();
      return;
    case 'profile':
      try {
        const data =
          message.kind === 'cpu'
            ? await instance?.profiler.cpu(message.seconds)
            : await instance?.profiler.heap();
        send({ type: 'profile', id: message.id, data: data?.toString('base64') ?? null, error: null });
      } catch (err) {
        send({
          type: 'profile',
          id: message.id,
          data: null,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      return;
    case 'handles':
      send({ type: 'handles', id: message.id, handles: instance?.handles() ?? { pid: process.pid } });
      return;
    case 'reopen-logs':
      instance?.reopenLogs();
      return;
    case 'health':
      instance?.applyHealth(message.upstream, message.origin, message.up);
      return;
    case 'target': {
      const origin = instance?.setTargetByOrigin(message.action, message.upstream, message.origin) ?? null;
      send({ type: 'target-result', id: message.id, origin });
      return;
    }
    case 'query':
      send({
        type: 'stats',
        id: message.id,
        stats: {
          pid: process.pid,
          served: instance?.served ?? 0,
          connections: instance?.connections() ?? 0,
          upstreams: instance?.upstreams().upstreams ?? [],
          addresses: instance?.addresses().servers ?? [],
          redis: instance?.guards.redis ?? 'off',
        },
      });
      return;
  }
}

/**
 * Round-robin mode: answers a connection the primary passed while this worker was at its nofile
 * limit (see lost-handoffs.ts); unanswered, the primary never passed it another. (With SO_REUSEPORT
 * the worker accepts by itself, and libuv sheds connections at EMFILE.)
 */
function watchDescriptors(running: SluiceInstance): void {
  new LostHandoffs({
    onShort: () =>
      running.logger.error(
        { code: 'SLUICE_E_RUNTIME_FD_LIMIT', hint: ERROR_CATALOGUE.SLUICE_E_RUNTIME_FD_LIMIT.hint },
        'worker out of file descriptors: new connections are closed until some of its own close',
      ),
    onRecovered: (lost) =>
      running.logger.warn({ lost }, 'worker has file descriptors again: new connections are taken'),
  }).start();
}

process.on('message', (message: ToWorker) => {
  void handle(message);
});
send({ type: 'hello' });

process.on('uncaughtException', (err) => {
  if (instance === null) throw err;
  instance.logger.error({ err }, 'uncaught exception in a worker (from a handler?); the worker goes on');
});

process.on('unhandledRejection', (reason) => {
  instance?.logger.error({ err: reason }, 'unhandled promise rejection in a worker (from a handler?)');
});

// Signals are for the primary; a worker stops when the primary tells it to (or when it dies).
// SIGQUIT and SIGUSR2 too: Ctrl-\ at a terminal reaches every process of the group, and Node's
// default for either ended a worker in the middle of its requests.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const)
  process.on(signal, () => undefined);
process.on('disconnect', () => {
  // The primary is gone: stop serving rather than linger as an orphan.
  void (instance?.close(1000) ?? Promise.resolve()).then(() => process.exit(0));
});
