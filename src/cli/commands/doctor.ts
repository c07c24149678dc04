/**
 * `sluice doctor [-c FILE] [--json] [--root DIR]`: audit the host for high-concurrency serving.
 *
 *   -c FILE ─▶ sizing ─┐
 *   probe (root) ─▶ facts ─▶ runChecks ─▶ renderTable | renderJson ─▶ stdout
 *
 * Exit 0 when no check fails, 1 when one does, 2 when the config or the arguments are wrong.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatProblem } from '../../config/problem.js';
import { exitCodeFor, runChecks } from '../../ops/doctor/checks.js';
import { type DoctorSizing, NO_CONFIG_SIZING, sizingFromConfig } from '../../ops/doctor/doctor-sizing.js';
import { probeHost } from '../../ops/doctor/probe.js';
import { renderJson } from '../../ops/doctor/render-json.js';
import { colorWanted, renderTable } from '../../ops/doctor/render-table.js';
import { loadConfigLeavingEnv } from '../load-leaving-env.js';
import { reportProblems } from '../report-problems.js';

/** Runs the audit and returns the exit code. */
export async function runDoctor(opts: { config?: string; json?: boolean; root?: string }): Promise<number> {
  const root = resolve(opts.root ?? '/');
  let sizing: DoctorSizing = NO_CONFIG_SIZING;
  if (opts.config !== undefined) {
    // The doctor sizes by the config's numbers; a variable only the service has is no matter here.
    const file = opts.config;
    const result = await loadConfigLeavingEnv(
      file,
      'the service, which reads its own environment',
      (config) => sizingFromConfig(config, file, join(root, '/')),
    );
    if (!result.ok) {
      reportProblems(opts.config, result.problems);
      return 2;
    }
    for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
    sizing = sizingFromConfig(result.config, opts.config, join(root, '/'));
  }

  if (!(await isDirectory(root))) {
    process.stderr.write(`sluice doctor: --root ${opts.root}: not a directory\n`);
    return 2;
  }
  // Commands and $SSL_CERT_FILE describe this host, not a tree standing in for one.
  const facts = await probeHost({ root, live: root === '/', env: process.env });
  const results = runChecks(facts, sizing);
  process.stdout.write(
    opts.json
      ? renderJson(results)
      : renderTable(results, { color: colorWanted(process.env, process.stdout.isTTY === true) }),
  );
  return exitCodeFor(results);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
