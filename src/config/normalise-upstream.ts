/**
 * One upstream under `upstreams:`: targets, balancing, passive and active health, retries, DNS
 * bounds; every default applied and every combination nginx refuses reported.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../core/ip-set.js';
import type { ConfigDir } from './config-dir.js';
import type { UpstreamDraft } from './config-draft.js';
import { durationOr } from './config-units.js';
import type { KeyPath } from './key-path.js';
import { normaliseUpstreamTls } from './normalise-security.js';
import type { ProblemCollector } from './problem-collector.js';
import { RETRY_CONDITIONS } from './schema.js';
import { parseTemplate } from './template.js';
import type {
  ResolvedHealthCheck,
  ResolvedRetry,
  ResolvedTarget,
  ResolvedUpstream,
  RetryCondition,
} from './types.js';
import { parseUpstreamUrl } from './upstream-url.js';

/** Idle connections kept per target and worker, unless `keepalive:` says otherwise. */
export const DEFAULT_KEEPALIVE = 32;
/** Below Node's own 5 s server keep-alive, so sluice never reuses a socket the target is closing. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 4000;
/** nginx's `max_fails=1 fail_timeout=10s`. */
export const DEFAULT_MAX_FAILS = 1;
export const DEFAULT_FAIL_TIMEOUT_MS = 10_000;
/** nginx's `proxy_next_upstream error timeout`, no caps. */
export const DEFAULT_RETRY: ResolvedRetry = {
  on: ['error', 'timeout'],
  tries: 0,
  timeoutMs: 0,
  nonIdempotent: false,
};
/** TTL bounds for `resolve: true` targets. */
export const DEFAULT_DNS_MIN_TTL_MS = 1000;
export const DEFAULT_DNS_MAX_TTL_MS = 300_000;

/** The upstream of a `proxy.url`: one target, every default. */
export function implicitUpstream(name: string, origin: string): ResolvedUpstream {
  return {
    name,
    balance: 'round_robin',
    hashKey: null,
    targets: [{ origin, weight: 1, backup: false, down: false, maxConns: 0, resolve: false }],
    keepalive: DEFAULT_KEEPALIVE,
    keepaliveTimeoutMs: DEFAULT_KEEPALIVE_TIMEOUT_MS,
    maxFails: DEFAULT_MAX_FAILS,
    failTimeoutMs: DEFAULT_FAIL_TIMEOUT_MS,
    healthCheck: null,
    retry: DEFAULT_RETRY,
    dnsMinTtlMs: DEFAULT_DNS_MIN_TTL_MS,
    dnsMaxTtlMs: DEFAULT_DNS_MAX_TTL_MS,
    tls: null,
  };
}

/** Resolves one upstream; problems are reported under `path`. */
export function normaliseUpstream(
  name: string,
  draft: UpstreamDraft,
  path: KeyPath,
  problems: ProblemCollector,
  baseDir: ConfigDir,
): ResolvedUpstream {
  const balance = draft.balance ?? 'round_robin';
  const targets = normaliseTargets(draft, path, problems);
  const hashed = balance === 'hash' || balance === 'ip_hash' || balance === 'random';
  draft.targets?.forEach((t, i) => {
    if (t?.backup && hashed) {
      problems.error(
        [...path, 'targets', i, 'backup'],
        'SLUICE_E_CONFIG_VALUE',
        `backup targets cannot be used with balance: ${balance}`,
        {
          hint: 'as in nginx, backups work with round_robin and least_conn; remove backup or change balance',
        },
      );
    }
  });
  let hashKey: string | null = null;
  if (balance === 'hash') {
    if (draft.hash_key === undefined) {
      problems.error([...path, 'balance'], 'SLUICE_E_CONFIG_MISSING_KEY', 'balance: hash needs hash_key', {
        hint: 'add hash_key: with the value to hash, e.g. $http_x_user_id, $remote_addr or $request_uri',
      });
    } else if (draft.hash_key.trim() === '') {
      // Every request would hash alike: one target would take them all.
      problems.error([...path, 'hash_key'], 'SLUICE_E_CONFIG_VALUE', 'must not be empty', {
        hint: 'write the value to hash, e.g. $http_x_user_id, $remote_addr or $request_uri',
      });
    } else {
      const parsed = parseTemplate(draft.hash_key);
      if ('error' in parsed) problems.error([...path, 'hash_key'], 'SLUICE_E_CONFIG_VARIABLE', parsed.error);
      else hashKey = draft.hash_key;
    }
  } else if (draft.hash_key !== undefined) {
    // A warning, not a refusal: the key changes nothing (nginx has no such pairing to refuse), and
    // CONTRACT's own example config lists it beside balance: round_robin.
    problems.warn(
      [...path, 'hash_key'],
      'SLUICE_E_CONFIG_VALUE',
      `hash_key is used only with balance: hash, not ${balance}: it is ignored`,
      {
        hint: 'set balance: hash, or remove hash_key',
      },
    );
  }
  if (targets.length > 0 && targets.every((t) => t.down)) {
    problems.warn(
      [...path, 'targets'],
      'SLUICE_E_CONFIG_VALUE',
      'every target is down: requests to this upstream get 502',
      { hint: 'remove down: true from a target, or the routes that proxy to this upstream' },
    );
  }
  // `tls:` applies to https:// targets only: beside http:// ones, a `spiffe_id` pin or a CA meant
  // every target to be checked while some were reached in plain text.
  const plain = targets.filter((t) => t.origin.startsWith('http://'));
  if (draft.tls !== undefined && draft.tls !== null && plain.length > 0) {
    problems.warn(
      [...path, 'tls'],
      'SLUICE_E_CONFIG_VALUE',
      `tls applies to https:// targets only; ${plain.length === targets.length ? 'every target is' : `${plain.length} of the ${targets.length} targets ${plain.length === 1 ? 'is' : 'are'}`} http:// (${plain[0]!.origin}${plain.length > 1 ? ', ...' : ''}) and reached without TLS`,
      { hint: 'write those targets with https://, or remove tls: if they are meant to be plain HTTP' },
    );
  }
  const dnsMinTtlMs = durationOr(draft.dns?.min_ttl, DEFAULT_DNS_MIN_TTL_MS);
  const dnsMaxTtlMs = durationOr(draft.dns?.max_ttl, DEFAULT_DNS_MAX_TTL_MS);
  if (dnsMinTtlMs <= 0 || dnsMaxTtlMs < dnsMinTtlMs) {
    problems.error([...path, 'dns'], 'SLUICE_E_CONFIG_VALUE', 'dns needs 0 < min_ttl <= max_ttl', {
      hint: 'e.g. min_ttl: 1s and max_ttl: 5m (the defaults)',
    });
  }
  return {
    name,
    balance,
    hashKey,
    targets,
    keepalive: draft.keepalive ?? DEFAULT_KEEPALIVE,
    keepaliveTimeoutMs: durationOr(draft.keepalive_timeout, DEFAULT_KEEPALIVE_TIMEOUT_MS),
    maxFails: draft.max_fails ?? DEFAULT_MAX_FAILS,
    failTimeoutMs: durationOr(draft.fail_timeout, DEFAULT_FAIL_TIMEOUT_MS),
    healthCheck:
      draft.health_check === undefined
        ? null
        : normaliseHealthCheck(draft.health_check, [...path, 'health_check'], problems),
    retry: normaliseRetry(draft.retry, [...path, 'retry']),
    dnsMinTtlMs,
    dnsMaxTtlMs,
    tls: normaliseUpstreamTls(draft.tls, [...path, 'tls'], baseDir, problems),
  };
}

/**
 * The socket a target origin connects to, as one text: an IPv4-mapped address is the IPv4 address
 * it carries (`http://[::ffff:7f00:1]:80` is `http://127.0.0.1:80`), so two spellings of one
 * target are reported as listed twice, as `[0:0::1]` and `[::1]` are (the URL parser spells those
 * alike already).
 */
function targetSocket(origin: string): string {
  const m = /^(https?:\/\/)\[([^\]]+)\](.*)$/.exec(origin);
  const ip = m === null ? null : canonicalIp(m[2]!);
  return m === null || ip === null || isIP(ip) !== 4 ? origin : `${m[1]}${ip}${m[3]}`;
}

function normaliseTargets(draft: UpstreamDraft, path: KeyPath, problems: ProblemCollector): ResolvedTarget[] {
  const targets: ResolvedTarget[] = [];
  /** The targets listed so far, by the socket they connect to. */
  const origins = new Map<string, { index: number; origin: string }>();
  draft.targets?.forEach((target, i) => {
    if (target?.url === undefined) return;
    const at: KeyPath = [...path, 'targets', i, 'url'];
    const url = parseUpstreamUrl(target.url);
    if ('error' in url) {
      problems.error(at, 'SLUICE_E_CONFIG_URL', url.error);
      return;
    }
    if (url.basePath !== '') {
      problems.error(
        at,
        'SLUICE_E_CONFIG_URL',
        `a target is an origin only (scheme, host and port); ${JSON.stringify(target.url)} has the path ${JSON.stringify(url.basePath)}`,
        {
          hint: 'remove the path; to prefix forwarded paths, proxy to this target with proxy.url: http://HOST:PORT/base',
        },
      );
      return;
    }
    const socket = targetSocket(url.origin);
    const first = origins.get(socket);
    if (first !== undefined) {
      const mapped =
        first.origin === url.origin
          ? ''
          : ` (${first.origin}: an IPv4-mapped address is the IPv4 address it carries)`;
      problems.error(
        at,
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `target ${url.origin} is already listed as targets[${first.index}]${mapped}`,
        {
          hint: 'list each target once; give it a weight to send it a larger share',
        },
      );
      return;
    }
    const resolve = target.resolve ?? false;
    if (resolve && isIP(new URL(url.origin).hostname.replace(/^\[|\]$/g, '')) !== 0) {
      problems.error(
        [...path, 'targets', i, 'resolve'],
        'SLUICE_E_CONFIG_VALUE',
        'resolve: true needs a host name, not an IP address',
        {
          hint: 'remove resolve, or write the DNS name whose A/AAAA records are the targets',
        },
      );
      return;
    }
    origins.set(socket, { index: i, origin: url.origin });
    targets.push({
      origin: url.origin,
      weight: target.weight ?? 1,
      backup: target.backup ?? false,
      down: target.down ?? false,
      maxConns: target.max_conns ?? 0,
      resolve,
    });
  });
  return targets;
}

type HealthDraft = NonNullable<UpstreamDraft['health_check']>;

function normaliseHealthCheck(
  draft: HealthDraft,
  path: KeyPath,
  problems: ProblemCollector,
): ResolvedHealthCheck {
  const intervalMs = durationOr(draft.interval, 5000);
  const timeoutMs = durationOr(draft.timeout, 2000);
  if (intervalMs <= 0)
    problems.error([...path, 'interval'], 'SLUICE_E_CONFIG_VALUE', 'must be more than 0s', {
      hint: 'write the time between two probes of a target, e.g. 5s (the default)',
    });
  if (timeoutMs <= 0)
    problems.error([...path, 'timeout'], 'SLUICE_E_CONFIG_VALUE', 'must be more than 0s', {
      hint: 'write the time one probe may take, e.g. 2s (the default)',
    });
  const checkPath = draft.path ?? '/';
  if (!checkPath.startsWith('/')) {
    problems.error(
      [...path, 'path'],
      'SLUICE_E_CONFIG_VALUE',
      `must start with "/", not ${JSON.stringify(checkPath)}`,
      { hint: 'write the path probes request, e.g. /healthz' },
    );
  }
  const expect = parseStatusRanges(String(draft.expect_status ?? '200-399'));
  if ('error' in expect)
    problems.error([...path, 'expect_status'], 'SLUICE_E_CONFIG_VALUE', expect.error, {
      hint: 'statuses are 100-599; separate statuses and ranges with commas',
    });
  return {
    path: checkPath,
    intervalMs,
    timeoutMs,
    rise: draft.rise ?? 2,
    fall: draft.fall ?? 3,
    expectStatus: 'error' in expect ? [[200, 399]] : expect.ranges,
    host: draft.host ?? null,
  };
}

/** Parses `"200-399"`, `"200"` or `"200,204,300-399"` into inclusive ranges. */
export function parseStatusRanges(text: string): { ranges: [number, number][] } | { error: string } {
  const ranges: [number, number][] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(part);
    const lo = Number(m?.[1]);
    const hi = m?.[2] === undefined ? lo : Number(m[2]);
    if (!m || lo < 100 || hi > 599 || lo > hi) {
      return {
        error: `${JSON.stringify(text)} is not a status or range list; write e.g. "200-399" or "200,204"`,
      };
    }
    ranges.push([lo, hi]);
  }
  return { ranges };
}

type RetryDraft = NonNullable<UpstreamDraft['retry']>;

function normaliseRetry(draft: RetryDraft | undefined, _path: KeyPath): ResolvedRetry {
  if (draft === undefined) return DEFAULT_RETRY;
  const on = new Set<RetryCondition>();
  for (const c of draft.on ?? DEFAULT_RETRY.on) {
    if (c === undefined || c === 'off') continue;
    if (c === 'http_5xx')
      for (const s of ['http_500', 'http_502', 'http_503', 'http_504'] as const) on.add(s);
    else on.add(c);
  }
  // `off` anywhere in the list turns retries off, as in nginx.
  const off = (draft.on ?? []).includes('off');
  return {
    on: off ? [] : RETRY_CONDITIONS.filter((c): c is RetryCondition => on.has(c as RetryCondition)),
    tries: draft.tries ?? 0,
    timeoutMs: durationOr(draft.timeout, 0),
    nonIdempotent: draft.non_idempotent ?? false,
  };
}
