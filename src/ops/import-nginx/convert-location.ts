/**
 * nginx `location` → a sluice route. Nested locations become routes of their own, after their
 * parent, inheriting what the parent sets (sluice's routes are flat; location-tree.ts makes them
 * choose as nginx's tree does).
 *
 *   = /x      → match: { path: /x }
 *   ^~ /x, /x → match: { path_prefix: /x }     (^~ is kept by a guard on the regexes, see convert-server.ts)
 *   ~ re      → match: { path_regex: re }
 *   ~* re     → match: { path_regex: re with its letters folded, e.g. [pP][hH][pP] }
 *   @name     → no route; reachable only through try_files (whose fallback it then serves)
 *
 * A location's client_max_body_size (or its parent location's) becomes the route's max_body.
 *
 * The action follows nginx's phases: a `return` (or redirecting `rewrite`) answers before any
 * content handler; then `proxy_pass`; a location that serves files, which sluice cannot do,
 * answers 404; one whose content cannot be carried over answers 502. Each such route has a
 * comment in the YAML and a warning on stderr.
 */
import type { NginxDirective } from './ast.js';
import { convertBodySize } from './convert-body-size.js';
import type { ServerContext } from './convert-context.js';
import { accessAt, deniesEveryone, rateLimitAt } from './convert-guards.js';
import { convertLimitExcept } from './convert-limit-except.js';
import { convertProxy } from './convert-proxy.js';
import { firstReturn } from './convert-return.js';
import { FOREIGN_CONTENT, OWN_CONTENT } from './directives.js';
import { encodePath, pathSource } from './encoded-path.js';
import { type LocationMatch, parseLocation } from './location-match.js';
import { translatePathRegex } from './path-regex.js';
import { blockRefuses, refusingIf, refusingIfWarning } from './refusing-if.js';
import { childScope, nearest, nearestList, own, type Scope } from './scope.js';
import type { SluiceRoute } from './sluice-config.js';

/** A converted location. */
export interface RoutePlan {
  route: SluiceRoute;
  readonly match: LocationMatch;
  readonly notes: string[];
  readonly directive: NginxDirective;
  /**
   * `limit_except`: `route` takes these methods only, and `others` (its `match:` that of `route`)
   * follows it for the rest.
   */
  limitExcept?: { readonly methods: string[]; readonly others: Omit<SluiceRoute, 'match'> };
  /** `internal`: nginx answers 404 before anything else, its auto-redirect included. */
  readonly internal?: true;
  /**
   * An exact or prefix path holding a byte the client may also escape (`@` or `%40`): `route`
   * matches the raw spelling, and a regex route with this source takes every spelling.
   */
  alias?: string;
}

const FILE_DIRECTIVES = ['root', 'alias', 'index', 'try_files', 'autoindex'];

/** nginx's rewrite phase runs before its access phase; sluice checks access before any action. */
export const RETURN_BEFORE_ACCESS =
  'nginx answers this before it checks allow/deny, so every client gets the answer; sluice keeps the allow/deny in force here, and a denied client gets 403';

/** nginx answers a return before limit_req; sluice applies a server's rate_limit to every route. */
export const RETURN_BEFORE_RATE =
  "nginx answers this before it applies limit_req, so no request here is limited; sluice applies the server's rate_limit to this route too, and refuses (429) above the rate";

/**
 * Converts one location, not the locations nested in it (the caller walks those, with this
 * location's scope as their parent); `null` for a named location or one sluice cannot match. One
 * sluice cannot match that refuses or limits requests is added to `ctx.refused` instead of being
 * dropped: the import stops.
 */
export function convertLocation(d: NginxDirective, parent: Scope, server: ServerContext): RoutePlan | null {
  const { warnings } = server.ctx;
  const match = parseLocation(d);
  if (match.kind === 'named') return null;
  const scope = childScope('location', d.block ?? [], parent);

  const converted = convertMatch(d, match, server);
  if (converted === null) return null;
  if ('refused' in converted) {
    // Dropped, its requests would reach another route: the import stops (refused-location-error.ts).
    if (blockRefuses(d.block ?? [])) server.ctx.refused.push({ directive: d, reason: converted.refused });
    else warnings.add(d, `location ${d.args.join(' ')}: ${converted.refused}; not carried over`);
    return null;
  }

  const route: SluiceRoute = { match: converted.match };
  const notes: string[] = [];
  const access = accessAt(scope, warnings);
  const returned = firstReturn(scope, server);
  // nginx answers a return in its rewrite phase, before limit_req: a location's own limit never
  // applies there (a server's is still sluice's for the route; the return branch says so).
  const limitReq = nearestList(scope, 'limit_req');
  const unlimited = returned !== undefined && limitReq?.scope.kind === 'location';
  const rate = unlimited ? undefined : rateLimitAt(scope, server.ctx);
  const placeholder = (status: number, note: string): void => {
    route.respond = { status };
    notes.push(note);
  };

  const pass = own(scope, 'proxy_pass')[0];
  // nginx settles `internal` (inherited by nested locations) and limit_except before any phase
  // runs, and asks for a password before the content handler but after `return`.
  const internal = nearest(scope, 'internal');
  const limitExcept = internal === undefined ? convertLimitExcept(scope, warnings) : undefined;
  const auth = returned === undefined ? authAt(scope) : undefined;
  const guard = refusingIf(scope);
  if (internal !== undefined) {
    placeholder(
      404,
      `nginx serves this location to its own internal redirects only (internal, line ${internal.line}); sluice has none, so it answers 404 to every request, as nginx does to a request from outside`,
    );
  } else if (guard !== undefined) {
    warnings.add(guard, refusingIfWarning(guard, 'location'));
    placeholder(
      403,
      `nginx refuses some requests here on a condition sluice cannot test (if, line ${guard.line}); this route refuses every request`,
    );
  } else if (limitExcept?.kind === 'refuse') {
    placeholder(
      403,
      'nginx restricts methods here in a way sluice cannot follow (see the warning); this route refuses every request',
    );
  } else if (auth !== undefined) {
    warnings.add(
      auth,
      `${auth.name} ${auth.args.join(' ')}: sluice cannot check credentials, so the location refuses every request (403) instead of serving it without them`,
    );
    placeholder(
      403,
      `nginx asks for credentials here (${auth.name}); sluice cannot check them, so this route refuses every request`,
    );
  } else if (returned !== undefined) {
    if (returned.action === null) {
      placeholder(
        502,
        'the nginx return here could not be carried over (see the warning); this route answers 502',
      );
    } else {
      Object.assign(route, returned.action);
      if (access !== undefined) warnings.add(returned.directive, RETURN_BEFORE_ACCESS);
    }
    if (unlimited && limitReq !== undefined) {
      warnings.add(
        limitReq.directives[0]!,
        `limit_req: nginx answers the ${returned.directive.name} on line ${returned.directive.line} before it applies limit_req, so the limit is not carried over to this route`,
      );
    } else if (rate !== undefined) {
      warnings.add(returned.directive, RETURN_BEFORE_RATE);
    }
    if (pass !== undefined) {
      warnings.add(
        pass,
        `proxy_pass is never used: the ${returned.directive.name} on line ${returned.directive.line} answers first`,
      );
    }
  } else if (pass !== undefined) {
    const plan = convertProxy(pass, match, scope, server);
    if (plan === null)
      placeholder(
        502,
        'nginx proxies here to a target sluice cannot use (see the warning); this route answers 502',
      );
    else {
      route.proxy = plan.proxy;
      notes.push(...plan.notes);
    }
  } else if (FOREIGN_CONTENT.some((name) => own(scope, name).length > 0)) {
    placeholder(
      502,
      'nginx passes these requests on with a protocol other than HTTP; sluice proxies HTTP only, so this route answers 502',
    );
  } else if (OWN_CONTENT.some((name) => own(scope, name).length > 0)) {
    const name = OWN_CONTENT.find((n) => own(scope, n).length > 0);
    placeholder(
      404,
      `nginx answers here itself (${name}); sluice has no equivalent, so this route answers 404`,
    );
  } else if (!tryFilesFallback(scope, match, server, route, notes)) {
    if (deniesEveryone(access?.value)) {
      placeholder(404, 'every client is denied here (403), as in nginx');
    } else {
      const how = FILE_DIRECTIVES.filter((name) => own(scope, name).length > 0);
      warnings.add(
        d,
        `location ${d.args.join(' ')}: nginx serves files here${how.length > 0 ? ` (${how.join(', ')})` : ''}; sluice serves no files, so the route answers 404`,
      );
      placeholder(
        404,
        'nginx serves files from disk here; sluice serves no files, so this route answers 404',
      );
    }
  }

  if (access?.level === 'location') route.access = access.value;
  if (rate?.level === 'location') route.rate_limit = rate.value;
  let split: RoutePlan['limitExcept'];
  if (limitExcept?.kind === 'split' && route.respond?.status !== 403) {
    const { match: _, ...action } = route;
    const others: Omit<SluiceRoute, 'match'> =
      limitExcept.access === null
        ? { respond: { status: 403 } }
        : { ...structuredClone(action), access: limitExcept.access };
    if (route.rate_limit !== undefined && others.rate_limit === undefined)
      others.rate_limit = route.rate_limit;
    split = { methods: limitExcept.methods, others };
    notes.push(
      `nginx: limit_except ${limitExcept.methods.join(' ')}: other methods ${limitExcept.access === null ? 'are refused (403)' : 'are checked against its allow/deny'} by the route after this one`,
    );
  }
  // Set in this location or one it is nested in; the server's own is its limits.max_body.
  const body = nearestList(scope, 'client_max_body_size');
  if (body?.scope.kind === 'location') {
    const converted = convertBodySize(body.directives.at(-1)!, warnings);
    if (converted !== null) route.max_body = converted.size;
    if (converted?.note) notes.push(converted.note);
  }
  return {
    route,
    match,
    notes,
    directive: d,
    ...(split === undefined ? {} : { limitExcept: split }),
    ...(internal === undefined ? {} : { internal: true }),
    ...(converted.alias === undefined ? {} : { alias: converted.alias }),
  };
}

/** The `auth_basic` or `auth_request` in force here (nearest level, not `off`). */
function authAt(scope: Scope): NginxDirective | undefined {
  for (const name of ['auth_basic', 'auth_request']) {
    const d = nearest(scope, name);
    if (d !== undefined && d.args[0] !== 'off') return d;
  }
  return undefined;
}

/**
 * The route's `match:`, or `null` (with a warning) when sluice cannot match the same paths. nginx
 * compares the decoded path with the location's text as written; sluice matches the normalised
 * path, which keeps escapes, so the text is written as sluice spells it (`/café/` is
 * `/caf%C3%A9/`, `/a%20b/` is `/a%2520b/`) and a regex is translated to match those spellings.
 */
function convertMatch(
  d: NginxDirective,
  match: LocationMatch,
  server: ServerContext,
): { match: NonNullable<SluiceRoute['match']>; alias?: string } | { refused: string } | null {
  const { warnings } = server.ctx;
  if (match.kind === 'regex') {
    const r = translatePathRegex(match.path, match.caseless);
    if ('error' in r) return { refused: r.error };
    return { match: { path_regex: r.source } };
  }
  if (!match.path.startsWith('/')) {
    warnings.add(
      d,
      `location ${d.args.join(' ')}: request paths start with "/", so nginx never matches this location; not carried over`,
    );
    return null;
  }
  const { path, ambiguous } = encodePath(match.path);
  const out: { match: NonNullable<SluiceRoute['match']>; alias?: string } = {
    match: match.kind === 'exact' ? { path } : { path_prefix: path },
  };
  if (ambiguous) out.alias = `^${pathSource(match.path)}${match.kind === 'exact' ? '$' : ''}`;
  return out;
}

/**
 * `try_files ... @name`: sluice cannot look for the files, so every request goes to the named
 * location's proxy. Returns whether the route got an action this way.
 */
function tryFilesFallback(
  scope: Scope,
  match: LocationMatch,
  server: ServerContext,
  route: SluiceRoute,
  notes: string[],
): boolean {
  const tryFiles = own(scope, 'try_files')[0];
  const fallback = tryFiles?.args.at(-1);
  if (tryFiles === undefined || fallback === undefined || !fallback.startsWith('@')) return false;
  const named = server.named.get(fallback);
  const pass = named?.block?.find((x) => x.name === 'proxy_pass' && x.block === null);
  if (named === undefined || pass === undefined) return false;
  server.usedNamed.add(fallback);
  let serverScope = scope;
  while (serverScope.kind === 'location' && serverScope.parent !== null) serverScope = serverScope.parent;
  const namedScope = childScope('location', named.block ?? [], serverScope);
  const plan = convertProxy(pass, { ...match, kind: 'named' }, namedScope, server);
  if (plan === null) return false;
  server.ctx.warnings.add(
    tryFiles,
    `try_files: sluice serves no files, so every request here goes to ${fallback} (proxy_pass ${pass.args[0] ?? ''})`,
  );
  route.proxy = plan.proxy;
  notes.push(`nginx tries files first here; sluice sends every request to ${fallback}'s upstream`);
  return true;
}
