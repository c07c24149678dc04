/** `sluice check -c FILE [--print]`: validate, print every problem, exit 2 when there is one. */

import { redactConfig } from '../../admin/redact-config.js';
import { loadConfigFile } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';
import { rootHandlersError } from '../../runtime/root-handlers.js';
import { reportProblems } from '../report-problems.js';

/** Runs the check and returns the exit code. */
export async function runCheck(opts: { config: string; print?: boolean }): Promise<number> {
  const result = await loadConfigFile(opts.config, process.env, { hostUsers: true });
  if (!result.ok) {
    reportProblems(opts.config, result.problems);
    return 2;
  }
  for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
  // Decided by who starts sluice, so not a config problem: said when that is who checks it now.
  const asRoot = rootHandlersError(result.config);
  if (asRoot !== null) {
    const problem = { file: opts.config, line: 0, col: 0, code: asRoot.code, hint: asRoot.hint };
    const message =
      'handler routes would run as root, which sluice start refuses when run as root, as this check is';
    process.stderr.write(`${formatProblem({ ...problem, message }, 'warning')}\n`);
  }
  if (opts.print) {
    // Secrets as GET /api/config shows them: the output lands in CI logs and bug reports.
    process.stdout.write(`${JSON.stringify(redactConfig(result.config), null, 2)}\n`);
  } else {
    const c = result.config;
    const routes = c.servers.reduce((n, s) => n + s.routes.length, 0);
    // Implicit upstreams (one per proxy.url origin) are named by their one target's origin: counted
    // apart, so the upstream figure matches what the file defines under upstreams:.
    const names = Object.keys(c.upstreams);
    const origins = Object.values(c.upstreams).filter(
      (u) => u.targets.length === 1 && u.name === u.targets[0]!.origin,
    ).length;
    const parts = [
      count(c.servers.length, 'server'),
      count(routes, 'route'),
      count(names.length - origins, 'upstream'),
    ];
    if (origins > 0) parts.push(count(origins, 'proxy.url origin'));
    process.stdout.write(`${opts.config}: ok (${parts.join(', ')})\n`);
  }
  return 0;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
