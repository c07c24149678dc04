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
 * the reload, never a refused reload.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { deepFreeze } from '../core/deep-freeze.js';
import type { Environment } from './interpolate.js';
import { type ConfigResult, loadConfigFile, MODULE_EXTENSIONS } from './load.js';

export async function loadConfigFileOffThread(
  file: string,
  env: Environment = process.env,
  options: { readonly hostUsers?: boolean } = {},
): Promise<ConfigResult> {
  if (MODULE_EXTENSIONS.has(extname(file).toLowerCase())) return loadConfigFile(file, env, options);
  let result: ConfigResult | null;
  try {
    result = await inThread(file, env, options.hostUsers === true);
  } catch {
    result = null;
  }
  if (result === null) return loadConfigFile(file, env, options);
  if (result.ok) deepFreeze(result.config);
  return result;
}

/** The thread's result, or null when it could not be run to the end (then the caller loads in place). */
function inThread(file: string, env: Environment, hostUsers: boolean): Promise<ConfigResult | null> {
  // Under tsx (sluice's own tests and development) this module is TypeScript, and so is its thread.
  const ts = fileURLToPath(import.meta.url).endsWith('.ts');
  return new Promise((resolve) => {
    const thread = new Worker(new URL(`./load-thread.${ts ? 'ts' : 'js'}`, import.meta.url), {
      workerData: { file, env: { ...env }, hostUsers },
      execArgv: ts ? ['--import', 'tsx'] : [],
      stdout: false,
      stderr: false,
    });
    let result: ConfigResult | null = null;
    thread.once('message', (message: ConfigResult) => {
      result = message;
    });
    thread.once('error', () => resolve(null));
    thread.once('exit', () => resolve(result));
  });
}
