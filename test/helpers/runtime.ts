/**
 * Helpers for the multi-process runtime e2e tests: one-shot HTTP requests on fresh connections,
 * the primary's `/api/status`, polling with a bound, process liveness, and temporary directories
 * that an unprivileged worker (user nobody) can read handler modules from.
 */
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { tempDir } from './cli.js';

/** A buffered answer. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One GET on a fresh connection to 127.0.0.1:`port`. */
export function get(port: number, path: string, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A worker as `/api/status` shows it. */
export interface StatusWorker {
  readonly slot: number;
  readonly pid: number | null;
  readonly state: string;
  readonly restarts: number;
  readonly requests: number | null;
  readonly connections: number | null;
}

/** The parts of the primary's `/api/status` the tests read. */
export interface Status {
  readonly pid: number;
  readonly mode: string;
  readonly workers: readonly StatusWorker[];
  readonly config: { readonly hash: string; readonly file: string | null };
  readonly reloads: {
    readonly success: number;
    readonly failure: number;
    readonly last: {
      readonly ok: boolean;
      readonly how: string;
      readonly config: string;
      readonly at: string;
      readonly problems: readonly string[];
    } | null;
  };
  readonly servers: readonly { readonly name: string; readonly routes: readonly { name: string | null }[] }[];
}

/** GET /api/status on the admin port. */
export async function status(adminPort: number): Promise<Status> {
  const res = await get(adminPort, '/api/status');
  if (res.status !== 200) throw new Error(`/api/status answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as Status;
}

/** Resolves with the first non-undefined value of `check`, polling every `everyMs`; rejects after `timeoutMs`. */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Waits until process `pid` has a child: a sluice primary takes signals before it forks its first
 * worker, so from then on a signal reaches sluice's handlers, not Node's defaults (a fixed wait of
 * 500 ms was not always enough on a loaded machine).
 */
export function waitForChild(pid: number, timeoutMs = 10_000): Promise<true> {
  return until(
    () => (readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() === '' ? undefined : true),
    `process ${pid} to fork a child`,
    timeoutMs,
  );
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A temporary directory (mode 0755) an unprivileged worker can read files from. */
export async function sharedTempDir(
  prefix = 'sluice-e2e-',
): Promise<{ path: string; write(name: string, text: string): Promise<string>; remove(): Promise<void> }> {
  const dir = await tempDir(prefix);
  await chmod(dir.path, 0o755);
  return {
    path: dir.path,
    remove: dir.remove,
    /** Writes `name` (mode 0644) and returns its absolute path. */
    write: async (name, text) => {
      const file = join(dir.path, name);
      await writeFile(file, text, { mode: 0o644 });
      await chmod(file, 0o644);
      return file;
    },
  };
}
