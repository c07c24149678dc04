/**
 * nginx's inheritance, http → server → location → nested location. Two rules cover what the
 * import reads:
 *
 * - a single-value directive (`proxy_read_timeout`) comes from the nearest level that sets it;
 * - a list directive (`proxy_set_header`, `add_header`, `allow`/`deny`, `limit_req`) is taken
 *   whole from the nearest level that has any entry of it, and nothing is merged from above: a
 *   location with one `proxy_set_header` loses every one the server set (nginx's rule, and a
 *   classic surprise).
 */
import type { NginxDirective } from './ast.js';

/** A level of the config: its own directives and the level around it. */
export interface Scope {
  readonly kind: 'main' | 'http' | 'server' | 'location';
  readonly directives: readonly NginxDirective[];
  readonly parent: Scope | null;
}

/** A child scope of `parent`. */
export function childScope(kind: Scope['kind'], directives: readonly NginxDirective[], parent: Scope): Scope {
  return { kind, directives, parent };
}

/** A level's simple directives by name, and where each stands among them. */
interface LevelIndex {
  readonly byName: ReadonlyMap<string, readonly NginxDirective[]>;
  readonly position: ReadonlyMap<NginxDirective, number>;
}

/**
 * Built once per level: a location asks its server's level for dozens of names, and a server of
 * thousands of locations made each ask a scan of them all (quadratic).
 */
const INDEX = new WeakMap<readonly NginxDirective[], LevelIndex>();

function indexOf(directives: readonly NginxDirective[]): LevelIndex {
  let index = INDEX.get(directives);
  if (index === undefined) {
    const byName = new Map<string, NginxDirective[]>();
    const position = new Map<NginxDirective, number>();
    directives.forEach((d, i) => {
      if (d.block !== null) return;
      position.set(d, i);
      const list = byName.get(d.name);
      if (list === undefined) byName.set(d.name, [d]);
      else list.push(d);
    });
    index = { byName, position };
    INDEX.set(directives, index);
  }
  return index;
}

/** The directives named `names` at this level only, in written order. O(found) once indexed. */
export function own(scope: Scope, ...names: string[]): NginxDirective[] {
  const { byName, position } = indexOf(scope.directives);
  const found = names.flatMap((n) => byName.get(n) ?? []);
  // Several names (allow and deny) interleave: back in written order.
  if (names.length > 1 && found.length > 1) found.sort((a, b) => position.get(a)! - position.get(b)!);
  return found;
}

/** The list directives `names` from the nearest level with any of them, and that level. */
export function nearestList(
  scope: Scope,
  ...names: string[]
): { directives: NginxDirective[]; scope: Scope } | undefined {
  for (let s: Scope | null = scope; s !== null; s = s.parent) {
    const found = own(s, ...names);
    if (found.length > 0) return { directives: found, scope: s };
  }
  return undefined;
}

/** The single-value directive `name` from the nearest level that sets it (the last one there). */
export function nearest(scope: Scope, name: string): NginxDirective | undefined {
  return nearestList(scope, name)?.directives.at(-1);
}
