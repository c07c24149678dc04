/**
 * Loading a YAML or JSON config file on a worker thread, for reloads in the primary.
 *
 * On Node without `reusePort` the primary accepts every connection and hands it to a worker
 * (listen-mode.ts), so while its event loop is busy no new connection is served. Parsing and
 * checking a config is synchronous and grows with the file: 1.3 s for a 460 KB file of 500
 * servers and 2,167 routes, 2 s for 2,000 servers, and every reload of such a config stopped new
 * connections for that long (a connection a second later waited 2.0 s). On a thread the primary
 * keeps accepting; the reload costs a thread start (about 30 ms) on top of the load itself.
 *
 * Module configs (`.ts`, `.js`) are code and stay on the primary's thread, as they are at start.
 * When no thread can be started the file is loaded in place, as before: slower to serve during
 * the reload, never a refused reload. A path that is not a regular file (a FIFO) is loaded in
 * place too. A load that takes over LOAD_LIMIT_MS (a file on a hung network mount) is stopped and
 * is a problem: loaded in place it held the next reload for ever.
 */
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { deepFreeze } from '../core/deep-freeze.js';
import { ERROR_CATALOGUE } from '../errors/catalogue.js';
import type { Environment } from './interpolate.js';
import { type ConfigResult, loadConfigFile, MODULE_EXTENSIONS } from './load.js';

/** How long reading and checking a file may take (a 2.4 MB file takes about 5 s). */
export const LOAD_LIMIT_MS = 60_000;

export async function loadConfigFileOffThread(
  file: string,
  env: Environment = process.env,
  options: { readonly hostUsers?: boolean } = {},
  limitMs = LOAD_LIMIT_MS,
): Promise<ConfigResult> {
  if (MODULE_EXTENSIONS.has(extname(file).toLowerCase())) return loadConfigFile(file, env, options);
  // A FIFO (or a device) is read in place, as at start: its writer decides when the read ends, and
  // a read blocked in Node's I/O pool would keep a thread from ever exiting.
  const regular = await stat(file).then(
    (s) => s.isFile(),
    () => true, // the loader reports a missing or unreadable file as it always has
  );
  if (!regular) return loadConfigFile(file, env, options);
  let result: ConfigResult | 'timeout' | null;
  try {
    result = await inThread(file, env, options.hostUsers === true, limitMs);
  } catch {
    result = null;
  }
  if (result === null) return loadConfigFile(file, env, options);
  if (result === 'timeout')
    return fileProblem(file, `reading and checking the file took more than ${limitMs / 1000} s; stopped`);
  if (result.ok) deepFreeze(result.config);
  return result;
}

/** The thread's result, or null when it could not be run to the end (then the caller loads in place). */
function inThread(
  file: string,
  env: Environment,
  hostUsers: boolean,
  limitMs: number,
): Promise<ConfigResult | 'timeout' | null> {
  // Under tsx (sluice's own tests and development) this module is TypeScript, and so is its thread.
  const ts = fileURLToPath(import.meta.url).endsWith('.ts');
  return new Promise((resolve) => {
    const thread = new Worker(new URL(`./load-thread.${ts ? 'ts' : 'js'}`, import.meta.url), {
      workerData: { file, env: { ...env }, hostUsers },
      execArgv: ts ? ['--import', 'tsx'] : [],
      stdout: false,
      stderr: false,
    });
    let result: ConfigResult | 'timeout' | null = null;
    const timer = setTimeout(() => {
      result = 'timeout';
      // Not waited for: a read blocked in the I/O pool (a FIFO) keeps the thread from exiting.
      void thread.terminate();
      resolve(result);
    }, limitMs);
    timer.unref();
    thread.once('message', (message: ConfigResult) => {
      if (result === null) result = message;
    });
    thread.once('error', () => resolve(result === 'timeout' ? result : null));
    thread.once('exit', () => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}

function fileProblem(file: string, message: string): ConfigResult {
  const code = 'SLUICE_E_CONFIG_FILE';
  return {
    ok: false,
    problems: [{ file, line: 0, col: 0, code, message, hint: ERROR_CATALOGUE[code].hint }],
  };
}
