/**
 * nginx's location tree, flattened into sluice's routes with the same choice for every path.
 *
 * nginx (ngx_http_core_find_location) picks, at the server level, an exact location or the longest
 * prefix; under that prefix it searches its nested locations the same way, deepest level first;
 * then, on the way back up, each level's regexes in order, unless the prefix chosen among that
 * level's locations is `^~`. The first regex that matches wins; without one, the deepest prefix.
 *
 * sluice tries exact paths, then regexes in order, then the longest prefix, over a flat list. So:
 *
 * - a nested exact or prefix location is dropped (with a warning) when nginx never reaches it: a
 *   location beside one of its parents, longer than that parent, takes every path it matches
 *   (`location /a/ { location /a/b/c/ }` beside `location /a/b/`). Any other nested one is
 *   reached by exactly the paths sluice's longest prefix gives it;
 * - a regex route gets lookaheads that hold when nginx would try it: the path is under its
 *   parents, none of them loses to a longer location beside it, and the prefix chosen among its
 *   own level's locations is not `^~`;
 * - regex routes are ordered deepest level first (in written order within a level), as nginx
 *   tries them.
 *
 * A location nested in a regex location is matched by nginx only after the regex; sluice cannot
 * say that, so such a regex location refuses every request (502) rather than answer for them.
 *
 * Each level is indexed once (its prefix paths sorted and by path), so a location costs a lookup
 * per parent and per byte of its path: near-linear in the number of locations, once per server.
 */
import type { NginxDirective } from './ast.js';
import type { RoutePlan } from './convert-location.js';
import { pathSource } from './encoded-path.js';
import type { LocationMatch } from './location-match.js';
import { assertRegex } from './regex.js';
import type { WarningList } from './warnings.js';

/** One location of the tree. */
export interface LocationNode {
  readonly directive: NginxDirective;
  readonly match: LocationMatch;
  readonly parent: LocationNode | null;
  /** The locations of its level, itself included, in written order. */
  readonly level: LocationNode[];
  readonly children: LocationNode[];
  /** Its route, `null` when it has none (named, or not carried over). */
  plan: RoutePlan | null;
}

const isStatic = (n: LocationNode): boolean => n.match.kind === 'prefix' || n.match.kind === 'caret';

/** A level's locations indexed, so each question about it costs a lookup, not a scan of the level. */
interface LevelIndex {
  /** Its prefix locations sorted by path: those that extend a path are one run of them. */
  readonly sorted: readonly LocationNode[];
  readonly byPath: ReadonlyMap<string, readonly LocationNode[]>;
  /** The first exact location of each path. */
  readonly exact: ReadonlyMap<string, LocationNode>;
  readonly position: ReadonlyMap<LocationNode, number>;
  /** caretExclusion of the level, once computed. */
  carets?: string | undefined;
}

/** Built when the tree is complete (flattenLocations), once per level. */
const LEVELS = new WeakMap<readonly LocationNode[], LevelIndex>();

function levelIndex(level: readonly LocationNode[]): LevelIndex {
  let index = LEVELS.get(level);
  if (index === undefined) {
    const statics = level.filter(isStatic);
    const byPath = new Map<string, LocationNode[]>();
    for (const x of statics) byPath.set(x.match.path, [...(byPath.get(x.match.path) ?? []), x]);
    const exact = new Map<string, LocationNode>();
    for (const x of level)
      if (x.match.kind === 'exact' && !exact.has(x.match.path)) exact.set(x.match.path, x);
    index = {
      sorted: [...statics].sort((a, b) =>
        a.match.path < b.match.path ? -1 : a.match.path > b.match.path ? 1 : 0,
      ),
      byPath,
      exact,
      position: new Map(level.map((x, i) => [x, i])),
    };
    LEVELS.set(level, index);
  }
  return index;
}

/**
 * The prefix locations of `n`'s level that are longer than `n` and extend it, in written order.
 * O(log level + found): they are one run of the level's sorted paths.
 */
function longerBeside(n: LocationNode): LocationNode[] {
  const { sorted, position } = levelIndex(n.level);
  const path = n.match.path;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.match.path < path) lo = mid + 1;
    else hi = mid;
  }
  const out: LocationNode[] = [];
  for (let i = lo; i < sorted.length && sorted[i]!.match.path.startsWith(path); i++) {
    const x = sorted[i]!;
    if (x !== n && x.match.path.length > path.length) out.push(x);
  }
  return out.sort((a, b) => position.get(a)! - position.get(b)!);
}

/** `n`'s ancestors, outermost first. */
function ancestors(n: LocationNode): LocationNode[] {
  const out: LocationNode[] = [];
  for (let p = n.parent; p !== null; p = p.parent) out.push(p);
  return out.reverse();
}

/**
 * The location nginx takes instead for every path `path` of a location under `chain` (exact
 * siblings of a parent with that path, or a longer prefix beside a parent), or `undefined`.
 * O(chain × path length): the candidates are the prefixes of `path`.
 */
function shadowOf(path: string, exact: boolean, chain: readonly LocationNode[]): LocationNode | undefined {
  for (const a of chain) {
    const { byPath, exact: exacts, position } = levelIndex(a.level);
    let longer: LocationNode | undefined;
    if (path.startsWith(a.match.path)) {
      for (let len = a.match.path.length + 1; len <= path.length; len++) {
        for (const x of byPath.get(path.slice(0, len)) ?? []) {
          if (longer === undefined || position.get(x)! < position.get(longer)!) longer = x;
        }
      }
    }
    if (longer !== undefined) return longer;
    if (exact) {
      const same = exacts.get(path);
      if (same !== undefined) return same;
    }
  }
  return undefined;
}

/**
 * The regex alternation of the paths whose longest prefix among `level` is a `^~` one: for each
 * such C, "starts with C and with no longer plain prefix of the level that extends C"; a `^~`
 * inside a shorter one with no plain prefix between them is covered by the shorter.
 */
function caretExclusion(level: readonly LocationNode[]): string | undefined {
  const carets = level.filter((n) => n.match.kind === 'caret');
  if (carets.length === 0) return undefined;
  const plainLonger = (c: LocationNode): LocationNode[] =>
    longerBeside(c).filter((x) => x.match.kind === 'prefix');
  // A ^~ inside a shorter ^~ with no plain prefix between them is covered by the shorter. The
  // locations that can be either are prefixes of its path: looked up by path, not searched for.
  const { byPath } = levelIndex(level);
  const at = (path: string, length: number): readonly LocationNode[] =>
    byPath.get(path.slice(0, length)) ?? [];
  const covering = carets.filter((c) => {
    const path = c.match.path;
    for (let len = 1; len < path.length; len++) {
      if (!at(path, len).some((outer) => outer.match.kind === 'caret')) continue;
      let plainBetween = false;
      for (let k = len + 1; k <= path.length && !plainBetween; k++) {
        plainBetween = at(path, k).some((l) => l.match.kind === 'prefix');
      }
      if (!plainBetween) return false;
    }
    return true;
  });
  const alternatives = covering.map((c) => {
    const longer = plainLonger(c).map((p) => pathSource(p.match.path.slice(c.match.path.length)));
    const rest = longer.length === 0 ? '' : `(?!${longer.join('|')})`;
    return `${pathSource(c.match.path)}${rest}`;
  });
  return alternatives.length === 1 ? alternatives[0]! : `(?:${alternatives.join('|')})`;
}

/** caretExclusion of a level, computed once per level. */
function levelCarets(level: readonly LocationNode[]): string | undefined {
  const index = levelIndex(level);
  if (!('carets' in index)) index.carets = caretExclusion(level);
  return index.carets;
}

/** The lookaheads under which nginx tries regex location `n`; `''` when it always does. */
function regexConditions(n: LocationNode): string {
  const chain = ancestors(n);
  let out = '';
  const parent = chain.at(-1);
  if (parent !== undefined) out += `(?=${pathSource(parent.match.path)})`;
  for (const a of chain) {
    const longer = longerBeside(a).map((x) => pathSource(x.match.path));
    if (longer.length > 0) out += `(?!${longer.length === 1 ? longer[0] : `(?:${longer.join('|')})`})`;
  }
  const carets = levelCarets(n.level);
  if (carets !== undefined) out += `(?!${carets})`;
  return out;
}

/**
 * Makes the routes of `nodes` (every location of a server, parents before children) choose as
 * nginx does: drops what nginx never reaches, guards and orders the regexes. `extra` are routes
 * made for a node besides its own (nginx's slash redirect), with the exact path they answer.
 * Returns the routes in order and whether a regex got a guard.
 */
export function flattenLocations(
  nodes: readonly LocationNode[],
  extra: ReadonlyMap<RoutePlan, LocationNode>,
  ordered: readonly RoutePlan[],
  warnings: WarningList,
): { plans: RoutePlan[]; guarded: boolean } {
  const nodeOf = new Map<RoutePlan, LocationNode>(extra);
  for (const n of nodes) if (n.plan !== null) nodeOf.set(n.plan, n);

  const kept: RoutePlan[] = [];
  let guarded = false;
  for (const plan of ordered) {
    const n = nodeOf.get(plan);
    if (n === undefined) {
      kept.push(plan);
      continue;
    }
    const chain = ancestors(n);
    const regexParent = chain.find((a) => a.match.kind === 'regex');
    if (regexParent !== undefined) {
      warnings.add(
        n.directive,
        `location ${n.directive.args.join(' ')} is nested in the regex location ${regexParent.directive.args.join(' ')} (line ${regexParent.directive.line}), which sluice cannot follow: not carried over, and the regex location refuses every request (502)`,
      );
      if (regexParent.plan !== null) refuse(regexParent.plan);
      continue;
    }
    if (plan.match.kind === 'regex') {
      const source = plan.route.match?.path_regex;
      const conditions = regexConditions(n);
      if (source !== undefined && conditions !== '' && plan.route.match !== undefined) {
        plan.route.match.path_regex = assertRegex(source, conditions);
        guarded = true;
      }
      kept.push(plan);
      continue;
    }
    // The node's own level counts too for a slash redirect: a longer prefix beside the location
    // itself may take the bare path.
    const own = extra.has(plan) ? [...chain, n] : chain;
    const shadow = shadowOf(plan.match.path, plan.match.kind === 'exact', own);
    if (shadow !== undefined) {
      if (!extra.has(plan)) {
        warnings.add(
          n.directive,
          `location ${n.directive.args.join(' ')} is never reached: nginx takes location ${shadow.directive.args.join(' ')} (line ${shadow.directive.line}) for every path it matches; not carried over`,
        );
      }
      continue;
    }
    kept.push(plan);
  }

  // Deeper regexes first, as nginx tries them on its way back up; written order within a level.
  const depth = (p: RoutePlan): number => {
    const n = nodeOf.get(p);
    return n === undefined ? 0 : ancestors(n).length;
  };
  const regexes = kept.filter((p) => p.match.kind === 'regex');
  const sorted = [...regexes].sort((a, b) => depth(b) - depth(a));
  let i = 0;
  const plans = kept.map((p) => (p.match.kind === 'regex' ? sorted[i++]! : p));
  return { plans, guarded };
}

/** Turns a route into a refusal: what it would answer cannot be carried over faithfully. */
function refuse(plan: RoutePlan): void {
  const { name, match } = plan.route;
  // Every method is refused, not only limit_except's: the route for the other methods was a copy
  // of the location's proxy, and went on proxying what the refusal covers.
  plan.limitExcept = undefined;
  plan.route = {
    ...(name === undefined ? {} : { name }),
    ...(match === undefined ? {} : { match }),
    respond: { status: 502 },
  };
  if (!plan.notes.some((n) => n.startsWith('locations nested in this regex'))) {
    plan.notes.push(
      'locations nested in this regex location are not carried over (see the warning); this route answers 502',
    );
  }
}
