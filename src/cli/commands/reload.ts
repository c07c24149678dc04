/**
 * `sluice reload [-c FILE]`: validate the config file first (a broken one is reported here and
 * never sent), then ask the running primary to reload: through `POST /api/reload` when the admin
 * listener is configured and `SLUICE_ADMIN_TOKEN` holds an operator token (the answer is the
 * outcome), else by SIGHUP to the pid in `pid_file`, polling `/api/status` for the outcome (with
 * `SLUICE_ADMIN_TOKEN` of any role when the admin API has tokens).
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { request } from 'undici';
import { formatProblem } from '../../config/problem.js';
import type { ResolvedConfig } from '../../config/types.js';
import { sameFile } from '../../core/same-file.js';
import { defaultConfigFile } from '../config-source.js';
import { listeningAddresses } from '../listening-addresses.js';
import { loadConfigLeavingEnv } from '../load-leaving-env.js';

const WAIT_MS = 60_000;

/** Reloads the running instance; returns the exit code. */
export async function runReload(opts: { config?: string }): Promise<number> {
  const file = opts.config ?? defaultConfigFile();
  if (file === null) {
    process.stderr.write('sluice reload: no config file; give -c FILE\n');
    return 2;
  }
  // Variables only the service has are checked by the running sluice, in its own environment.
  const result = await loadConfigLeavingEnv(file, 'the running sluice, which reads its own environment');
  if (!result.ok) {
    for (const p of result.problems) process.stdout.write(`${formatProblem(p)}\n`);
    // Whether a sluice runs is not known yet (the pid_file is in the config that did not load).
    process.stderr.write(`${file}: not reloaded; a running sluice keeps the config it has\n`);
    return 2;
  }
  const config = result.config;
  // The running sluice's own warnings come with its outcome; these stand in where there is none.
  const checked = result.warnings.map((w) => formatProblem(w, 'warning'));
  const warn = (outcome?: { warnings?: readonly string[] }): void => {
    for (const w of outcome?.warnings ?? checked) process.stderr.write(`${w}\n`);
  };
  const token = process.env.SLUICE_ADMIN_TOKEN;
  // A reload re-reads the file the running sluice was started with: given another file, it would
  // report that one's outcome as this one's. Checked where the admin API says which it is.
  const url = adminUrl(config.admin?.listen);
  const running = await reloadState(url, token);
  if (typeof running === 'object' && typeof running?.file === 'string' && !sameFile(running.file, file))
    return otherFile(running.file, file);
  // The hash the running sluice should report: not known when variables were stand-ins here.
  const expected = (result.standIns ?? []).length === 0 ? config.hash : null;
  const done = (outcome: Partial<LastReload>): number => reloaded(outcome, expected, file);
  if (config.admin !== null && token !== undefined && token !== '') {
    // A viewer or developer token cannot reload through the API, but it can read the outcome of
    // a SIGHUP: that is the way left when there is a pid file.
    const code = await reloadByApi(config, token, config.pidFile !== null, warn, done);
    if (code !== 'use-signal') return code;
  }
  if (config.pidFile === null) {
    process.stderr.write(
      `sluice reload: ${file} has no pid_file: to find the running sluice; add one, e.g. pid_file: /run/sluice/sluice.pid (under systemd, in its RuntimeDirectory=)\n`,
    );
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(config.pidFile, 'utf8').trim();
  } catch (err) {
    process.stderr.write(
      `sluice reload: cannot read ${config.pidFile}: ${(err as Error).message}; is sluice running?\n`,
    );
    return 1;
  }
  // What sluice writes is the pid and a line break; anything else was "pid NaN" in the message.
  if (!/^[1-9]\d*$/.test(text)) {
    process.stderr.write(
      `sluice reload: ${config.pidFile} holds no pid (${JSON.stringify(text.slice(0, 40))}); is sluice running?\n`,
    );
    return 1;
  }
  const pid = Number(text);
  // A pid file left by a sluice that was killed may name another process by now, which SIGHUP's
  // default action would end.
  if (!looksLikeSluice(pid)) {
    process.stderr.write(
      `sluice reload: pid ${pid} (from ${config.pidFile}) is not a running sluice; is sluice running?\n`,
    );
    return 1;
  }
  // Where the admin API could not say it (no admin API, or no token to read it): the command line.
  const started = startedWith(pid);
  if (started !== null && !sameFile(started, file)) return otherFile(started, file);
  let seen = await reloadState(url, token);
  // Nothing answers at the file's admin address: the file may move admin.listen. The running
  // config's address has the outcome of a move it refuses (the new address is never served then).
  const previous = seen === null && url !== null ? await runningAdmin(pid, config) : null;
  if (previous !== null) seen = await reloadState(previous, token);
  const before = seen === 'unauthorized' ? null : seen;
  // Without a token to read /api/status, the reload counts on /metrics (open unless metrics_auth)
  // still tell success from refusal: before, the command said "the outcome is in its log" and
  // exited 0 for a refused reload too.
  // From either address: both are the running sluice's (a reload that moves admin.listen serves
  // the new one once done, and the old one no more).
  const counts = async (): Promise<ReloadCounts | null> =>
    (await reloadCounts(url)) ?? (await reloadCounts(previous));
  const countsBefore = seen === 'unauthorized' ? await counts() : null;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    process.stderr.write(`sluice reload: cannot signal pid ${pid}: ${(err as Error).message}\n`);
    return 1;
  }
  if (url === null) {
    warn();
    process.stdout.write(`sent SIGHUP to sluice (pid ${pid}); set admin.listen to see the outcome here\n`);
    return 0;
  }
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    const states = await Promise.all([url, previous].map((base) => reloadState(base, token)));
    // This signal's outcome: requests are numbered as they arrive, so one already running when
    // the signal came (its outcome comes first) is not taken for it.
    // (A running sluice from before request numbers: the first outcome newer than the one seen.)
    const ours = (state: ReloadState | 'unauthorized' | null): LastReload | null => {
      const last = typeof state === 'object' ? (state?.last ?? null) : null;
      if (last === null) return null;
      const newer =
        before?.requested !== undefined
          ? (last.request ?? 0) > before.requested
          : last.at !== before?.last?.at;
      return newer ? last : null;
    };
    // From whichever address has it: both are the running sluice's.
    const last = states.map(ours).find((o) => o !== null) ?? null;
    if (last !== null) {
      warn(last);
      if (last.ok) return done(last);
      refused(last);
      return 1;
    }
    if (states.includes('unauthorized')) {
      const now = countsBefore === null ? null : await counts();
      const counted = countsBefore === null ? null : countedOutcome(countsBefore, now);
      if (counted === 'success') {
        warn();
        process.stdout.write(
          `reloaded (SIGHUP to pid ${pid}, counted on /metrics); set SLUICE_ADMIN_TOKEN to a token of any role to see which config it serves\n`,
        );
        return 0;
      }
      if (counted === 'failure') {
        warn();
        process.stderr.write(
          `sent SIGHUP to sluice (pid ${pid}): its reload failed (counted on /metrics); the problems are in its log, or set SLUICE_ADMIN_TOKEN to a token of any role to see them here\n`,
        );
        process.stderr.write(refusedLine([]));
        return 1;
      }
      // Counts that cannot be read (any more): the outcome is left to the log, as before them.
      if (countsBefore === null || now === null) {
        warn();
        process.stdout.write(
          `sent SIGHUP to sluice (pid ${pid}); the outcome is in its log, or set SLUICE_ADMIN_TOKEN to a token of any role to see it here\n`,
        );
        return 0;
      }
    }
    // A sluice that stopped (a stop signal, a crash) gives no outcome: waiting on would say nothing more.
    if (!stillRuns(pid)) {
      process.stderr.write(
        `sent SIGHUP to sluice (pid ${pid}), but it stopped before it reported an outcome (its log says why); nothing serves ${file} now\n`,
      );
      return 1;
    }
  }
  process.stderr.write(`sent SIGHUP to pid ${pid}, but no outcome within ${WAIT_MS / 1000} s\n`);
  return 1;
}

interface LastReload {
  /** Absent from servers before request numbers. */
  request?: number;
  at: string;
  ok: boolean;
  how: string;
  config: string;
  problems: string[];
  /** How many problems /api/status leaves out (it keeps the first 100); absent from servers before. */
  problems_omitted?: number;
  /** Absent from servers before reloads returned them. */
  warnings?: string[];
}

/** Prints a refused reload's problems on stdout, then how many it left out and its last line on stderr. */
function refused(outcome: Partial<LastReload>): void {
  const problems = outcome.problems ?? [];
  for (const p of problems) process.stdout.write(`${p}\n`);
  const omitted = outcome.problems_omitted ?? 0;
  if (omitted > 0)
    process.stderr.write(
      `and ${omitted} more problem${omitted === 1 ? '' : 's'}, which the running sluice does not keep; sluice check, run in the environment sluice runs in, lists them all\n`,
    );
  process.stderr.write(refusedLine(problems));
}

/** The last line of a refusal: the running config stays, unless sluice is stopping. */
function refusedLine(problems: readonly string[]): string {
  return problems.includes(STOPPING)
    ? 'reload refused; sluice is stopping, and serves nothing once it has stopped\n'
    : 'reload refused; the running config stays\n';
}

/** The problem a reload gets when a stop came first (runtime/primary.ts). */
const STOPPING = 'sluice is stopping';

/** The admin API's base URL at a listen address. */
function adminUrl(admin: { host: string; port: number } | undefined): string | null {
  if (admin === undefined) return null;
  const host = reachableHost(admin.host);
  return `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
}

/** The host to connect to for a listen host: the loopback for an unspecified one. */
function reachableHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

/**
 * The admin API of the running sluice `pid`, found among the addresses it listens on (Linux) that
 * the file does not name for its servers, egress proxy or admin API: the address of a running
 * config that the file moves. An address counts once it answers `/api/status` as this pid's admin
 * API does (its status, or the 401 that asks for a token, which is not sent before then); null
 * when none does or /proc cannot tell.
 */
async function runningAdmin(pid: number, config: ResolvedConfig): Promise<string | null> {
  // By address, not port alone: a move from 127.0.0.1:9090 to [::1]:9090 keeps the port. A host
  // name (not an address) may be any of the addresses on its port.
  const named = new Set(
    [
      ...config.servers.flatMap((s) => s.listen),
      ...(config.egress === null ? [] : [config.egress.listen]),
      ...(config.admin === null ? [] : [config.admin.listen]),
    ].map((a) => addressKey(a.host, a.port)),
  );
  for (const address of listeningAddresses(pid) ?? []) {
    if (named.has(addressKey(address.host, address.port)) || named.has(`* ${address.port}`)) continue;
    const base = adminUrl(address);
    try {
      // Bounded as a whole (a listener that streams its answer would hold the command otherwise).
      const res = await request(`${base}/api/status`, { signal: AbortSignal.timeout(2000) });
      const doc = (await res.body.json().catch(() => null)) as { pid?: unknown } | null;
      if (res.statusCode === 200 && doc?.pid === pid) return base;
      if (res.statusCode === 401 && res.headers['www-authenticate'] === 'Bearer realm="sluice"') return base;
    } catch {
      // Not an HTTP listener, or not answering: not the admin API.
    }
  }
  return null;
}

/** `host port` with the host as adminUrl reaches it (unspecified → loopback, IPv6 compressed); `* port` for a host name. */
function addressKey(host: string, port: number): string {
  const reached = reachableHost(host);
  const kind = isIP(reached);
  if (kind === 0) return `* ${port}`;
  return `${kind === 6 ? new URL(`http://[${reached}]`).hostname : reached} ${port}`;
}

function bearer(token: string | undefined): Record<string, string> {
  return token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` };
}

/**
 * `POST /api/reload` with the operator token; the answer carries the outcome. `use-signal` when
 * `fallback` says a SIGHUP can be sent instead and the API cannot do it: the token is of another
 * role, or nothing listens at the file's admin address (a reload that moves it).
 */
async function reloadByApi(
  config: ResolvedConfig,
  token: string,
  fallback: boolean,
  warn: (outcome: Partial<LastReload>) => void,
  done: (outcome: Partial<LastReload>) => number,
): Promise<number | 'use-signal'> {
  const url = `${adminUrl(config.admin?.listen)}/api/reload`;
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, {
      method: 'POST',
      headers: bearer(token),
      headersTimeout: WAIT_MS,
      bodyTimeout: WAIT_MS,
    });
  } catch (err) {
    // Nothing listens there: the file may move admin.listen, which the running sluice has not
    // done yet. The pid file still finds it.
    if (fallback && (err as { code?: unknown }).code === 'ECONNREFUSED') return 'use-signal';
    process.stderr.write(
      `sluice reload: cannot reach the admin API at ${url}: ${(err as Error).message}; is sluice running?\n`,
    );
    return 1;
  }
  const doc = (await res.body.json().catch(() => ({}))) as Partial<LastReload> & { detail?: string };
  if (res.statusCode === 200 && doc.ok === true) {
    warn(doc);
    return done(doc);
  }
  if (res.statusCode === 403 && fallback) return 'use-signal';
  if (res.statusCode === 422) {
    warn(doc);
    refused(doc);
    return 1;
  }
  process.stderr.write(
    `sluice reload: the admin API answered ${res.statusCode}${doc.detail === undefined ? '' : `: ${doc.detail}`}` +
      `${res.statusCode === 401 || res.statusCode === 403 ? ' (SLUICE_ADMIN_TOKEN must be an operator token)' : ''}\n`,
  );
  return 1;
}

/**
 * Prints a successful outcome, exit 0, when the running sluice serves the config this command
 * checked (`expected`, its hash; null when that cannot be known). Another hash means it read other
 * text than was checked (the file changed since) or a variable with another value in its own
 * environment: said on stderr instead, exit 1.
 */
function reloaded(outcome: Partial<LastReload>, expected: string | null, file: string): number {
  if (expected === null || outcome.config === undefined || outcome.config === expected) {
    process.stdout.write(`reloaded (${outcome.how}); serving config ${outcome.config}\n`);
    return 0;
  }
  process.stderr.write(
    `sluice reload: the running sluice reloaded (${outcome.how}) but serves config ${outcome.config}, not ${expected} as ${file} reads here: ` +
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the text names the config's literal ${NAME} syntax.
      'it read other text (the file changed after this check) or a ${VARIABLE} with another value in its environment; check GET /api/config\n',
  );
  return 1;
}

/** Refuses a reload the running sluice would answer by re-reading another file: exit 2. */
function otherFile(running: string, file: string): number {
  process.stderr.write(
    `sluice reload: the running sluice was started with ${running}, not ${resolve(file)}; a reload re-reads the file it was started with, so ${file} would not be read: not reloaded. Reload with -c ${running}, or restart sluice with -c ${file} to serve it\n`,
  );
  return 2;
}

/**
 * The config file a `sluice start -c FILE` process was given, resolved against its working
 * directory, where /proc tells; null when it cannot (another system, another user's process, no
 * -c: the file found in its directory is not guessed).
 */
function startedWith(pid: number): string | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const start = argv.indexOf('start');
    if (start < 0) return null;
    let given: string | undefined;
    for (let i = start + 1; i < argv.length; i++) {
      const arg = argv[i]!;
      if (arg === '-c' || arg === '--config') given = argv[i + 1];
      else if (arg.startsWith('--config=')) given = arg.slice('--config='.length);
      else if (arg.startsWith('-c') && arg.length > 2) given = arg.slice(2);
    }
    if (given === undefined || given === '') return null;
    return resolve(readlinkSync(`/proc/${pid}/cwd`), given);
  } catch {
    return null;
  }
}

/** `/api/status`: the running config's file, the last reload outcome, and the latest request's number. */
interface ReloadState {
  /** Absent from servers that do not say it; null for a config given as an object. */
  file?: string | null;
  requested?: number;
  last: LastReload | null;
}

async function reloadState(
  base: string | null,
  token: string | undefined,
): Promise<ReloadState | 'unauthorized' | null> {
  if (base === null) return null;
  try {
    const res = await request(`${base}/api/status`, {
      headers: bearer(token),
      headersTimeout: 2000,
      bodyTimeout: 2000,
    });
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      return 'unauthorized';
    }
    const doc = (await res.body.json()) as {
      config?: { file?: string | null };
      reloads?: { requested?: number; last?: LastReload | null };
    };
    return { file: doc.config?.file, requested: doc.reloads?.requested, last: doc.reloads?.last ?? null };
  } catch {
    return null;
  }
}

interface ReloadCounts {
  readonly success: number;
  readonly failure: number;
}

/** `sluice_config_reloads_total` by result, as `/metrics` at `base` shows it; null when it cannot be read. */
async function reloadCounts(base: string | null): Promise<ReloadCounts | null> {
  if (base === null) return null;
  try {
    const res = await request(`${base}/metrics`, { headersTimeout: 2000, bodyTimeout: 2000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    const text = await res.body.text();
    const count = (result: string): number | null => {
      const m = new RegExp(`^sluice_config_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
      return m === null ? null : Number(m[1]);
    };
    const success = count('success');
    const failure = count('failure');
    return success === null || failure === null ? null : { success, failure };
  } catch {
    return null;
  }
}

/**
 * The outcome the counts show: which of them grew since `before`. A reload another client asked
 * for at the same moment could be taken for this one, a failure winning over a success;
 * /api/status, with a token, tells them apart.
 */
function countedOutcome(before: ReloadCounts, now: ReloadCounts | null): 'success' | 'failure' | null {
  if (now === null) return null;
  if (now.failure > before.failure) return 'failure';
  if (now.success > before.success) return 'success';
  return null;
}

/** Whether `pid` still runs sluice: a process that exited, or one ended and not yet reaped, does not. */
function stillRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // An ended process not yet reaped by its parent still takes signals, with an empty command line.
  return looksLikeSluice(pid);
}

/** Whether `pid` runs sluice, by its command line where /proc tells (elsewhere: assumed). */
function looksLikeSluice(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch (err) {
    // No such process, or no /proc on this system (then the signal decides).
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
  }
  return /sluice|cli\/bin\.js/.test(cmdline);
}
