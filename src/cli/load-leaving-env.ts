/**
 * Loading a config that names `${VARIABLES}` the service has (systemd's EnvironmentFile=, a
 * Kubernetes Secret, token_env) and this shell does not. Commands that only read the config here
 * (`reload`, `init`, `doctor`) check it with a stand-in for each one instead, so everything else is
 * still caught; the missing variables are warnings, left to the process that reads its own
 * environment.
 */
import { type ConfigResult, loadConfigFile } from '../config/load.js';
import { formatProblem } from '../config/problem.js';

/**
 * Loads `file`; when its only problems are unset variables, loads it again with stand-ins and
 * writes each as a warning on stderr, followed by `(left to ...)`.
 */
export async function loadConfigLeavingEnv(file: string, leftTo: string): Promise<ConfigResult> {
  const result = await loadConfigFile(file);
  if (result.ok || !result.problems.every((p) => p.code === 'SLUICE_E_CONFIG_ENV')) return result;
  const standIn = await loadConfigFile(file, withStandIns(process.env));
  if (!standIn.ok) return result;
  for (const p of result.problems)
    process.stderr.write(`${formatProblem(p, 'warning')} (left to ${leftTo})\n`);
  return standIn;
}

/** An environment in which every unset variable reads as a stand-in value. */
function withStandIns(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return new Proxy(env, {
    get: (target, name) =>
      typeof name === 'string' && (target[name] === undefined || target[name] === '')
        ? 'sluice-env-stand-in'
        : Reflect.get(target, name),
  }) as Record<string, string | undefined>;
}
