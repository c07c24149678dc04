/**
 * Schema output → `ResolvedConfig`: defaults applied, units converted, addresses parsed, names
 * given, cross references checked, hashed and deep-frozen. Each problem is reported at the node
 * that caused it. Runs on the salvaged parts too when the schema check failed, so meaning
 * problems are reported together with shape problems (see config-draft.ts).
 */

import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { deepFreeze } from '../core/deep-freeze.js';
import { redactUrl } from '../core/redact.js';
import { MAX_REDIS_DATABASE, redisDatabase } from '../core/redis-database.js';
import { checkListeners, type NamedPlan, type OwnListener } from './check-listeners.js';
import { ConfigDir } from './config-dir.js';
import type { ConfigDraft } from './config-draft.js';
import { durationOr } from './config-units.js';
import type { KeyPath } from './key-path.js';
import { parseListenAddress } from './listen-address.js';
import { nonEmpty } from './non-empty.js';
import { normaliseAdmin, normaliseEgress, normaliseTokens } from './normalise-security.js';
import { normaliseServer, type PlacedAddress } from './normalise-server.js';
import type { ProblemCollector } from './problem-collector.js';
import { checkRateLimitZones } from './rate-limit-zones.js';
import type { ResolvedConfig, ResolvedLog, ResolvedTracing } from './types.js';
import { assignUniqueNames } from './unique-names.js';
import { UpstreamRegistry } from './upstream-registry.js';
import { refuseUserinfo } from './url-userinfo.js';

/** Where the admin API listens when `admin:` is given without `listen:`. */
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:9090';
/** The graceful drain deadline when `shutdown_timeout:` is absent. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/** What normalising needs besides the draft. */
export interface NormaliseOptions {
  /** Absolute path of the config file (relative log paths resolve next to it), or `null`. */
  readonly file: string | null;
  /**
   * Names under `upstreams:` in the input, including ones whose body is malformed, so a
   * reference to them is not also "unknown"; `null` when `upstreams:` itself is malformed.
   */
  readonly declaredUpstreams: ReadonlySet<string> | null;
  /** Where token_env variables are read (the process environment when not given). */
  readonly env?: Readonly<Record<string, string | undefined>> | null;
}

/** Resolves a (possibly salvaged) config; the result is meaningful only if no problem was reported. */
export function normaliseConfig(
  draft: ConfigDraft,
  options: NormaliseOptions,
  problems: ProblemCollector,
): ResolvedConfig {
  const baseDir = new ConfigDir(options.file === null ? process.cwd() : dirname(options.file));
  const upstreams = new UpstreamRegistry(draft.upstreams, options.declaredUpstreams, problems, baseDir);

  const plans = (draft.servers ?? []).map((s, i) =>
    s === undefined ? undefined : normaliseServer(s, i, upstreams, problems, baseDir),
  );
  const names = assignUniqueNames(
    plans.map((p) =>
      p === undefined ? undefined : { explicit: p.explicitName, derived: p.derivedName, path: p.path },
    ),
    'server',
    problems,
  );
  const named: NamedPlan[] = plans.flatMap((plan, i) =>
    plan === undefined ? [] : [{ plan, name: names[i] ?? '' }],
  );

  let adminListen: PlacedAddress | null = null;
  if (draft.admin !== undefined) {
    const path: KeyPath = draft.admin.listen === undefined ? ['admin'] : ['admin', 'listen'];
    const parsed = parseListenAddress(draft.admin.listen ?? DEFAULT_ADMIN_LISTEN);
    if ('error' in parsed) problems.error(path, 'SLUICE_E_CONFIG_LISTEN', parsed.error);
    else adminListen = { address: parsed, path };
  }
  const own: OwnListener[] = [];
  if (adminListen !== null)
    own.push({ placed: adminListen, what: 'the admin API', example: '127.0.0.1:9090' });
  if (draft.egress?.listen !== undefined) {
    const parsed = parseListenAddress(draft.egress.listen);
    if (!('error' in parsed)) {
      own.push({
        placed: { address: parsed, path: ['egress', 'listen'] },
        what: 'the egress proxy',
        example: '127.0.0.1:3128',
      });
    }
  }
  checkListeners(named, own, problems);
  checkRateLimitZones(draft.servers, problems);

  const env = options.env ?? process.env;
  let admin: ResolvedConfig['admin'] = null;
  if (draft.admin !== undefined) {
    if (adminListen !== null)
      admin = normaliseAdmin(draft.admin, adminListen.address, baseDir, env, problems);
    // A bad address must not hide the tokens' own problems: both are reported in one run.
    else normaliseTokens(draft.admin.tokens, baseDir, env, problems);
  }
  const pidFile = nonEmpty(
    draft.pid_file,
    ['pid_file'],
    'write a file path, e.g. /run/sluice/sluice.pid, or remove pid_file:',
    problems,
  );

  const body = {
    version: 1 as const,
    workers: draft.workers ?? 'auto',
    shutdownTimeoutMs: durationOr(draft.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT_MS),
    user: nonEmpty(
      draft.user,
      ['user'],
      'write a user name or uid, or remove user: to keep the user sluice starts as',
      problems,
    ),
    group: nonEmpty(
      draft.group,
      ['group'],
      "write a group name or gid, or remove group: to use the user's group",
      problems,
    ),
    pidFile: pidFile === null ? null : baseDir.resolve(pidFile),
    allowRootHandlers: draft.allow_root_handlers ?? false,
    log: normaliseLog(draft.log, baseDir, problems),
    tracing: normaliseTracing(draft.tracing, problems),
    admin,
    egress: normaliseEgress(draft.egress, problems),
    state: { redis: normaliseRedis(draft.state?.redis, problems) },
    servers: named.map(({ plan, name }) => ({ name, ...plan.server })),
    upstreams: upstreams.toRecord(),
  };
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  const { version, ...rest } = body;
  // Outside the hash: where the file lies is not what it configures.
  return deepFreeze({ version, file: options.file, hash, ...rest, relativePaths: baseDir.relativePaths() });
}

function normaliseRedis(url: string | undefined, problems: ProblemCollector): string | null {
  if (url === undefined) return null;
  const at = ['state', 'redis'];
  const shown = JSON.stringify(redactUrl(url));
  if (refuseUserinfo(url, at, problems)) return null;
  let parsed: URL;
  try {
    // As ioredis tells a URL from a host name: `redis:pw@host` is no URL to it.
    if (!/^rediss?:\/\//i.test(url)) throw new Error('scheme');
    parsed = new URL(url);
  } catch {
    problems.error(at, 'SLUICE_E_CONFIG_URL', `${shown} is not a redis:// URL`, {
      hint: 'write redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0',
    });
    return null;
  }
  const database = redisDatabase(parsed);
  if (database.ok) return url;
  // Refused here: at runtime ioredis read `/abc` as NaN, and its SELECT NaN ended the process.
  problems.error(
    at,
    'SLUICE_E_CONFIG_URL',
    `${shown}: the database ${JSON.stringify(database.text)} is not a number from 0 to ${MAX_REDIS_DATABASE}`,
    {
      hint: 'write the database number after the port (redis://HOST:PORT/0) or as ?db=0; a Redis server has 16 by default, 0 to 15',
    },
  );
  return null;
}

function normaliseTracing(draft: ConfigDraft['tracing'], problems: ProblemCollector): ResolvedTracing {
  const endpoint = draft?.otlp_endpoint;
  return {
    otlpEndpoint: endpoint === undefined ? null : normaliseOtlpEndpoint(endpoint, problems),
    sampleRatio: draft?.sample_ratio ?? 1,
    serviceName: draft?.service_name ?? 'sluice',
  };
}

function normaliseOtlpEndpoint(endpoint: string, problems: ProblemCollector): string | null {
  const at = ['tracing', 'otlp_endpoint'];
  const shown = JSON.stringify(redactUrl(endpoint));
  if (refuseUserinfo(endpoint, at, problems)) return null;
  let url: URL;
  try {
    url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    problems.error(at, 'SLUICE_E_CONFIG_URL', `${shown} is not an http(s) URL`, {
      hint: 'write the collector URL, e.g. http://127.0.0.1:4318/v1/traces',
    });
    return null;
  }
  // The exporter posts to the URL as written: a collector's base address gets spans at `/`,
  // which collectors answer 404 (the SDK drops them).
  if (url.pathname === '/' || url.pathname === '') {
    problems.warn(at, 'SLUICE_E_CONFIG_URL', `${shown} has no path: spans are posted to "/"`, {
      hint: `OTLP/HTTP collectors take traces at /v1/traces: ${url.origin}/v1/traces`,
    });
  }
  return endpoint;
}

function normaliseLog(
  draft: ConfigDraft['log'],
  baseDir: ConfigDir,
  problems: ProblemCollector,
): ResolvedLog {
  let access = draft?.access ?? 'stdout';
  if (access.trim() === '') {
    problems.error(
      ['log', 'access'],
      'SLUICE_E_CONFIG_VALUE',
      'expected stdout, off or a file path, got an empty string',
      { hint: 'write stdout, off, or the path of the access log file' },
    );
  } else if (access !== 'stdout' && access !== 'off') {
    // Relative to the config file, not to wherever sluice happens to be started from.
    access = baseDir.resolve(access);
  }
  return { level: draft?.level ?? 'info', access, format: draft?.format ?? 'json' };
}
