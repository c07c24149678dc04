/**
 * An `if` sluice cannot test, whose block refuses requests: `if ($http_user_agent ~* bot) { return
 * 403; }`, `if ($host !~ ...) { return 444; }`, a `deny` or `auth_basic` inside, or a redirect to
 * `https://` or to a login page (`return 302 /login`). Dropping it would serve everyone what nginx
 * refuses to some, so the location (or, at server level, the server) refuses every request
 * instead, with a warning. An `if` whose block only answers 2xx (`return 204` to a CORS preflight)
 * is dropped with the catalogue's warning alone: without it sluice is no more open than nginx.
 */
import type { NginxDirective } from './ast.js';
import { rewriteRedirects } from './convert-return.js';
import { isPlainSchemeTest } from './convert-scheme-if.js';
import { ifConditionText } from './if-condition-text.js';
import type { Scope } from './scope.js';

/** Directives that keep some requests from what a block would serve (`if` can hold the first four). */
const REFUSING = new Set(['deny', 'auth_basic', 'auth_request', 'limit_except', 'internal', 'limit_req']);

/**
 * The first `if` of this level (not inherited: nginx runs a level's own) whose block refuses,
 * leaving out those `settled` elsewhere (convert-host-if.ts).
 */
export function refusingIf(
  scope: Scope,
  settled: ReadonlySet<NginxDirective> = new Set(),
): NginxDirective | undefined {
  return scope.directives.find(
    (d) =>
      d.name === 'if' &&
      d.block !== null &&
      !settled.has(d) &&
      // The server-level HTTPS redirect is carried over per sluice server (convert-scheme-if.ts).
      !(scope.kind === 'server' && isPlainSchemeTest(d.args)) &&
      refuses(d.block),
  );
}

/**
 * Whether a block (an `if`'s, or a location's with its nested ones) refuses, redirects or limits
 * some requests: `deny`, `auth_*`, `limit_except`, `internal`, `limit_req`, a `return` of 300 or
 * more, a redirecting `rewrite`.
 */
export function blockRefuses(block: readonly NginxDirective[]): boolean {
  return refuses(block);
}

function refuses(block: readonly NginxDirective[]): boolean {
  return block.some((x) => {
    if (REFUSING.has(x.name) && !(x.args[0] === 'off')) return true;
    if (x.block !== null) return refuses(x.block);
    if (x.name === 'return') {
      // A redirect gates too: `if ($cookie_session = "") { return 302 /login; }` keeps the
      // location from everyone without a session; dropped, it served them all. Only a 2xx, which
      // answers instead of the location without sending anyone elsewhere, is left.
      const code = Number(x.args[0]);
      return !Number.isInteger(code) || code >= 300;
    }
    if (x.name === 'rewrite') return rewriteRedirects(x);
    return false;
  });
}

/** The warning for an `if` that refuses requests on a condition sluice cannot test. */
export function refusingIfWarning(d: NginxDirective, where: 'location' | 'server'): string {
  return `if ${ifConditionText(d.args)}: nginx refuses or redirects the requests this matches, which sluice cannot tell apart, so the ${where} refuses every request (403) instead of serving them all`;
}
