/**
 * The redirect server certbot writes for a site it gave a certificate:
 *
 *   server {
 *     if ($host = www.example.com) { return 301 https://$host$request_uri; }
 *     if ($host = example.com) { return 301 https://$host$request_uri; }
 *     listen 80; server_name example.com www.example.com; return 404;
 *   }
 *
 * Each `if` tests for one of the server's own names, which is what sluice's server selection does
 * by Host (case-insensitive, without the port, as nginx's `$host`). So the server becomes two: one
 * with the tested names answering every path with the `return`, and one with the rest of the
 * server (its other names, its default, its routes without the `if`s). Read as a condition sluice
 * cannot test, the whole server refused every request (403) and the site lost its redirect.
 */
import type { NginxDirective } from './ast.js';
import type { ServerContext } from './convert-context.js';
import { firstReturn, rewriteRedirects } from './convert-return.js';
import { isPlainSchemeTest } from './convert-scheme-if.js';
import { childScope, type Scope } from './scope.js';
import type { SluiceRoute } from './sluice-config.js';

/** The names the `if`s test and the route answering them. */
export interface HostRedirect {
  /** Lower case, as written in `server_name`. */
  readonly names: ReadonlySet<string>;
  readonly route: SluiceRoute;
  readonly note: string;
  /** The `if`s carried over. */
  readonly directives: ReadonlySet<NginxDirective>;
}

/** The name `if ($host = NAME)` tests for (quoted or not), lower case; null for any other test. */
export function hostTest(args: readonly string[]): string | null {
  const condition = args
    .join(' ')
    .replace(/^\(\s*/, '')
    .replace(/\s*\)$/, '');
  const m = /^\$host\s*=\s*(?:"([^"]+)"|'([^']+)'|([^\s"']+))$/.exec(condition);
  const name = m?.[1] ?? m?.[2] ?? m?.[3];
  return name === undefined ? null : name.toLowerCase();
}

/**
 * The server-level `if ($host = NAME)` blocks, converted, when every `if` of the server is one
 * (but `if ($scheme = http)`, which takes the plain addresses whole),
 * tests one of `serverNames` (exact names), and holds only a `return` (or a redirecting rewrite)
 * like the others, with no return before them; `undefined` otherwise, each such `if` then warned
 * as the catalogue warns an `if`.
 */
export function convertHostIfs(
  scope: Scope,
  server: ServerContext,
  serverNames: readonly string[],
  ifReason: string,
): HostRedirect | undefined {
  // `if ($scheme = http)` is settled per address apart (convert-scheme-if.ts).
  const ifs = scope.directives.filter(
    (d) => d.name === 'if' && d.block !== null && !isPlainSchemeTest(d.args),
  );
  const hostIfs = ifs.filter((d) => hostTest(d.args) !== null);
  if (hostIfs.length === 0) return undefined;
  const converted = convert(scope, server, serverNames, ifs, hostIfs);
  if (converted === undefined) {
    for (const d of hostIfs) server.ctx.warnings.add(d, `if { }: not carried over: ${ifReason}`);
  }
  return converted;
}

function convert(
  scope: Scope,
  server: ServerContext,
  serverNames: readonly string[],
  ifs: readonly NginxDirective[],
  hostIfs: readonly NginxDirective[],
): HostRedirect | undefined {
  if (ifs.length !== hostIfs.length) return undefined;
  const own = new Set(
    serverNames
      .filter((n) => !n.startsWith('~') && !n.includes('*') && !n.startsWith('.'))
      .map((n) => n.toLowerCase()),
  );
  // A return or redirect before the last `if` answers first for every request it meets.
  const last = scope.directives.indexOf(hostIfs[hostIfs.length - 1]!);
  const before = scope.directives.slice(0, last);
  if (
    before.some(
      (d) => d.block === null && (d.name === 'return' || (d.name === 'rewrite' && rewriteRedirects(d))),
    )
  )
    return undefined;
  const names = new Set<string>();
  let route: SluiceRoute | undefined;
  let text = '';
  for (const d of hostIfs) {
    const name = hostTest(d.args)!;
    if (!own.has(name) || d.block!.length !== 1) return undefined;
    const returned = firstReturn(childScope('location', d.block!, scope), server);
    if (returned === undefined || returned.action === null) return undefined;
    const next: SluiceRoute = { ...returned.action };
    if (route !== undefined && JSON.stringify(route) !== JSON.stringify(next)) return undefined;
    route = next;
    text = `${returned.directive.name} ${returned.directive.args.join(' ')}`;
    names.add(name);
  }
  return {
    names,
    route: route!,
    note: `nginx: if ($host = ...) { ${text} } for ${[...names].join(', ')}`,
    directives: new Set(hostIfs),
  };
}
