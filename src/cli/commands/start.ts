/**
 * `sluice start [-c FILE] [--workers N]`: serve in the foreground until SIGTERM or SIGINT.
 * SIGHUP reloads the config file (a bad file is refused whole and the running config stays);
 * SIGUSR1 reopens log files. Without -c and without ./sluice.yaml, it runs the demo stack.
 */
import { loadConfigFile, resolveConfigObject } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';
import type { ResolvedConfig } from '../../config/types.js';
import { type DemoStack, startDemoStack } from '../../demo/demo-stack.js';
import { SluiceError } from '../../errors/sluice-error.js';
import { SluiceInstance } from '../../runtime/instance.js';
import { defaultConfigFile } from '../config-source.js';

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
    const result = await loadConfigFile(file);
    if (!result.ok) {
      for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
      return 2;
    }
    for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
    config = result.config;
  }
  if (opts.workers !== undefined) config = { ...config, workers: opts.workers };

  const instance = new SluiceInstance(config);
  try {
    await instance.start();
  } catch (err) {
    await demo?.close();
    if (err instanceof SluiceError) {
      process.stderr.write(`sluice: ${err.code} ${err.message} (hint: ${err.hint})\n`);
      return 1;
    }
    throw err;
  }
  if (demo !== null) printDemoBanner(demo, instance);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: the user does not want to wait for the drain.
        instance.logger.warn({ signal }, 'second signal, exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      instance.logger.info({ signal, deadline_ms: instance.config.shutdownTimeoutMs }, 'stopping');
      void instance
        .close()
        .then(() => demo?.close())
        .then(() => resolve(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      if (file === null) {
        instance.logger.warn('SIGHUP ignored: the demo stack has no config file to reload');
        return;
      }
      void reloadFromFile(instance, file);
    });
    process.on('SIGUSR1', () => instance.reopenLogs());
  });
}

async function reloadFromFile(instance: SluiceInstance, file: string): Promise<void> {
  const result = await loadConfigFile(file);
  if (!result.ok) {
    instance.logger.error(
      { file, problems: result.problems.map((p) => formatProblem(p)) },
      'config reload refused; still serving the previous config',
    );
    return;
  }
  try {
    await instance.reload(result.config);
  } catch (err) {
    instance.logger.error({ err, file }, 'config reload failed; still serving the previous config');
  }
}

function printDemoBanner(demo: DemoStack, instance: SluiceInstance): void {
  const { servers, admin } = instance.addresses();
  const gateway = servers[0];
  const base = `http://127.0.0.1:${gateway?.port}`;
  const lines = [
    '',
    'sluice demo stack',
    ...demo.backends.map(
      (b) =>
        `  backend  ${b.name.padEnd(8)} http://127.0.0.1:${b.port}  (answers with its name and the path; /slow waits 2 s)`,
    ),
    `  gateway  demo     ${base}  (round-robin over ${demo.backends.map((b) => b.name).join(' and ')})`,
    admin ? `  admin             http://127.0.0.1:${admin.port}  (status page and /api/status)` : '',
    '',
    'Try:',
    `  curl ${base}/hello ; curl ${base}/hello        # two answers, two backends`,
    `  time (for i in $(seq 200); do curl -s ${base}/slow > /dev/null & done; wait)   # 200 concurrent 2 s requests, about 2 s`,
    admin ? `  curl http://127.0.0.1:${admin.port}/api/status` : '',
    '',
    'Stop with Ctrl-C. Write a sluice.yaml (see docs/config.md) and run sluice start -c sluice.yaml.',
    '',
  ];
  process.stdout.write(`${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`);
}
