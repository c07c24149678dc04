/** One `routes:` entry → a route without its name (names are given per server, see unique-names.ts). */
import { existsSync } from 'node:fs';
import { METHODS } from 'node:http';
import { parseSize } from '../core/size.js';
import { normalisePath, routeConfigPath } from '../router/normalise-path.js';
import type { ConfigDir } from './config-dir.js';
import type { MatchDraft, RedirectDraft, RespondDraft, RouteDraft } from './config-draft.js';
import { durationOr } from './config-units.js';
import { headerPairs, withoutManaged } from './header-rules.js';
import { HEADER_NAME_HINT, isHttpToken } from './http-token.js';
import { isMapping, type KeyPath } from './key-path.js';
import { normaliseProxy } from './normalise-proxy.js';
import { NO_GUARDS, normaliseGuards } from './normalise-security.js';
import type { ProblemCollector } from './problem-collector.js';
import { regexError } from './regex-check.js';
import { parseTemplate } from './template.js';
import type {
  HandlerAction,
  HeaderMatch,
  PathMatch,
  RedirectAction,
  ResolvedGuards,
  ResolvedRoute,
  RespondAction,
  RouteAction,
} from './types.js';
import type { UpstreamRegistry } from './upstream-registry.js';

/** A checked route, its name still to be chosen. */
export interface RoutePlan {
  /** `name:` as written. */
  readonly explicitName: string | undefined;
  /** The default name: the path, prefix or `~regex` matched, else `*`. */
  readonly derivedName: string;
  /** What it matches, as a comparable string (routes with equal keys shadow one another). */
  readonly matchKey: string;
  /** `undefined` when the action could not be resolved (problems are reported). */
  readonly route: Omit<ResolvedRoute, 'name'> | undefined;
}

const ACTIONS = ['proxy', 'respond', 'redirect', 'handler'] as const;

/** Checks one route; every problem is reported under `path`. */
export function normaliseRoute(
  draft: RouteDraft,
  path: KeyPath,
  upstreams: UpstreamRegistry,
  problems: ProblemCollector,
  baseDir: ConfigDir,
  serverGuards: ResolvedGuards = NO_GUARDS,
  mergeSlashes = true,
): RoutePlan {
  const match = normaliseMatch(draft.match, [...path, 'match'], problems, mergeSlashes);
  const given = ACTIONS.filter((a) => draft[a] !== undefined);
  // An action dropped as malformed (`proxy: 3`) is reported already and would skew the count.
  const uncertain = ACTIONS.some((a) => draft[a] === undefined && problems.isNearRejected([...path, a]));
  let action: RouteAction | undefined;
  if (given.length !== 1) {
    const message =
      given.length === 0
        ? 'route has no action: give it one of proxy, respond, redirect or handler'
        : `route has ${given.join(' and ')}: give it exactly one action`;
    if (!uncertain) problems.error(path, 'SLUICE_E_CONFIG_ROUTE_ACTION', message);
    // Check each of the actions anyway, so their own problems are reported in the same run.
    if (draft.proxy !== undefined)
      normaliseProxy(draft.proxy, [...path, 'proxy'], match.path, upstreams, problems);
    if (draft.respond !== undefined) normaliseRespond(draft.respond, [...path, 'respond'], problems);
    if (draft.redirect !== undefined) normaliseRedirect(draft.redirect, [...path, 'redirect'], problems);
    if (draft.handler !== undefined) normaliseHandler(draft.handler, [...path, 'handler'], baseDir, problems);
  } else if (draft.proxy !== undefined) {
    action = normaliseProxy(draft.proxy, [...path, 'proxy'], match.path, upstreams, problems);
  } else if (draft.respond !== undefined) {
    action = normaliseRespond(draft.respond, [...path, 'respond'], problems);
  } else if (draft.redirect !== undefined) {
    action = normaliseRedirect(draft.redirect, [...path, 'redirect'], problems);
  } else if (draft.handler !== undefined) {
    const timeoutMs = durationOr(draft.handler_timeout, HANDLER_TIMEOUT_MS);
    action = normaliseHandler(draft.handler, [...path, 'handler'], baseDir, problems, timeoutMs);
  }
  if (draft.handler_timeout !== undefined && draft.handler === undefined && given.length === 1) {
    // A warning, as hash_key beside another balance: the key changes nothing on this route.
    problems.warn(
      [...path, 'handler_timeout'],
      'SLUICE_E_CONFIG_VALUE',
      `handler_timeout applies to handler routes only, not ${given[0]}: it is ignored`,
      {
        hint:
          given[0] === 'proxy' ? 'a proxy route is timed by proxy.timeouts.read' : 'remove handler_timeout',
      },
    );
  }
  return {
    explicitName: draft.name,
    derivedName: match.label,
    matchKey: JSON.stringify([match.path, match.methods && [...match.methods].sort(), match.headers]),
    route:
      action === undefined
        ? undefined
        : {
            path: match.path,
            methods: match.methods,
            headers: match.headers,
            action,
            guards: normaliseGuards(draft, path, problems, serverGuards),
            maxBody: draft.max_body === undefined ? null : (parseSize(draft.max_body) ?? null),
          },
  };
}

interface MatchPlan {
  readonly path: PathMatch | null;
  readonly methods: string[] | null;
  readonly headers: HeaderMatch[];
  readonly label: string;
}

function normaliseMatch(
  draft: MatchDraft | undefined,
  path: KeyPath,
  problems: ProblemCollector,
  mergeSlashes: boolean,
): MatchPlan {
  const kinds = (['path', 'path_prefix', 'path_regex'] as const).filter((k) => draft?.[k] !== undefined);
  let pathMatch: PathMatch | null = null;
  if (kinds.length > 1) {
    problems.error(
      path,
      'SLUICE_E_CONFIG_VALUE',
      `match has ${kinds.join(' and ')}: give at most one of path, path_prefix and path_regex`,
      {
        hint: 'split the route in two if both are meant',
      },
    );
  } else if (draft?.path !== undefined) {
    const exact = checkPath(draft.path, [...path, 'path'], problems, mergeSlashes);
    if (exact !== null) pathMatch = { kind: 'exact', path: exact };
  } else if (draft?.path_prefix !== undefined) {
    const prefix = checkPath(draft.path_prefix, [...path, 'path_prefix'], problems, mergeSlashes);
    if (prefix !== null) pathMatch = { kind: 'prefix', prefix };
  } else if (draft?.path_regex !== undefined) {
    const error = regexError(draft.path_regex);
    if (error === undefined) {
      pathMatch = { kind: 'regex', source: draft.path_regex };
      // Requests are matched with non-ASCII bytes escaped (routePathOf): such a pattern never matches.
      if (/[^\x00-\x7f]/.test(draft.path_regex)) {
        problems.warn(
          [...path, 'path_regex'],
          'SLUICE_E_CONFIG_REGEX',
          'holds a non-ASCII character, which no request path matches: paths are matched with such bytes percent-encoded',
          { hint: 'write the UTF-8 escapes upper-case, e.g. ^/na%C3%AFve/ for ^/naïve/' },
        );
      }
    } else problems.error([...path, 'path_regex'], 'SLUICE_E_CONFIG_REGEX', error);
  }

  let methods: string[] | null = null;
  if (draft?.methods !== undefined) {
    methods = [];
    draft.methods.forEach((m, i) => {
      if (m === undefined) return;
      const upper = m.toUpperCase();
      if (!isHttpToken(m)) {
        problems.error(
          [...path, 'methods', i],
          'SLUICE_E_CONFIG_VALUE',
          `${JSON.stringify(m)} is not an HTTP method`,
          {
            hint: 'write methods as words such as GET, POST, PUT, DELETE',
          },
        );
      } else {
        // Node's HTTP/1 parser knows a fixed list (http.METHODS) and answers 400 to any other
        // method before sluice sees the request; TRACE is answered 405 before any route.
        if (upper === 'TRACE') {
          problems.warn([...path, 'methods', i], 'SLUICE_E_CONFIG_VALUE', 'TRACE never reaches a route', {
            hint: 'sluice answers TRACE with 405 itself, as nginx does (cross-site tracing); remove it',
          });
        } else if (!METHODS.includes(upper)) {
          problems.warn(
            [...path, 'methods', i],
            'SLUICE_E_CONFIG_VALUE',
            `${upper} reaches this route over HTTP/2 only: Node's HTTP/1 parser refuses methods outside its list with 400`,
            { hint: `the methods it takes: ${METHODS.join(', ')}` },
          );
        }
        if (!methods?.includes(upper)) methods?.push(upper);
      }
    });
  }

  const headers: HeaderMatch[] = [];
  if (isMapping(draft?.headers)) {
    for (const [name, value] of Object.entries(draft.headers)) {
      if (value === undefined) continue;
      const at = [...path, 'headers', name];
      if (!isHttpToken(name)) {
        problems.error(at, 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(name)} is not a valid header name`, {
          at: 'key',
          hint: HEADER_NAME_HINT,
        });
        continue;
      }
      if (value.startsWith('~')) {
        const error = regexError(value.slice(1));
        if (error !== undefined) problems.error(at, 'SLUICE_E_CONFIG_REGEX', error);
        else headers.push({ name: name.toLowerCase(), value: value.slice(1), regex: true });
      } else headers.push({ name: name.toLowerCase(), value, regex: false });
    }
  }

  // Named as written, not in the form requests are matched in.
  const label =
    pathMatch === null
      ? '*'
      : pathMatch.kind === 'exact'
        ? draft!.path!
        : pathMatch.kind === 'prefix'
          ? draft!.path_prefix!
          : `~${pathMatch.source}`;
  return { path: pathMatch, methods, headers, label };
}

/**
 * A path or prefix must start with `/` and cannot hold a query or fragment (they are never matched).
 * Returns it in the form request paths are matched in (routeConfigPath), or null after a problem.
 */
function checkPath(
  text: string,
  path: KeyPath,
  problems: ProblemCollector,
  mergeSlashes: boolean,
): string | null {
  if (!text.startsWith('/')) {
    problems.error(path, 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(text)} must start with "/"`, {
      hint: 'paths are matched from the root: write "/api/", not "api/"',
    });
    return null;
  }
  if (/[?#\s]/.test(text)) {
    problems.error(
      path,
      'SLUICE_E_CONFIG_VALUE',
      `${JSON.stringify(text)} holds a space, "?" or "#"; routes match the path only`,
      {
        hint: 'match the path without its query string; percent-encode spaces as %20',
      },
    );
    return null;
  }
  const form = routeConfigPath(text);
  const normal = form === null ? null : normalisePath(form, mergeSlashes);
  if (form === null || normal === null) {
    problems.error(
      path,
      'SLUICE_E_CONFIG_VALUE',
      `${JSON.stringify(text)} holds a malformed escape, %00 or a ".." above the root`,
      {
        hint: 'write an escape as % and two hex digits, e.g. %20; a request with %00 is refused anyway',
      },
    );
    return null;
  }
  if (normal !== form) {
    // A request path has its `//` merged and `.` segments removed before it is matched, so the
    // route as written would never match: matched as normalised, with a warning.
    problems.warn(
      path,
      'SLUICE_E_CONFIG_VALUE',
      `${JSON.stringify(text)} is matched as ${JSON.stringify(normal)}: request paths have their "//" merged (merge_slashes) and "." and ".." segments removed before routes see them`,
      { hint: `write ${JSON.stringify(normal)}, or set merge_slashes: false on the server to keep "//"` },
    );
  }
  return normal;
}

function normaliseRespond(draft: RespondDraft, path: KeyPath, problems: ProblemCollector): RespondAction {
  // RFC 9110 6.4.1: these answers have no body; a client would read one as the next response.
  if ((draft.status === 204 || draft.status === 304) && draft.body !== undefined && draft.body !== '') {
    problems.error([...path, 'body'], 'SLUICE_E_CONFIG_VALUE', `a ${draft.status} answer has no body`, {
      hint: 'remove body:, or use another status (200 with a body)',
    });
  }
  return {
    kind: 'respond',
    status: draft.status ?? 200,
    body: draft.body ?? '',
    // Respond headers are sent as written: `$` in them is literal text, so no variable check.
    headers: withoutManaged(
      headerPairs(draft.headers, [...path, 'headers'], problems, false),
      [...path, 'headers'],
      problems,
      'response',
    ),
  };
}

function normaliseRedirect(
  draft: RedirectDraft,
  path: KeyPath,
  problems: ProblemCollector,
): RedirectAction | undefined {
  if (draft.to === undefined) return undefined;
  if (draft.to.trim() === '') {
    problems.error([...path, 'to'], 'SLUICE_E_CONFIG_VALUE', 'the redirect target must not be empty', {
      hint: 'write a URL or a path, e.g. https://example.com$request_uri or /new/',
    });
    return undefined;
  }
  const parsed = parseTemplate(draft.to);
  if ('error' in parsed) {
    problems.error([...path, 'to'], 'SLUICE_E_CONFIG_VARIABLE', parsed.error);
    return undefined;
  }
  if (/[\r\n\0]/.test(draft.to)) {
    problems.error(
      [...path, 'to'],
      'SLUICE_E_CONFIG_VALUE',
      'the redirect target must not contain a line break or NUL',
      { hint: 'write the target on one line; YAML block scalars (| and >) add a line break at the end' },
    );
    return undefined;
  }
  return { kind: 'redirect', status: draft.status ?? 302, to: draft.to };
}

const HANDLER_EXTENSIONS = /\.(ts|mts|cts|js|mjs|cjs)$/;

/** A `handler:` module path, resolved next to the config file; it must exist. */
function normaliseHandler(
  text: string,
  path: KeyPath,
  baseDir: ConfigDir,
  problems: ProblemCollector,
  timeoutMs = HANDLER_TIMEOUT_MS,
): HandlerAction | undefined {
  const module = baseDir.resolve(text);
  if (!HANDLER_EXTENSIONS.test(module)) {
    problems.error(path, 'SLUICE_E_CONFIG_HANDLER', `${JSON.stringify(text)} is not a .ts or .js module`);
    return undefined;
  }
  if (!existsSync(module)) {
    problems.error(path, 'SLUICE_E_CONFIG_HANDLER', `handler module ${module} does not exist`);
    return undefined;
  }
  return { kind: 'handler', module, timeoutMs };
}

/**
 * The default handler_timeout: nginx's proxy_read_timeout, what an app behind nginx had to start
 * its answer within (504 after it).
 */
const HANDLER_TIMEOUT_MS = 60_000;
