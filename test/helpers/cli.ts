/**
 * End-to-end helpers: spawn the built CLI (`node dist/cli/bin.js ...`), collect its output, find
 * free ports, wait for a port, signal the process and wait for its exit with a time bound.
 *
 * Every process spawned here is tracked; `killAll()` (call it in afterEach/afterAll) SIGKILLs the
 * ones still running and waits for them, so a failing test never leaks a process. A last-resort
 * `exit` hook does the same if the test worker itself goes away.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * The build under test: `dist/` of this repository, or the directory named by SLUICE_E2E_DIST (to run
 * the e2e tests against another build, e.g. one made from a clean checkout).
 */
export const DIST = resolve(process.env.SLUICE_E2E_DIST ?? join(ROOT, 'dist'));
/** The package root of that build (holds its package.json): what `node_modules/sluice` links to. */
export const PACKAGE_ROOT = dirname(DIST);
/** The built CLI entry point. */
export const BIN = join(DIST, 'cli/bin.js');
/** The built package entry (what `import ... from 'sluice'` resolves to). */
export const DIST_INDEX = join(DIST, 'index.js');

/** Throws a clear error when the CLI has not been built. */
export function requireBuilt(): void {
  if (!existsSync(BIN) || !existsSync(DIST_INDEX)) {
    throw new Error(
      `e2e tests run the built CLI, but ${BIN} does not exist: run \`npm run build\` first (npm test does it)`,
    );
  }
}

/** How a process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned `sluice` process. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout lines that parse as JSON objects (log lines), in order. */
  jsonLines(): Record<string, unknown>[];
  /** Resolves when `test` holds for the output so far; rejects on timeout or exit first. */
  waitFor(
    test: (out: { stdout: string; stderr: string }) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<void>;
  /** Waits for `n` JSON lines on stdout that `pick` accepts; returns them. */
  waitForJson(
    pick: (line: Record<string, unknown>) => boolean,
    n?: number,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>[]>;
  /** Sends a signal (no-op when the process has exited). */
  signal(sig: NodeJS.Signals): void;
  /** The exit, once it happened; null while running. */
  exited(): ExitInfo | null;
  /** Waits for the exit; rejects (with the output) after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<ExitInfo>;
  /** SIGKILLs the process if still running and waits for it. */
  kill(): Promise<void>;
}

const live = new Set<CliProcess>();

process.once('exit', () => {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Spawns `node dist/cli/bin.js ...args`. */
export function spawnCli(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): CliProcess {
  requireBuilt();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Another user (a test started as root runs sluice as one that cannot read root's files).
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${BIN}`);
  let out = '';
  let err = '';
  let exit: ExitInfo | null = null;
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    notify();
  });
  child.stderr!.on('data', (d: string) => {
    err += d;
    notify();
  });
  const exitPromise = new Promise<ExitInfo>((resolveExit) => {
    // 'close' waits for stdio to end too, so the output is complete when it fires.
    child.on('close', (code, signal) => {
      exit = { code, signal };
      live.delete(proc);
      notify();
      resolveExit(exit);
    });
  });
  child.on('error', () => undefined);

  const describe = () =>
    `pid ${child.pid}, args ${JSON.stringify(args)}\n--- stdout ---\n${tail(out)}\n--- stderr ---\n${tail(err)}`;

  const waitUntil = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolveWait, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        watchers.delete(watcher);
        fn();
      };
      const watcher = () => {
        let value: T | undefined;
        try {
          value = check();
        } catch (e) {
          done(() => reject(e));
          return;
        }
        if (value !== undefined) done(() => resolveWait(value));
        else if (exit !== null)
          done(() =>
            reject(new Error(`process exited (${JSON.stringify(exit)}) before ${what}\n${describe()}`)),
          );
      };
      const timer = setTimeout(
        () =>
          done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${describe()}`))),
        timeoutMs,
      );
      watchers.add(watcher);
      watcher();
    });

  const jsonLines = (): Record<string, unknown>[] => {
    const lines: Record<string, unknown>[] = [];
    for (const line of out.split('\n')) {
      const t = line.trim();
      if (!t.startsWith('{')) continue;
      try {
        const v: unknown = JSON.parse(t);
        if (typeof v === 'object' && v !== null) lines.push(v as Record<string, unknown>);
      } catch {
        // a partial last line, or not JSON
      }
    }
    return lines;
  };

  const proc: CliProcess = {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    jsonLines,
    waitFor: (test, what, timeoutMs = 10_000) =>
      waitUntil(() => (test({ stdout: out, stderr: err }) ? true : undefined), what, timeoutMs).then(
        () => undefined,
      ),
    waitForJson: (pick, n = 1, timeoutMs = 10_000) =>
      waitUntil(
        () => {
          const found = jsonLines().filter(pick);
          return found.length >= n ? found : undefined;
        },
        `${n} matching JSON line(s) on stdout`,
        timeoutMs,
      ),
    signal: (sig) => {
      if (exit === null) child.kill(sig);
    },
    exited: () => exit,
    waitForExit: (timeoutMs = 10_000) =>
      Promise.race([
        exitPromise,
        new Promise<ExitInfo>((_, reject) => {
          const t = setTimeout(
            () => reject(new Error(`process did not exit within ${timeoutMs} ms\n${describe()}`)),
            timeoutMs,
          );
          void exitPromise.then(() => clearTimeout(t));
        }),
      ]),
    kill: async () => {
      if (exit === null) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    },
  };
  live.add(proc);
  return proc;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

/** What a finished CLI run printed. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to completion (killing it after `timeoutMs`). */
export async function runCli(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; uid?: number; gid?: number } = {},
): Promise<CliResult> {
  const p = spawnCli(args, opts);
  try {
    const { code, signal } = await p.waitForExit(opts.timeoutMs ?? 20_000);
    return { code, signal, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    await p.kill();
  }
}

/** SIGKILLs every process spawned by this module that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** A port that was free a moment ago on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  // The kernel may hand a just-closed port straight back: two calls gave the admin API and a
  // server one address (SLUICE_E_CONFIG_DUPLICATE_LISTEN). A port is handed out once per process.
  for (let tries = 0; ; tries++) {
    const port = await anyFreePort();
    if (!handedOut.has(port) || tries >= 50) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Ports freePort() has handed out in this process. */
const handedOut = new Set<number>();

function anyFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection; fails early if `proc` exits. */
export async function waitForPort(
  port: number,
  opts: { timeoutMs?: number; proc?: CliProcess } = {},
): Promise<void> {
  const until = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    const ok = await new Promise<boolean>((resolveTry) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolveTry(true);
      });
      socket.once('error', () => {
        socket.destroy();
        resolveTry(false);
      });
    });
    if (ok) return;
    const exit = opts.proc?.exited();
    if (exit) {
      throw new Error(
        `process exited (${JSON.stringify(exit)}) before port ${port} opened\n--- stdout ---\n${opts.proc!.stdout()}\n--- stderr ---\n${opts.proc!.stderr()}`,
      );
    }
    if (Date.now() > until) throw new Error(`port ${port} did not accept connections in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh temporary directory, and its removal. */
export async function tempDir(prefix = 'sluice-e2e-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Writes `yaml` to DIR/sluice.yaml, runs `sluice start -c sluice.yaml` in DIR and waits until it
 * serves on `port` and has logged "sluice started" (every worker listening).
 */
export async function startConfigured(
  dir: string,
  yaml: string,
  port: number,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<CliProcess> {
  await writeFile(join(dir, 'sluice.yaml'), yaml);
  const sluice = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: dir, ...opts });
  await waitForPort(port, { proc: sluice, timeoutMs: 20_000 });
  await sluice.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
  return sluice;
}
