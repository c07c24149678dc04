/**
 * Property-based tests (fast-check) of the router on hostile input: request paths built from the
 * pieces attacks are made of (dot segments, percent escapes, bad escapes, control characters),
 * arbitrary Host values, and random route tables. Nothing throws; every result is well-formed.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { PathMatch, ResolvedRoute } from '../../src/config/types.js';
import { HostTable, normaliseHost } from '../../src/router/host-table.js';
import { normalisePath } from '../../src/router/normalise-path.js';
import { RouteTable } from '../../src/router/route-table.js';
import { fuzzCounter } from '../helpers/reliability.js';

const fuzz = fuzzCounter(
  'fuzz-01-router',
  'Router: request paths (dot segments, escapes, control characters), Host values, random route tables',
);
afterAll(() => fuzz.record());

/** A path segment as attackers write them. */
const segment = fc.oneof(
  fc.constantFrom(
    '.',
    '..',
    '%2e',
    '%2E%2e',
    '.%2e',
    '%2f',
    '%5c',
    '%00',
    '%',
    '%4',
    '%zz',
    '%41',
    '%7e',
    '%7E',
    '',
  ),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,8}$/),
  fc.string({ maxLength: 6 }),
);

/** A request path: `/` and segments. */
const requestPath = fc.array(segment, { maxLength: 10 }).map((s) => `/${s.join('/')}`);

describe('normalisePath on hostile paths', () => {
  it('never throws; a result is an absolute path with no dot segments and only upper-case escapes of reserved bytes', () => {
    fc.assert(
      fc.property(
        requestPath,
        fuzz.check((path) => {
          const out = normalisePath(path);
          if (out === null) return;
          expect(out.startsWith('/')).toBe(true);
          const segments = out.split('/');
          // A dot segment left in the middle could climb out of a route's prefix upstream.
          expect(segments.slice(1, -1)).not.toContain('..');
          expect(segments.slice(1, -1)).not.toContain('.');
          for (const m of out.matchAll(/%(..)/g)) {
            expect(m[1]).toMatch(/^[0-9A-F]{2}$/);
            const byte = Number.parseInt(m[1]!, 16);
            // Unreserved characters are always decoded (RFC 3986 6.2.2.2).
            expect(/[A-Za-z0-9._~-]/.test(String.fromCharCode(byte))).toBe(false);
          }
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('is idempotent: routing and the upstream see the same path', () => {
    fc.assert(
      fc.property(
        requestPath,
        fuzz.check((path) => {
          const once = normalisePath(path);
          if (once !== null) expect(normalisePath(once)).toBe(once);
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('never turns a path into one outside a prefix it did not start in', () => {
    fc.assert(
      fc.property(
        requestPath,
        fuzz.check((path) => {
          const out = normalisePath(path);
          // `/public/..%2f..%2fadmin` style tricks: a normalised path under /admin/ must not come
          // from a raw path that only reached it through an escape or a dot segment.
          if (out?.startsWith('/admin/') && !path.startsWith('/admin/')) {
            expect(path).toMatch(/%|\/\.\.?(\/|$)/);
          }
        }),
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws on any string at all', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 64 }),
        fuzz.check((path) => {
          const out = normalisePath(path);
          expect(out === null || typeof out === 'string').toBe(true);
        }),
      ),
      { numRuns: 3000 },
    );
  });
});

/** A host name label, sometimes upper-case. */
const label = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,6}$/);
const hostName = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));

describe('HostTable on hostile Host values', () => {
  const names = ['example.com', '*.example.com', 'mail.*', '.dot.test', '~^api\\d+\\.'];
  const table = new HostTable(names.map((n, i) => ({ names: [n], isDefault: i === 3, value: n })));

  it('never throws and always picks one of the servers', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 40 }),
          hostName,
          hostName.map((h) => `${h}:${h.length}`),
          fc.constantFrom('[', '[::1', '[::1]:80', ':', '.', '..', '*.example.com', 'EXAMPLE.COM.', ''),
        ),
        fuzz.check((host) => {
          expect(names).toContain(table.match(host));
        }),
      ),
      { numRuns: 3000 },
    );
  });

  it('normaliseHost leaves no upper-case ASCII, and is idempotent on host names', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 30 }),
        fuzz.check((host) => {
          expect(/[A-Z]/.test(normaliseHost(host))).toBe(false);
        }),
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        hostName,
        fc.boolean(),
        fc.option(fc.integer({ min: 1, max: 65535 })),
        fuzz.check((name, dot, port) => {
          const once = normaliseHost(`${name}${dot ? '.' : ''}${port === null ? '' : `:${port}`}`);
          expect(once).toBe(name.toLowerCase());
          expect(normaliseHost(once)).toBe(once);
        }),
      ),
      { numRuns: 2000 },
    );
  });

  it('an exact name wins whatever its case, port or trailing dot', () => {
    fc.assert(
      fc.property(
        hostName,
        fc.boolean(),
        fc.option(fc.integer({ min: 1, max: 65535 })),
        fuzz.check((name, dot, port) => {
          const t = new HostTable([
            { names: ['*.x.test'], isDefault: true, value: 'wild' },
            { names: [name.toLowerCase()], isDefault: false, value: 'exact' },
          ]);
          const host = `${name.toUpperCase()}${dot ? '.' : ''}${port === null ? '' : `:${port}`}`;
          expect(t.match(host)).toBe('exact');
        }),
      ),
      { numRuns: 1000 },
    );
  });
});

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'] as const;

/** A random route: exact, prefix, regex or no path condition, maybe narrowed by method. */
const routeArb = fc.record({
  path: fc.oneof(
    fc.constant(null),
    requestPath.map((p): PathMatch => ({ kind: 'exact', path: p })),
    requestPath.map((p): PathMatch => ({ kind: 'prefix', prefix: p })),
    fc.constantFrom<PathMatch>(
      { kind: 'regex', source: '\\.php$' },
      { kind: 'regex', source: '^/a' },
      { kind: 'regex', source: '(?:%2e|\\.){2}' },
    ),
  ),
  methods: fc.option(fc.subarray([...METHODS], { minLength: 1 })),
});

describe('RouteTable on random tables and paths', () => {
  it('never throws; a match satisfies its route, and an unconditioned exact route always wins', () => {
    fc.assert(
      fc.property(
        fc.array(routeArb, { minLength: 1, maxLength: 8 }),
        requestPath,
        fc.constantFrom(...METHODS),
        fuzz.check((specs, rawPath, method) => {
          const routes: ResolvedRoute[] = specs.map((s, i) => ({
            name: `r${i}`,
            path: s.path,
            methods: s.methods,
            headers: [],
            action: { kind: 'respond', status: 200, body: '', headers: [] },
            maxBody: null,
            guards: { access: null, rateLimit: null, ban: null },
          }));
          const table = new RouteTable(routes, (r) => r);
          const path = normalisePath(rawPath) ?? '/';
          const hit = table.match(path, method, { header: () => undefined });
          if (hit === undefined) {
            // 404 only when no route could take it.
            expect(routes.some((r) => r.path === null && r.methods === null)).toBe(false);
            return;
          }
          if (hit.methods !== null) expect(hit.methods).toContain(method);
          const p = hit.path;
          if (p?.kind === 'exact') expect(path).toBe(p.path);
          if (p?.kind === 'prefix') expect(path.startsWith(p.prefix)).toBe(true);
          if (p?.kind === 'regex') expect(new RegExp(p.source).test(path)).toBe(true);
          const exact = routes.find(
            (r) => r.path?.kind === 'exact' && r.path.path === path && r.methods === null,
          );
          if (exact !== undefined) expect(hit.path?.kind).toBe('exact');
        }),
      ),
      { numRuns: 2000 },
    );
  });
});
