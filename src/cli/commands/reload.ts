/**
 * `sluice reload [-c FILE]`: validate the config file first (a broken one is reported here and
 * never sent), then signal the running primary (SIGHUP to the pid in `pid_file`) and, when the
 * admin listener is configured, wait for the outcome and print it.
 */
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { loadConfigFile } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';
import type { ResolvedConfig } from '../../config/types.js';
import { defaultConfigFile } from '../config-source.js';

const WAIT_MS = 60_000;

/** Reloads the running instance; returns the exit code. */
export async function runReload(opts: { config?: string }): Promise<number> {
  const file = opts.config ?? defaultConfigFile();
  if (file === null) {
    process.stderr.write('sluice reload: no config file; give -c FILE\n');
    return 2;
  }
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const p of result.problems) process.stdout.write(`${formatProblem(p)}\n`);
    process.stderr.write(`${file}: not reloaded; the running config stays\n`);
    return 2;
  }
  const config = result.config;
  if (config.pidFile === null) {
    process.stderr.write(
      `sluice reload: ${file} has no pid_file: to find the running sluice; add one, e.g. pid_file: /run/sluice.pid\n`,
    );
    return 2;
  }
  let pid: number;
  try {
    pid = Number(readFileSync(config.pidFile, 'utf8').trim());
  } catch (err) {
    process.stderr.write(
      `sluice reload: cannot read ${config.pidFile}: ${(err as Error).message}; is sluice running?\n`,
    );
    return 1;
  }
  const before = await lastReload(config);
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    process.stderr.write(`sluice reload: cannot signal pid ${pid}: ${(err as Error).message}\n`);
    return 1;
  }
  if (config.admin === null) {
    process.stdout.write(`sent SIGHUP to sluice (pid ${pid}); set admin.listen to see the outcome here\n`);
    return 0;
  }
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    const last = await lastReload(config);
    if (last !== null && last.at !== before?.at) {
      if (last.ok) {
        process.stdout.write(`reloaded (${last.how}); serving config ${last.config}\n`);
        return 0;
      }
      for (const p of last.problems) process.stdout.write(`${p}\n`);
      process.stderr.write('reload refused; the running config stays\n');
      return 1;
    }
  }
  process.stderr.write(`sent SIGHUP to pid ${pid}, but no outcome within ${WAIT_MS / 1000} s\n`);
  return 1;
}

interface LastReload {
  at: string;
  ok: boolean;
  how: string;
  config: string;
  problems: string[];
}

async function lastReload(config: ResolvedConfig): Promise<LastReload | null> {
  const admin = config.admin?.listen;
  if (admin === undefined) return null;
  const host = admin.host.includes(':') ? `[${admin.host}]` : admin.host;
  try {
    const res = await request(`http://${host}:${admin.port}/api/status`, {
      headersTimeout: 2000,
      bodyTimeout: 2000,
    });
    const doc = (await res.body.json()) as { reloads?: { last?: LastReload | null } };
    return doc.reloads?.last ?? null;
  } catch {
    return null;
  }
}
