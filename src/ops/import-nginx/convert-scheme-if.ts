/**
 * The server-level HTTPS redirect written as a condition:
 *
 *   if ($scheme = http) { return 301 https://$host$request_uri; }     (or `$scheme != https`)
 *
 * The condition is settled by the address a request came in on, which sluice knows per server:
 * true on every plain address, false on every TLS one. So the plain sluice server answers every
 * path with the `return` (as a server-level `return` does), and the TLS one ignores the `if`.
 * Dropping it instead would serve over plain HTTP what nginx only serves over HTTPS.
 */
import type { NginxDirective } from './ast.js';
import type { ServerContext } from './convert-context.js';
import { firstReturn, rewriteRedirects } from './convert-return.js';
import { ifConditionText } from './if-condition-text.js';
import { childScope, type Scope } from './scope.js';
import type { SluiceRoute } from './sluice-config.js';

/** The route answering every path of the plain half, and its comment. */
export interface SchemeRedirect {
  readonly route: SluiceRoute;
  readonly note: string;
  readonly directive: NginxDirective;
}

/** Whether `if (ARGS)` tests for plain HTTP: `$scheme = http` or `$scheme != https`. */
export function isPlainSchemeTest(args: readonly string[]): boolean {
  const condition = args
    .join(' ')
    .replace(/^\(\s*/, '')
    .replace(/\s*\)$/, '');
  const m = /^\$scheme\s*(=|!=)\s*["']?(\w+)["']?$/.exec(condition);
  return m !== null && ((m[1] === '=' && m[2] === 'http') || (m[1] === '!=' && m[2] === 'https'));
}

/**
 * The first server-level `if` testing for plain HTTP, converted; `undefined` when there is none
 * or a server-level `return` comes first (it answers everything before the `if` is reached).
 */
export function convertSchemeIf(scope: Scope, server: ServerContext): SchemeRedirect | undefined {
  // A `rewrite ... last|break` before the `if` ends the server's rewrites for the paths it
  // matches, so nginx serves those over plain HTTP and redirects the rest: not expressible here.
  let cutBy: NginxDirective | null = null;
  for (const d of scope.directives) {
    if (d.block === null && d.name === 'return') return undefined;
    if (d.block === null && d.name === 'rewrite') {
      // One that redirects answers first; one without a flag goes on to the next directive.
      if (rewriteRedirects(d)) return undefined;
      if (d.args[2] === 'last' || d.args[2] === 'break') cutBy ??= d;
      continue;
    }
    if (d.name !== 'if' || d.block === null || !isPlainSchemeTest(d.args)) continue;
    if (cutBy !== null) {
      server.ctx.warnings.add(
        d,
        `if ${ifConditionText(d.args)}: nginx skips it for the paths rewrite ${cutBy.args.join(' ')} (line ${cutBy.line}) matches, which sluice cannot tell apart; the plain addresses answer 502 to every request`,
      );
      return {
        route: { respond: { status: 502 } },
        note: `nginx: if ${ifConditionText(d.args)} after rewrite ... ${cutBy.args[2]} (not carried over; see the warning)`,
        directive: d,
      };
    }
    const inner = childScope('location', d.block, scope);
    const returned = firstReturn(inner, server);
    const others = d.block.filter((x) => x !== returned?.directive);
    if (returned === undefined || returned.action === null || others.length > 0) {
      // nginx answers every plain request from inside the block; what sluice cannot write of it
      // must not become the server's routes served over plain HTTP.
      server.ctx.warnings.add(
        d,
        `if ${ifConditionText(d.args)}: only a return (or redirecting rewrite) can be carried over from this block; the plain addresses answer 502 to every request`,
      );
      return {
        route: { respond: { status: 502 } },
        note: `nginx: if ${ifConditionText(d.args)} (not carried over; see the warning)`,
        directive: d,
      };
    }
    return {
      route: { ...returned.action },
      note: `nginx: if ${ifConditionText(d.args)} { ${returned.directive.name} ${returned.directive.args.join(' ')} } (true on every plain address)`,
      directive: d,
    };
  }
  return undefined;
}
