/**
 * `return` and redirecting `rewrite` → a route's `respond:` or `redirect:`.
 *
 * - `return 301|302|303|307|308 URL` and `return URL` (302) → `redirect`;
 * - `return CODE ["text"]` → `respond`, its Content-Type from a server's or location's
 *   `default_type` and its headers from `add_header` (sent as written: sluice does not expand
 *   variables in respond headers);
 * - `return 444` (close without answering) has no HTTP equivalent: sluice answers 403;
 * - `rewrite ^ URL permanent|redirect` and `rewrite ^(.*)$ https://$host$1 permanent` (patterns
 *   that match every path) → `redirect`, the query string carried as nginx carries it. Rewrites
 *   that change the path internally have no sluice equivalent.
 */
import type { NginxDirective } from './ast.js';
import type { ServerContext } from './convert-context.js';
import { foldedHeaderValue } from './folded-header-value.js';
import { nearestList, type Scope } from './scope.js';
import type { SluiceRedirect, SluiceRespond } from './sluice-config.js';
import { hasVariables, toSluiceTemplate } from './variables.js';

/** A route action made from `return` or `rewrite`. */
export type ReturnAction = { readonly respond: SluiceRespond } | { readonly redirect: SluiceRedirect };

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

/** Converts a `return`; `null` (with a warning) when it cannot be carried over. */
export function convertReturn(d: NginxDirective, scope: Scope, server: ServerContext): ReturnAction | null {
  const { warnings } = server.ctx;
  const [first, text] = d.args;
  if (first === undefined || d.args.length > 2) {
    warnings.add(d, 'return takes a code and a text or URL; not carried over');
    return null;
  }
  if (!/^\d+$/.test(first)) {
    if (d.args.length !== 1 || !/^(https?:\/\/|\$scheme)/.test(first)) {
      warnings.add(
        d,
        `return ${first}: expected a status code, or a URL starting with http://, https:// or $scheme`,
      );
      return null;
    }
    return redirectTo(d, first, 302, scope, server);
  }
  const code = Number(first);
  if (REDIRECT_CODES.has(code) && text !== undefined && text !== '')
    return redirectTo(d, text, code as SluiceRedirect['status'] & number, scope, server);
  let status = code;
  if (code === 444) {
    warnings.add(d, 'return 444: sluice cannot close a connection without answering; it answers 403 instead');
    status = 403;
  } else if (code < 200 || code > 599) {
    // nginx sends a 1xx as if it were the answer, which a client takes for an interim one and
    // goes on waiting; sluice answers with final statuses only.
    warnings.add(
      d,
      `return ${code}: sluice answers with statuses 200-599 only (a 1xx is no final answer); not carried over`,
    );
    return null;
  }
  if (REDIRECT_CODES.has(code) && text === '') {
    warnings.add(
      d,
      `return ${code} "": nginx answers ${code} with an empty Location; sluice answers ${code} without one`,
    );
  }
  const respond: SluiceRespond = { status };
  // RFC 9110: a 204 or 304 has no body; nginx sends none either.
  if (text !== undefined && text !== '' && (code === 204 || code === 304)) {
    warnings.add(d, `return ${code} "${text}": a ${code} answer has no body; the text is left out`);
  } else if (text !== undefined && text !== '') {
    respond.body = text;
    if (hasVariables(text)) {
      warnings.add(
        d,
        `return ${code} "${text}": sluice sends the text as written, without expanding its variables`,
      );
    }
  }
  const headers = respondHeaders(scope, server, status);
  if (Object.keys(headers).length > 0) respond.headers = headers;
  return { respond };
}

function redirectTo(
  d: NginxDirective,
  url: string,
  status: number,
  scope: Scope,
  server: ServerContext,
): ReturnAction | null {
  // The URL is the Location header nginx sends.
  const location = foldedHeaderValue(url, d.name, d, server.ctx.warnings);
  const t = toSluiceTemplate(location, { serverName: server.serverName, serverPort: server.serverPort });
  if ('error' in t) {
    server.ctx.warnings.add(d, `${d.name} ${d.args.join(' ')}: ${t.error}; not carried over`);
    return null;
  }
  const redirect: SluiceRedirect = { to: t.text };
  if (status !== 302) redirect.status = status as SluiceRedirect['status'];
  for (const h of nearestList(scope, 'add_header')?.directives ?? []) {
    server.ctx.warnings.add(
      h,
      `add_header ${h.args[0] ?? ''}: sluice sends redirects without extra headers; not carried over to the redirects`,
    );
  }
  return { redirect };
}

/** The statuses nginx adds `add_header` headers to without `always`. */
const ADD_HEADER_STATUSES = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

/**
 * Content-Type from `default_type` (server or location level) and `add_header` lines, as written,
 * for the statuses nginx adds them to.
 */
function respondHeaders(scope: Scope, server: ServerContext, status: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const type = nearestList(scope, 'default_type');
  // http-level default_type is the stock `application/octet-stream` of nginx.conf: not meant for return.
  const last = type === undefined || type.scope.kind === 'http' ? undefined : type.directives.at(-1);
  const contentType = last?.args[0];
  if (last !== undefined && contentType !== undefined && contentType !== 'text/plain') {
    headers['content-type'] = foldedHeaderValue(contentType, 'default_type', last, server.ctx.warnings);
  }
  for (const d of nearestList(scope, 'add_header')?.directives ?? []) {
    const [name, written] = d.args;
    if (name === undefined || written === undefined) continue;
    if (!ADD_HEADER_STATUSES.has(status) && d.args[2] !== 'always') continue;
    const value = foldedHeaderValue(written, `add_header ${name}`, d, server.ctx.warnings);
    if (hasVariables(value)) {
      server.ctx.warnings.add(
        d,
        `add_header ${name} ${value}: sluice sends respond headers as written, without variables; not carried over`,
      );
      continue;
    }
    if (Object.keys(headers).some((k) => k.toLowerCase() === name.toLowerCase())) continue;
    headers[name] = value;
  }
  return headers;
}

/** Patterns matching every path, and what their capture holds. */
const MATCH_ALL: Readonly<Record<string, 'none' | 'path' | 'after-slash'>> = {
  '^': 'none',
  '.*': 'none',
  '^.*': 'none',
  '^.*$': 'none',
  '^/.*$': 'none',
  '(.*)': 'path',
  '^(.*)': 'path',
  '^(.*)$': 'path',
  '^(.+)$': 'path',
  '^/(.*)': 'after-slash',
  '^/(.*)$': 'after-slash',
};

/**
 * Whether nginx answers a `rewrite` with a redirect: the `redirect` or `permanent` flag, or a
 * replacement starting with http://, https:// or $scheme. Any other rewrite changes the path and
 * goes on (or, with `last` or `break`, ends the rewrites).
 */
export function rewriteRedirects(d: NginxDirective): boolean {
  const [, replacement, flag] = d.args;
  return flag === 'permanent' || flag === 'redirect' || /^(https?:\/\/|\$scheme)/.test(replacement ?? '');
}

/**
 * Converts a redirecting `rewrite`; `null` (with a warning) when it is not one sluice can write.
 */
export function convertRewrite(d: NginxDirective, scope: Scope, server: ServerContext): ReturnAction | null {
  const { warnings } = server.ctx;
  const [pattern, replacement, flag] = d.args;
  if (pattern === undefined || replacement === undefined) {
    warnings.add(d, 'rewrite takes a pattern and a replacement; not carried over');
    return null;
  }
  const status = !rewriteRedirects(d) ? null : flag === 'permanent' ? 301 : 302;
  if (status === null) {
    warnings.add(
      d,
      'rewrite: internal rewrites are not carried over; sluice forwards the path as it came (proxy.strip_prefix can remove a prefix)',
    );
    return null;
  }
  const capture = MATCH_ALL[pattern];
  if (capture === undefined) {
    warnings.add(d, `rewrite ${pattern}: only redirects of every path (^ or ^(.*)$) are carried over`);
    return null;
  }
  // nginx appends the query string unless the replacement ends with "?".
  const keepsArgs = !replacement.endsWith('?');
  let target = keepsArgs ? replacement : replacement.slice(0, -1);
  if (capture !== 'none') {
    const tail = capture === 'path' ? '$1' : '/$1';
    if (
      !keepsArgs ||
      !target.endsWith(tail) ||
      target.slice(0, -tail.length).includes('$1') ||
      target.includes('?')
    ) {
      warnings.add(
        d,
        `rewrite ${pattern} ${replacement}: only a capture at the end of the target is carried over`,
      );
      return null;
    }
    // The captured path plus the query string nginx appends is the request URI.
    target = `${target.slice(0, -tail.length)}$request_uri`;
  } else if (keepsArgs && target.endsWith('$request_uri')) {
    warnings.add(
      d,
      'rewrite: nginx appends the query string a second time here (no "?" at the end); sluice does not',
    );
  } else if (keepsArgs && !target.includes('$request_uri')) {
    if (target.includes('?')) {
      // nginx joins the two with "&"; sluice has no way to write the "&" only when there are args.
      warnings.add(
        d,
        `rewrite ${pattern} ${replacement}: nginx adds the request's query string to this one with "&"; sluice sends the target's query only`,
      );
    } else target += '$is_args$args';
  }
  return redirectTo(d, target, status, scope, server);
}

/**
 * The first `return` or redirecting `rewrite` among a level's own directives, in nginx's order;
 * `action` is `null` for a `return` that cannot be carried over (nginx would stop there all the
 * same, so the caller must not fall through to a proxy_pass).
 */
export function firstReturn(
  scope: Scope,
  server: ServerContext,
): { action: ReturnAction | null; directive: NginxDirective } | undefined {
  for (const d of scope.directives) {
    if (d.block !== null) continue;
    if (d.name === 'return') return { action: convertReturn(d, scope, server), directive: d };
    if (d.name === 'rewrite') {
      const action = convertRewrite(d, scope, server);
      if (action !== null) return { action, directive: d };
    }
  }
  return undefined;
}
