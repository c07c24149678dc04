/**
 * `limit_except METHOD ... { allow/deny ... }` → two routes for one location: the location's
 * route for the listed methods (`match.methods`; GET brings HEAD, as in nginx), then one for every
 * other method with the block's allow/deny as its `access:` (a block that denies everyone: a 403
 * route). nginx applies the block before anything else of the location, `return` included.
 *
 * A block holding anything but allow/deny (auth_basic, proxy_pass...) cannot be written as
 * routes: the caller then refuses the whole location (403), never serving the other methods.
 */
import type { NginxDirective } from './ast.js';
import { accessAt, deniesEveryone } from './convert-guards.js';
import { childScope, type Scope } from './scope.js';
import type { SluiceAccess } from './sluice-config.js';
import type { WarningList } from './warnings.js';

/** What a location's `limit_except` becomes. */
export type LimitExceptPlan =
  /** The listed methods go to the route; the others get `access` (`null`: refused, 403). */
  | { readonly kind: 'split'; readonly methods: string[]; readonly access: SluiceAccess | null }
  /** sluice cannot follow it: the whole location refuses. */
  | { readonly kind: 'refuse' };

const METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'MKCOL',
  'COPY',
  'MOVE',
  'OPTIONS',
  'PROPFIND',
  'PROPPATCH',
  'LOCK',
  'UNLOCK',
  'PATCH',
]);

/** The location's own `limit_except`, if any; `undefined` when there is none or it restricts nothing. */
export function convertLimitExcept(scope: Scope, warnings: WarningList): LimitExceptPlan | undefined {
  const d = scope.directives.find((x) => x.name === 'limit_except' && x.block !== null);
  if (d === undefined || d.block === null) return undefined;
  // Nothing in the block: the other methods are served as the listed ones.
  if (d.block.length === 0) return undefined;
  const methods = d.args.map((m) => m.toUpperCase());
  const unknown = methods.filter((m) => !METHODS.has(m));
  const other = d.block.filter((x) => x.name !== 'allow' && x.name !== 'deny');
  if (methods.length === 0 || unknown.length > 0 || other.length > 0) {
    warnings.add(d, `${refusalReason(d, unknown, other)}; the location refuses every request (403)`);
    return { kind: 'refuse' };
  }
  if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
  const access = accessAt(childScope('location', d.block, scope), warnings)?.value;
  return { kind: 'split', methods, access: access === undefined || deniesEveryone(access) ? null : access };
}

function refusalReason(d: NginxDirective, unknown: string[], other: NginxDirective[]): string {
  if (d.args.length === 0) return 'limit_except without a method';
  if (unknown.length > 0) return `limit_except ${unknown.join(' ')}: not a method nginx takes here`;
  return `limit_except { ${[...new Set(other.map((x) => x.name))].join(', ')} }: sluice can restrict the other methods by allow/deny only`;
}
