/** One `servers:` entry → a server without its name, plus what the cross-server checks need. */

import type { ConfigDir } from './config-dir.js';
import type { LimitsDraft, ServerDraft } from './config-draft.js';
import { durationOr, sizeOr } from './config-units.js';
import { normaliseCidr } from './ip-cidr.js';
import { formatKeyPath, type KeyPath } from './key-path.js';
import { parseListenAddress } from './listen-address.js';
import { normaliseRoute } from './normalise-route.js';
import { normaliseGuards, normaliseServerTls } from './normalise-security.js';
import type { ProblemCollector } from './problem-collector.js';
import { regexError } from './regex-check.js';
import type { ListenAddress, ResolvedLimits, ResolvedServer } from './types.js';
import { assignUniqueNames } from './unique-names.js';
import type { UpstreamRegistry } from './upstream-registry.js';

/** Limits when `limits:` leaves them out. */
export const DEFAULT_LIMITS: ResolvedLimits = {
  maxBody: 1024 ** 2,
  maxHeader: 16 * 1024,
  maxUri: 8 * 1024,
  headerTimeoutMs: 10_000,
  keepaliveTimeoutMs: 75_000,
  requestTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  maxConnections: 10_000,
  // 4096 (capped by net.core.somaxconn) absorbs a burst of a thousand new connections; with
  // nginx's 511, about a quarter of such a burst overflowed the accept queue and waited for a
  // 1 s SYN retransmit.
  backlog: 4096,
  maxRequestsPerConnection: 1000,
};

/** A listen address with the node it was written at. */
export interface PlacedAddress {
  readonly address: ListenAddress;
  readonly path: KeyPath;
}

/** A server_name entry after normalising (`.a.com` gives two), with the node it was written at. */
export interface PlacedName {
  readonly name: string;
  readonly path: KeyPath;
}

/** A checked server, its name still to be chosen. */
export interface ServerPlan {
  readonly path: KeyPath;
  readonly explicitName: string | undefined;
  /** The first non-regex server_name, else `web<N>`. */
  readonly derivedName: string;
  readonly listen: readonly PlacedAddress[];
  readonly names: readonly PlacedName[];
  readonly isDefault: boolean;
  readonly server: Omit<ResolvedServer, 'name'>;
}

/** Checks one server and its routes; `index` is its position under `servers:`. */
export function normaliseServer(
  draft: ServerDraft,
  index: number,
  upstreams: UpstreamRegistry,
  problems: ProblemCollector,
  baseDir: ConfigDir,
): ServerPlan {
  const path: KeyPath = ['servers', index];
  const listen = normaliseListen(draft.listen, [...path, 'listen'], problems);
  const names = normaliseServerNames(draft.server_name, [...path, 'server_name'], problems);

  const trustedProxies: string[] = [];
  draft.trusted_proxies?.forEach((entry, i) => {
    if (entry === undefined) return;
    const r = normaliseCidr(entry);
    if ('error' in r) problems.error([...path, 'trusted_proxies', i], 'SLUICE_E_CONFIG_CIDR', r.error);
    else if (!trustedProxies.includes(r.cidr)) trustedProxies.push(r.cidr);
  });

  const guards = normaliseGuards(draft, path, problems);
  const plans = (draft.routes ?? []).map((route, i) =>
    route === undefined
      ? undefined
      : normaliseRoute(
          route,
          [...path, 'routes', i],
          upstreams,
          problems,
          baseDir,
          guards,
          draft.merge_slashes ?? true,
        ),
  );
  const shadowing = new Map<string, number>();
  plans.forEach((plan, i) => {
    if (plan === undefined) return;
    const earlier = shadowing.get(plan.matchKey);
    if (earlier === undefined) shadowing.set(plan.matchKey, i);
    else {
      problems.warn(
        [...path, 'routes', i],
        'SLUICE_E_CONFIG_VALUE',
        `this route matches exactly what routes[${earlier}] matches, so it is never chosen`,
        {
          hint: 'remove it, or narrow one of the two with methods or headers',
        },
      );
    }
  });
  const routeNames = assignUniqueNames(
    plans.map((p, i) =>
      p === undefined
        ? undefined
        : { explicit: p.explicitName, derived: p.derivedName, path: [...path, 'routes', i] },
    ),
    'route',
    problems,
  );
  const routes = plans.flatMap((p, i) =>
    p?.route === undefined ? [] : [{ name: routeNames[i] ?? '', ...p.route }],
  );

  const firstName = names.find((n) => !n.name.startsWith('~'))?.name;
  return {
    path,
    explicitName: draft.name,
    derivedName: firstName ?? `web${index + 1}`,
    listen,
    names,
    isDefault: draft.default ?? false,
    server: {
      listen: listen.map((l) => l.address),
      serverNames: names.map((n) => n.name),
      default: draft.default ?? false,
      trustedProxies,
      limits: normaliseLimits(draft.limits, [...path, 'limits'], problems),
      mergeSlashes: draft.merge_slashes ?? true,
      http2: draft.http2 ?? false,
      tls:
        draft.tls === undefined ? null : normaliseServerTls(draft.tls, [...path, 'tls'], baseDir, problems),
      guards,
      routes,
    },
  };
}

function normaliseListen(
  draft: ServerDraft['listen'],
  path: KeyPath,
  problems: ProblemCollector,
): PlacedAddress[] {
  if (draft === undefined) return [];
  const entries: { value: string | number | undefined; path: KeyPath }[] = Array.isArray(draft)
    ? draft.map((value, i) => ({ value, path: [...path, i] }))
    : [{ value: draft as string | number, path }];
  const out: PlacedAddress[] = [];
  for (const entry of entries) {
    if (entry.value === undefined) continue;
    const parsed = parseListenAddress(entry.value);
    if ('error' in parsed) {
      problems.error(entry.path, 'SLUICE_E_CONFIG_LISTEN', parsed.error);
      continue;
    }
    const twin = out.find((o) => o.address.key === parsed.key);
    if (twin !== undefined) {
      problems.error(
        entry.path,
        'SLUICE_E_CONFIG_DUPLICATE_LISTEN',
        `${parsed.key} is already listed at ${formatKeyPath(twin.path)}`,
        {
          hint: 'list each address once per server',
        },
      );
      continue;
    }
    out.push({ address: parsed, path: entry.path });
  }
  return out;
}

/**
 * server_name entries: exact names lower-cased and without a trailing dot, `*.suffix` and
 * `prefix.*` wildcards, `~regex` as written, and `.example.com` expanded into `example.com` and
 * `*.example.com` (nginx).
 */
function normaliseServerNames(
  draft: ServerDraft['server_name'],
  path: KeyPath,
  problems: ProblemCollector,
): PlacedName[] {
  if (draft === undefined) return [];
  const entries: { value: string | undefined; path: KeyPath }[] = Array.isArray(draft)
    ? draft.map((value, i) => ({ value, path: [...path, i] }))
    : [{ value: draft as string, path }];
  const out: PlacedName[] = [];
  const add = (name: string, at: KeyPath): void => {
    if (!out.some((o) => o.name === name)) out.push({ name, path: at });
  };
  for (const { value, path: at } of entries) {
    if (value === undefined) continue;
    if (value.startsWith('~')) {
      const error = regexError(value.slice(1));
      if (error === undefined) add(value, at);
      else problems.error(at, 'SLUICE_E_CONFIG_REGEX', error);
      continue;
    }
    // A Host's trailing dot is dropped before matching (host-table.ts): a name kept with its dot
    // would match nothing, and would not be seen as the same name as one written without it.
    const name = value.toLowerCase().replace(/\.$/, '');
    if (name === '' || name.endsWith('.') || /\s/.test(name)) {
      problems.error(at, 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(value)} is not a server name`, {
        hint: 'write a host name such as example.com, a wildcard such as *.example.com, or ~regex',
      });
    } else if (name.includes('*')) {
      if (/^\*\.[^*]+$/.test(name) || /^[^*]+\.\*$/.test(name)) add(name, at);
      else {
        problems.error(at, 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(value)} is not a supported wildcard`, {
          hint: 'a wildcard is "*.example.com" or "www.example.*"; use "~regex" for anything else',
        });
      }
    } else if (name.startsWith('.')) {
      add(name.slice(1), at);
      add(`*${name}`, at);
    } else add(name, at);
  }
  return out;
}

function normaliseLimits(
  draft: LimitsDraft | undefined,
  path: KeyPath,
  problems: ProblemCollector,
): ResolvedLimits {
  const limits: ResolvedLimits = {
    maxBody: sizeOr(draft?.max_body, DEFAULT_LIMITS.maxBody),
    maxHeader: sizeOr(draft?.max_header, DEFAULT_LIMITS.maxHeader),
    maxUri: sizeOr(draft?.max_uri, DEFAULT_LIMITS.maxUri),
    headerTimeoutMs: durationOr(draft?.header_timeout, DEFAULT_LIMITS.headerTimeoutMs),
    keepaliveTimeoutMs: durationOr(draft?.keepalive_timeout, DEFAULT_LIMITS.keepaliveTimeoutMs),
    requestTimeoutMs: durationOr(draft?.request_timeout, DEFAULT_LIMITS.requestTimeoutMs),
    sendTimeoutMs: durationOr(draft?.send_timeout, DEFAULT_LIMITS.sendTimeoutMs),
    maxConnections: draft?.max_connections ?? DEFAULT_LIMITS.maxConnections,
    backlog: draft?.backlog ?? DEFAULT_LIMITS.backlog,
    maxRequestsPerConnection: draft?.max_requests_per_connection ?? DEFAULT_LIMITS.maxRequestsPerConnection,
  };
  if (limits.headerTimeoutMs <= 0) {
    problems.error(
      [...path, 'header_timeout'],
      'SLUICE_E_CONFIG_VALUE',
      'must be more than 0s: every request head needs a deadline',
      {
        hint: 'nginx uses 60s (client_header_timeout); sluice defaults to 10s',
      },
    );
  }
  if (limits.maxHeader <= 0) {
    problems.error(
      [...path, 'max_header'],
      'SLUICE_E_CONFIG_VALUE',
      'must be more than 0b: no request head would fit',
      {
        hint: 'sluice defaults to 16kb; nginx to 8k per header line',
      },
    );
  }
  return limits;
}
