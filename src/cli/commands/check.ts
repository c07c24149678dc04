/** `sluice check -c FILE [--print]`: validate, print every problem, exit 2 when there is one. */

import { loadConfigFile } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';

/** Runs the check and returns the exit code. */
export async function runCheck(opts: { config: string; print?: boolean }): Promise<number> {
  const result = await loadConfigFile(opts.config);
  if (!result.ok) {
    for (const p of result.problems) process.stdout.write(`${formatProblem(p)}\n`);
    const n = result.problems.length;
    process.stderr.write(`${opts.config}: ${n} problem${n === 1 ? '' : 's'}\n`);
    return 2;
  }
  for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
  if (opts.print) {
    process.stdout.write(`${JSON.stringify(result.config, null, 2)}\n`);
  } else {
    const c = result.config;
    const routes = c.servers.reduce((n, s) => n + s.routes.length, 0);
    process.stdout.write(
      `${opts.config}: ok (${c.servers.length} server${c.servers.length === 1 ? '' : 's'}, ${routes} route${routes === 1 ? '' : 's'}, ${Object.keys(c.upstreams).length} upstream${Object.keys(c.upstreams).length === 1 ? '' : 's'})\n`,
    );
  }
  return 0;
}
