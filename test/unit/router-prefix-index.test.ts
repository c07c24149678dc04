/**
 * Prefix routes in large tables: a lookup does not scan every prefix route, and it decides exactly
 * as the documented order (docs/config.md "Matching"), checked against a plain linear reference on
 * random tables (fast-check, fixed seed) of both sizes: with the prefix Map and with the scan.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HeaderMatch, PathMatch, ResolvedRoute } from '../../src/config/types.js';
import { RouteTable } from '../../src/router/route-table.js';
import { resolvedRoute as route } from '../helpers/resolved-route.js';

const none = { header: () => undefined };
const withHeader = (value: string | undefined) => ({
  header: (n: string) => (n === 'x-v' ? value : undefined),
});

/** The documented order, written the plainest way: every candidate in order, the first that accepts. */
function reference(
  routes: readonly ResolvedRoute[],
  path: string,
  method: string,
  value: string | undefined,
) {
  const accepts = (r: ResolvedRoute) =>
    (r.methods === null || r.methods.includes(method)) &&
    r.headers.every((h) =>
      value === undefined || h.name !== 'x-v'
        ? false
        : h.regex
          ? new RegExp(h.value).test(value)
          : h.value === value,
    );
  const of = (kind: PathMatch['kind']) => routes.filter((r) => r.path?.kind === kind);
  const candidates = [
    ...of('exact').filter((r) => r.path?.kind === 'exact' && r.path.path === path),
    ...of('regex').filter((r) => r.path?.kind === 'regex' && new RegExp(r.path.source).test(path)),
    ...of('prefix')
      .filter((r) => r.path?.kind === 'prefix' && path.startsWith(r.path.prefix))
      .sort((a, b) => prefixOf(b).length - prefixOf(a).length),
    ...routes.filter((r) => r.path === null),
  ];
  return candidates.find(accepts)?.name;
}

function prefixOf(r: ResolvedRoute): string {
  return r.path?.kind === 'prefix' ? r.path.prefix : '';
}

/** Path text from few characters, upper case and an escape included, so prefixes repeat and nest. */
const pathText = (max: number, pieces = ['a', 'b', 'A', '/', '%2F']) =>
  fc.array(fc.constantFrom(...pieces), { maxLength: max }).map((p) => `/${p.join('')}`);

const headerArb = fc.constantFrom<readonly HeaderMatch[]>(
  [],
  [],
  [{ name: 'x-v', value: '1', regex: false }],
  [{ name: 'x-v', value: '^[12]$', regex: true }],
);

const routeArb = (prefixArb: fc.Arbitrary<string>) =>
  fc.record({
    path: fc.oneof(
      { weight: 8, arbitrary: prefixArb.map((prefix): PathMatch => ({ kind: 'prefix', prefix })) },
      { weight: 1, arbitrary: pathText(4).map((path): PathMatch => ({ kind: 'exact', path })) },
      { weight: 1, arbitrary: fc.constantFrom<PathMatch>({ kind: 'regex', source: 'A/$' }) },
      { weight: 1, arbitrary: fc.constant(null) },
    ),
    methods: fc.option(fc.constantFrom(['GET'], ['POST'], ['GET', 'POST']), { freq: 3 }),
    headers: headerArb,
  });

function compareWithReference(
  prefixArb: fc.Arbitrary<string>,
  minRoutes: number,
  maxRoutes: number,
  seed: number,
) {
  fc.assert(
    fc.property(
      fc.array(routeArb(prefixArb), { minLength: minRoutes, maxLength: maxRoutes }),
      fc.array(
        fc.tuple(pathText(7), fc.constantFrom('GET', 'POST'), fc.constantFrom(undefined, '1', '2', '3')),
        {
          minLength: 20,
          maxLength: 20,
        },
      ),
      (specs, requests) => {
        const routes = specs.map((s, i) =>
          route(`r${i}`, s.path, { methods: s.methods, headers: s.headers }),
        );
        const table = new RouteTable(routes, (r) => r.name);
        // Besides the random paths: each prefix itself and a path below it.
        const prefixes = routes.map(prefixOf).filter((p) => p !== '');
        const paths = [...requests.map(([p]) => p), ...prefixes, ...prefixes.map((p) => `${p}a/b`)];
        paths.forEach((path, i) => {
          const [, method, value] = requests[i % requests.length] ?? ['/', 'GET', undefined];
          expect(table.match(path, method, withHeader(value))).toBe(reference(routes, path, method, value));
        });
      },
    ),
    { seed, numRuns: 400 },
  );
}

describe('RouteTable prefix routes, large tables', () => {
  it('decides as the linear reference on random tables with many prefix routes of few lengths', () => {
    // Prefixes of 1 to 5 characters (at most 5 lengths) and 20 to 60 routes: the prefix Map.
    compareWithReference(pathText(4, ['a', 'b', 'A', '/']), 20, 60, 20261126);
  });

  it('decides as the linear reference on random small tables and tables of many lengths', () => {
    compareWithReference(pathText(4), 1, 12, 7);
    compareWithReference(pathText(12), 16, 40, 11);
  });

  it('keeps the order written among identical prefixes, falling through methods and headers to shorter ones', () => {
    const routes = [
      ...Array.from({ length: 30 }, (_, i) =>
        route(`filler${i}`, { kind: 'prefix', prefix: `/f${i % 10}/` }),
      ),
      route('short', { kind: 'prefix', prefix: '/api/' }),
      route(
        'v1-header',
        { kind: 'prefix', prefix: '/api/v1/' },
        { headers: [{ name: 'x-v', value: '1', regex: false }] },
      ),
      route('v1-post', { kind: 'prefix', prefix: '/api/v1/' }, { methods: ['POST'] }),
      route(
        'v1-regex-header',
        { kind: 'prefix', prefix: '/api/v1/' },
        { headers: [{ name: 'x-v', value: '^[12]$', regex: true }] },
      ),
      route('v1-any', { kind: 'prefix', prefix: '/api/v1/' }, { methods: ['GET'] }),
      route('upper', { kind: 'prefix', prefix: '/API/v1/' }),
      route('slash', { kind: 'prefix', prefix: '/api%2F' }),
      route('rest', null),
    ];
    const table = new RouteTable(routes, (r) => r.name);
    const cases: [string, string, string | undefined, string][] = [
      ['/api/v1/x', 'GET', '1', 'v1-header'],
      ['/api/v1/x', 'POST', '1', 'v1-header'],
      ['/api/v1/x', 'POST', undefined, 'v1-post'],
      ['/api/v1/x', 'GET', '2', 'v1-regex-header'],
      ['/api/v1/x', 'GET', '3', 'v1-any'],
      ['/api/v1/x', 'PUT', '3', 'short'],
      ['/api/v1', 'GET', '1', 'short'],
      ['/API/v1/x', 'GET', undefined, 'upper'],
      ['/Api/v1/x', 'GET', undefined, 'rest'],
      ['/api%2Fv1/', 'GET', '1', 'slash'],
      ['/f3/x', 'GET', undefined, 'filler3'],
    ];
    for (const [path, method, value, name] of cases) {
      expect([path, method, value, table.match(path, method, withHeader(value))]).toEqual([
        path,
        method,
        value,
        name,
      ]);
      expect(reference(routes, path, method, value)).toBe(name);
    }
  });

  it('finds the last of 100,000 prefix routes without trying the others (20,000 lookups well within 6 s)', () => {
    const count = 100_000;
    const routes = Array.from({ length: count }, (_, i) =>
      route(`r${i}`, { kind: 'prefix', prefix: `/r${String(i).padStart(6, '0')}/` }),
    );
    const table = new RouteTable(routes, (r) => r.name);
    const last = `/r${String(count - 1).padStart(6, '0')}/x`;
    // A scan of every prefix takes about 2e9 comparisons here; stop early rather than wait for it.
    const started = performance.now();
    let done = 0;
    let found = 0;
    while (done < 20_000 && performance.now() - started < 6000) {
      if (table.match(last, 'GET', none) === `r${count - 1}`) found++;
      done++;
    }
    expect([done, found]).toEqual([20_000, 20_000]);
  });
});
