#!/usr/bin/env node
/**
 * The `sluice` command. The only place that sets the exit code: 0 success, 1 a runtime failure,
 * 2 a usage or config error. Commands load their implementation lazily, so `--help` stays fast.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { VERSION } from '../core/version.js';

const program = new Command();
program
  .name('sluice')
  .description('A high-concurrency HTTP edge server: reverse proxy, load balancer and app runtime.')
  .version(VERSION, '-v, --version', 'print the version')
  .showHelpAfterError('(run sluice --help for usage)')
  .exitOverride();

program
  .command('start')
  .description('run in the foreground; without -c and ./sluice.yaml, the demo stack')
  .option('-c, --config <file>', 'config file (sluice.yaml, .json, or sluice.config.ts/.js)')
  .option('--workers <n>', 'worker processes (overrides workers: in the config)', parsePositiveInt)
  .action(async (opts: { config?: string; workers?: number }) => {
    const { runStart } = await import('./commands/start.js');
    // Exit as soon as the drain is done: nothing else may hold the process open after a stop.
    process.exit(await runStart(opts));
  });

program
  .command('check')
  .description('validate a config file; print every problem as FILE:LINE:COL: CODE message')
  .requiredOption('-c, --config <file>', 'config file to check')
  .option('--print', 'print the resolved config as JSON when it is valid')
  .action(async (opts: { config: string; print?: boolean }) => {
    const { runCheck } = await import('./commands/check.js');
    process.exitCode = await runCheck(opts);
  });

program
  .command('reload')
  .description('validate the config file, then ask the running sluice to reload it and print the outcome')
  .option('-c, --config <file>', 'config file (default ./sluice.yaml)')
  .action(async (opts: { config?: string }) => {
    const { runReload } = await import('./commands/reload.js');
    process.exitCode = await runReload(opts);
  });

program
  .command('serve')
  .description('run one handler module (.ts or .js; a (req, res) listener or { fetch }) on every core')
  .argument('<app>', 'the handler module')
  .option('--port <port>', 'port to listen on (default $PORT, else 3000)', parsePort)
  .option('--host <host>', 'address to listen on (default 0.0.0.0)')
  .option('--workers <n>', 'worker processes (default: one per CPU core)', parsePositiveInt)
  .option('--user <user>', 'run the workers as this user (when started as root)')
  .option('--group <group>', "and this group (default: the user's)")
  .option('--allow-root', 'let the handler run as root (refused by default)')
  .action(
    async (
      app: string,
      opts: {
        port?: number;
        host?: string;
        workers?: number;
        user?: string;
        group?: string;
        allowRoot?: boolean;
      },
    ) => {
      const { runServe } = await import('./commands/serve.js');
      process.exit(await runServe(app, opts));
    },
  );

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`sluice ${VERSION} (node ${process.version})\n`);
  });

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`not a port: ${value}`);
  return n;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return n;
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every other parse error is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`sluice: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
