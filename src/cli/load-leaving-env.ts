/**
 * Loading a config that names `${VARIABLES}` the service has (systemd's EnvironmentFile=, a
 * Kubernetes Secret, token_env) and this shell does not. Commands that only read the config here
 * (`reload`, `init`, `doctor`) check it with a stand-in for each one instead (stand-ins.ts), so
 * everything else is still caught; the missing variables are warnings, left to the process that
 * reads its own environment. A variable what the command makes from the config depends on (the
 * ports of a Kubernetes Service, the workers a file limit is sized for) stays a problem: a stand-in
 * there would be written out as if it were the value.
 */
import { type ConfigResult, loadConfigFile } from '../config/load.js';
import { formatProblem } from '../config/problem.js';
import { StandIns } from '../config/stand-ins.js';
import type { ResolvedConfig } from '../config/types.js';

/** A load's result; once loaded, the variables read as stand-ins (none when the shell had them all). */
export type LeavingEnvResult = ConfigResult & { readonly standIns?: readonly string[] };

/**
 * Loads `file`; when its only problems are unset variables, loads it again with stand-ins and
 * writes each as a warning on stderr, followed by `(left to ...)`. With `derive` (what the command
 * makes from the config), a variable whose stand-in changes what `derive` returns is a problem,
 * its hint saying to set it: each variable is given other values in turn (small ones, then far
 * larger numbers) and what `derive` returns compared.
 */
export async function loadConfigLeavingEnv(
  file: string,
  leftTo: string,
  derive?: (config: ResolvedConfig) => unknown,
): Promise<LeavingEnvResult> {
  const result = await loadConfigFile(file);
  if (result.ok || !result.problems.every((p) => p.code === 'SLUICE_E_CONFIG_ENV')) return result;
  const standIns = new StandIns();
  const standIn = await loadConfigFile(file, process.env, { standIns });
  if (!standIn.ok) return result;
  if (derive !== undefined) {
    const base = JSON.stringify(derive(standIn.config));
    const needed: string[] = [];
    for (const name of standIns.names) {
      const other = await loadConfigFile(file, process.env, { standIns: standIns.varied(name) });
      if (!other.ok || JSON.stringify(derive(other.config)) !== base) {
        needed.push(name);
        continue;
      }
      // Two small values can both fall under a floor (65536 open files, somaxconn 65535) and
      // derive the same; a far larger one passes it. Where no later check takes it (a port), the
      // config has a problem: that says nothing of what is derived.
      const far = await loadConfigFile(file, process.env, { standIns: standIns.varied(name, true) });
      if (far.ok && JSON.stringify(derive(far.config)) !== base) needed.push(name);
    }
    const mentions = (message: string): string | undefined =>
      needed.find((name) => message.includes(`environment variable ${name} is not set`));
    if (needed.length > 0) {
      const problems = result.problems.flatMap((p) => {
        const name = mentions(p.message);
        if (name === undefined) {
          process.stderr.write(`${formatProblem(p, 'warning')} (left to ${leftTo})\n`);
          return [];
        }
        const hint = `what this command writes depends on it: run it with ${name} set as the service has it`;
        return [{ ...p, hint }];
      });
      return { ok: false, problems };
    }
  }
  for (const p of result.problems)
    process.stderr.write(`${formatProblem(p, 'warning')} (left to ${leftTo})\n`);
  return { ...standIn, standIns: standIns.names };
}
