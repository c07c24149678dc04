#!/usr/bin/env node
/**
 * The `sluice` command. The only place that sets the exit code: 0 success, 1 a runtime failure,
 * 2 a usage or config error. Commands load their implementation lazily, so `--help` stays fast.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { MAX_WORKERS } from '../config/max-workers.js';
import { VERSION } from '../core/version.js';
import { holdSignals } from './held-signals.js';

// A reader that went away (`sluice check | head`) is not a failure of the command: its output is
// dropped and the command ends with its own exit code, as Unix tools do. Unhandled, the EPIPE
// ended it with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

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
  .option('--workers <n>', 'worker processes (overrides workers: in the config)', parseWorkers)
  .action(async (opts: { config?: string; workers?: number }) => {
    // Before loading the runtime and the config: a reload or stop sent meanwhile waits for it.
    holdSignals();
    const { runStart } = await import('./commands/start.js');
    // Exit as soon as the drain is done: nothing else may hold the process open after a stop.
    process.exit(await runStart(opts));
  });

program
  .command('check')
  .description('validate a config file; print every problem as FILE:LINE:COL: CODE message')
  // Required, but checked in the action: commander checks required options before unknown ones, so
  // `check --bogus` said -c was missing instead of naming --bogus.
  .option('-c, --config <file>', 'config file to check (required)')
  .option('--print', 'print the resolved config as JSON when it is valid')
  .action(async function (this: Command, opts: { config?: string; print?: boolean }) {
    if (opts.config === undefined)
      this.error("error: required option '-c, --config <file>' not specified", {
        code: 'commander.missingMandatoryOptionValue',
        exitCode: 2,
      });
    const { runCheck } = await import('./commands/check.js');
    process.exitCode = await runCheck({ ...opts, config: opts.config });
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
  .option('--workers <n>', 'worker processes (default: one per CPU core)', parseWorkers)
  .option('--user <user>', 'run the workers as this user (when started as root)')
  .option('--group <group>', "and this group (default: the user's)")
  .option('--allow-root', 'let the handler run as root (refused by default)')
  .option('--access-log <dest>', 'where access lines go: stdout, off, or a file path (default stdout)')
  .option(
    '--handler-timeout <duration>',
    'answer 504 when the app has not started its answer within this (default 60s; 0s: no limit)',
  )
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
        accessLog?: string;
        handlerTimeout?: string;
      },
    ) => {
      holdSignals();
      const { runServe } = await import('./commands/serve.js');
      process.exit(await runServe(app, opts));
    },
  );

program
  .command('doctor')
  .description('audit the host for high-concurrency serving; exit 1 when a check fails')
  .option('-c, --config <file>', 'size the expected values for this config file')
  .option('--json', 'print the checks as JSON')
  .option('--root <dir>', 'read host files under this directory instead of /')
  .action(async (opts: { config?: string; json?: boolean; root?: string }) => {
    const { runDoctor } = await import('./commands/doctor.js');
    process.exitCode = await runDoctor(opts);
  });

program
  .command('bench')
  .description('load-test a URL with a live progress bar; prints requests/s, latency p50/p90/p99/max, errors')
  .argument('<url>', 'the URL to load (http:// or https://)')
  .option('-c, --connections <n>', 'concurrent connections (default 50)')
  .option('-d, --duration <duration>', 'measured time per target: 500ms, 10s, 1m (default 10s)')
  .option('--compare <url2>', 'also load URL2, alternating with URL in rounds; prints B / A ratios')
  .option('--rounds <n>', 'with --compare: rounds per target, -d split evenly over them (default 3)')
  .option('--warmup <duration>', 'unmeasured load per target before measuring (default none)')
  .option('-m, --method <method>', 'request method (default GET, or POST with --body)')
  .option(
    '-H, --header <header>',
    "request header 'Name: value' (repeatable)",
    (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
  )
  .option('-b, --body <body>', 'request body')
  .option('-p, --pipelining <n>', 'requests in flight per connection (default 1)')
  .option('-t, --timeout <duration>', 'time to wait for an answer before counting a timeout (default 10s)')
  .option('--no-keepalive', 'send Connection: close: a new connection for every request')
  .option('--json', 'print the result as one JSON object (docs/bench.md); no progress bar')
  .action(async (url: string, opts: import('./commands/bench.js').BenchCommandArgs) => {
    const { runBench } = await import('./commands/bench.js');
    process.exitCode = await runBench(url, opts);
  });

program
  .command('init')
  .description('print or write deployment files; TARGET is systemd, docker, sysctl, limits or k8s')
  .argument('<target>', 'systemd, docker, sysctl, limits or k8s')
  .option('-c, --config <file>', 'the config to deploy (default ./sluice.yaml, else a minimal one)')
  .option('--out <dir>', 'write the files under this directory instead of printing them')
  .option('--force', 'overwrite files that exist')
  .action(async (target: string, opts: { config?: string; out?: string; force?: boolean }) => {
    const { runInit } = await import('./commands/init.js');
    process.exitCode = await runInit(target, opts);
  });

program
  .command('import')
  .description("convert another server's config to a sluice.yaml (sluice import nginx FILE)")
  .command('nginx')
  .description(
    'print the sluice.yaml equivalent of an nginx config; warnings on stderr as FILE:LINE: warning: ...',
  )
  .argument('<file>', 'the nginx config (nginx.conf, or a file of server { } blocks)')
  .option('-o, --output <file>', 'write the YAML to this file instead of stdout')
  .option('--force', 'overwrite the -o file if it exists')
  .option(
    '--prefix <dir>',
    "nginx's prefix: relative include and certificate paths (default: FILE's directory)",
  )
  .action(async (file: string, opts: import('./commands/import-nginx.js').ImportNginxCommandOptions) => {
    const { runImportNginx } = await import('./commands/import-nginx.js');
    process.exitCode = await runImportNginx(file, opts);
  });

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

/** As `workers:` in the config: 1 to MAX_WORKERS. */
function parseWorkers(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS)
    throw new InvalidArgumentError(`not a number of workers from 1 to ${MAX_WORKERS}: ${value}`);
  return n;
}

/**
 * `sluice help NAME` for a NAME that is no command, read as `sluice NAME`: commander then says
 * "unknown command" with its did-you-mean, as for `sluice NAME`. Its own help command printed the
 * whole help on stderr and exited 2 without saying why (`sluice help help` too: that one is the
 * help of the whole command).
 */
function helpOfUnknown(argv: readonly string[]): string[] {
  const [node = '', script = '', first, name, ...rest] = argv;
  if (first !== 'help' || name === undefined || name.startsWith('-')) return [...argv];
  // The help command is no entry of program.commands: commander failed it the same way.
  if (name === 'help') return [node, script, 'help'];
  const known = program.commands.some((c) => c.name() === name || c.aliases().includes(name));
  return known ? [...argv] : [node, script, name, ...rest];
}

try {
  await program.parseAsync(helpOfUnknown(process.argv));
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every other parse error is a usage error.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`sluice: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
