/**
 * `sluice start [-c FILE] [--workers N]`: run the primary and its workers in the foreground until
 * SIGTERM, SIGINT or SIGQUIT. SIGHUP reloads the config file (a bad file is refused whole and the
 * running config stays); SIGUSR1 reopens log files; SIGUSR2 is logged and ignored. Without -c and without ./sluice.yaml: the demo stack.
 */
import { loadConfigFile, resolveConfigObject } from '../../config/load.js';
import { loadConfigFileOffThread } from '../../config/load-off-thread.js';
import { formatProblem } from '../../config/problem.js';
import type { ResolvedConfig } from '../../config/types.js';
import { type DemoStack, startDemoStack } from '../../demo/demo-stack.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { Primary } from '../../runtime/primary.js';
import { defaultConfigFile } from '../config-source.js';
import { holdSignals, onHeldStop, STOP_SIGNALS, takeHeldSignals } from '../held-signals.js';

/** Runs until stopped; returns the exit code. */
export async function runStart(opts: { config?: string; workers?: number }): Promise<number> {
  const file = opts.config ?? defaultConfigFile();
  let demo: DemoStack | null = null;
  let config: ResolvedConfig;
  if (file === null) {
    demo = await startDemoStack();
    const result = resolveConfigObject(demo.config, null);
    if (!result.ok)
      throw new Error(`demo config invalid: ${result.problems.map((p) => formatProblem(p)).join('; ')}`);
    config = result.config;
  } else {
    const result = await loadConfigFile(file, process.env, { hostUsers: true });
    if (!result.ok) {
      for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
      return 2;
    }
    for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
    config = result.config;
  }
  const workers = opts.workers;
  const withFlags = (c: ResolvedConfig): ResolvedConfig => (workers === undefined ? c : { ...c, workers });
  const reloadSource =
    file === null
      ? null
      : async () => {
          const result = await loadConfigFileOffThread(file, process.env, { hostUsers: true });
          return result.ok ? { ...result, config: withFlags(result.config) } : result;
        };
  return runPrimary(withFlags(config), file, reloadSource, demo);
}

/** Starts a primary for `config` and serves until a stop signal; shared by start and serve. */
export async function runPrimary(
  config: ResolvedConfig,
  file: string | null,
  reloadSource: ConstructorParameters<typeof Primary>[1]['reloadSource'],
  demo: DemoStack | null = null,
  banner?: (primary: Primary) => Promise<void>,
  /** Hints in the caller's terms (`sluice serve` has flags where a config has keys). */
  hints: Partial<Record<ErrorCode, string>> = {},
): Promise<number> {
  let fatal: (code: number) => void = () => undefined;
  const primary = new Primary(config, {
    file,
    reloadSource,
    onFatal: (err) => {
      primary.logger.fatal({ code: err.code }, err.message);
      fatal(1);
    },
  });
  // Signals are held from the start (bin.ts holds them before loading the config; a caller that
  // did not is covered here): while the workers start (handlers loading may take seconds), Node's
  // default for SIGHUP would end the process. What was asked meanwhile is carried out once serving.
  holdSignals();
  // A stop while the workers start stops them (those still loading are ended, those ready drain)
  // and the start with them, rather than waiting for every one to be ready first.
  let stoppedWhileStarting: Promise<void> | null = null;
  onHeldStop((signal) => {
    if (stoppedWhileStarting !== null) return;
    primary.logger.info({ signal, deadline_ms: primary.config.shutdownTimeoutMs }, 'stopping while starting');
    stoppedWhileStarting = primary.stop();
  });
  const stoppedEarly = async (): Promise<number> => {
    await stoppedWhileStarting;
    await demo?.close();
    return 0;
  };
  try {
    await primary.start();
  } catch (err) {
    if (stoppedWhileStarting !== null) return stoppedEarly();
    await demo?.close();
    if (err instanceof SluiceError) {
      process.stderr.write(`sluice: ${err.code} ${err.message} (hint: ${hints[err.code] ?? err.hint})\n`);
      return err.code === 'SLUICE_E_HANDLER_ROOT' ? 2 : 1;
    }
    throw err;
  }
  // Started all the same (the stop came as the last worker was ready): the stop goes on.
  if (stoppedWhileStarting !== null) return stoppedEarly();
  if (demo !== null) await printDemoBanner(demo, primary);
  else if (banner !== undefined) await banner(primary);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals | null, code: number) => {
      if (stopping) {
        // A second signal: the user does not want to wait for the drain.
        primary.logger.warn({ signal }, 'second signal, exiting now');
        // Left behind, it would name a pid that another process may get next.
        primary.removePidFile();
        resolve(1);
        return;
      }
      stopping = true;
      primary.logger.info({ signal, deadline_ms: primary.config.shutdownTimeoutMs }, 'stopping');
      void primary
        .stop()
        .then(() => demo?.close())
        .then(() => resolve(code));
    };
    fatal = (code) => stop(null, code);
    const reload = () => {
      if (reloadSource === null) {
        primary.logger.warn('SIGHUP ignored: there is no config file to reload');
        return;
      }
      // A reload that fails unexpectedly leaves the running config serving; it must not end the process.
      primary.reloadFromFile().catch((err: unknown) => {
        primary.logger.error({ err }, 'config reload failed; still serving the previous config');
      });
    };
    // SIGUSR2 has no meaning to sluice; Node's default for it would end the process, undrained.
    const ignore = () =>
      primary.logger.warn(
        { signal: 'SIGUSR2' },
        'SIGUSR2 ignored: it has no meaning to sluice (SIGHUP reloads)',
      );
    for (const signal of [...STOP_SIGNALS, 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
      process.on(signal, () => {
        if (signal === 'SIGHUP') reload();
        else if (signal === 'SIGUSR1') primary.reopenLogs();
        else if (signal === 'SIGUSR2') ignore();
        else stop(signal, 0);
      });
    }
    // Taken over after these handlers are added (see takeHeldSignals).
    const held = takeHeldSignals();
    if (held.ignored) ignore();
    if (held.stop !== null) stop(held.stop, 0);
    else if (held.reload) reload();
  });
}

async function printDemoBanner(demo: DemoStack, primary: Primary): Promise<void> {
  const { servers, adminPort } = await primary.addresses();
  const base = `http://127.0.0.1:${servers[0]?.port}`;
  const lines = [
    '',
    'sluice demo stack',
    ...demo.backends.map(
      (b) =>
        `  backend  ${b.name.padEnd(8)} http://127.0.0.1:${b.port}  (answers with its name and the path; /slow waits 2 s)`,
    ),
    `  gateway  demo     ${base}  (round-robin over ${demo.backends.map((b) => b.name).join(' and ')})`,
    adminPort !== null
      ? `  admin             http://127.0.0.1:${adminPort}  (status page and /api/status)`
      : '',
    '',
    'Try:',
    `  curl ${base}/hello ; curl ${base}/hello        # two answers, two backends`,
    `  time (for i in $(seq 200); do curl -s ${base}/slow > /dev/null & done; wait)   # 200 concurrent 2 s requests, about 2 s`,
    adminPort !== null ? `  curl http://127.0.0.1:${adminPort}/api/status` : '',
    '',
    'Stop with Ctrl-C. Write a sluice.yaml (see docs/config.md) and run sluice start -c sluice.yaml.',
    '',
  ];
  process.stdout.write(`${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`);
}
