/**
 * Property-based tests (fast-check) of the header rewriter on hostile header lists: hop-by-hop
 * headers in any case, `Connection` naming anything, forged X-Forwarded-* and trace headers,
 * duplicates, and random route settings (set, remove, preserve_host). Nothing throws; what goes
 * upstream or back to the client is a well-formed flat list without a hop-by-hop header, without
 * a header the client's or upstream's `Connection` named, and with sluice's own forwarding
 * headers exactly once.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTemplate, type TemplatePart } from '../../src/config/template.js';
import type { ProxyAction } from '../../src/config/types.js';
import type { ProxyExchange } from '../../src/proxy/proxy-exchange.js';
import { compileProxyRoute } from '../../src/proxy/proxy-route.js';
import { upstreamRequestHeaders } from '../../src/proxy/request-headers.js';
import { clientResponseHeaders } from '../../src/proxy/response-headers.js';
import type { Upstream } from '../../src/proxy/upstream.js';
import type { VariableSource } from '../../src/proxy/variables.js';
import { fuzzCounter } from '../helpers/reliability.js';

const fuzz = fuzzCounter(
  'fuzz-02-headers',
  'Header rewriter: hostile request and response header lists (hop-by-hop names in any case, Connection naming anything, forged X-Forwarded-*), random route settings',
);
afterAll(() => fuzz.record());

/**
 * Names a hostile client or upstream would send: the hop-by-hop headers of RFC 9110 7.6.1 and
 * RFC 2616 (the first nine, the oracle here), then headers sluice writes or drops itself.
 */
const SPECIAL = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'traceparent',
  'tracestate',
  'expect',
  'x-internal',
  'set-cookie',
];
/** The hop-by-hop names, as the specs list them. */
const HOP_BY_HOP = SPECIAL.slice(0, 9);
const randomCase = (s: string) =>
  fc
    .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
    .map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const headerNameArb = fc.oneof(fc.constantFrom(...SPECIAL).chain(randomCase), token.chain(randomCase));
/** A value as llhttp lets it through: visible ASCII, spaces, tabs, obs-text. */
const headerValue = fc.stringMatching(/^[\x20-\x7e\t\x80-\xff]{0,24}$/);
/** A `Connection` value: a list of names, with spaces and empty elements. */
const connectionValue = fc
  .array(fc.oneof(headerNameArb, fc.constantFrom('close', 'keep-alive', '', ' ')), { maxLength: 5 })
  .map((l) => l.join(','));

/** A raw header list `[name, value, ...]` with a Connection header now and then. */
const rawHeaders = fc
  .array(
    fc.oneof(fc.tuple(headerNameArb, headerValue), fc.tuple(randomCase('connection'), connectionValue)),
    { maxLength: 16 },
  )
  .map((pairs) => pairs.flat());

/** A route's header settings, valid as config validation leaves them. */
const routeSettings = fc.record({
  preserveHost: fc.boolean(),
  set: fc.uniqueArray(
    fc.tuple(
      fc.oneof(fc.constantFrom(...SPECIAL.slice(9, 14)), token),
      fc.constantFrom('v', '$remote_addr', '$http_x_user_id', '', '$host-$request_id'),
    ),
    {
      maxLength: 4,
      selector: ([n]) => n.toLowerCase(),
    },
  ),
  remove: fc.uniqueArray(fc.oneof(fc.constantFrom(...SPECIAL.slice(9, 14)), token), { maxLength: 4 }),
});

function parts(text: string): readonly TemplatePart[] {
  const parsed = parseTemplate(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.parts;
}

function compile(s: { preserveHost: boolean; set: [string, string][]; remove: string[] }) {
  const action: ProxyAction = {
    kind: 'proxy',
    upstream: 'u',
    basePath: '',
    stripPrefix: '',
    preserveHost: s.preserveHost,
    setHeaders: s.set,
    removeHeaders: s.remove.map((n) => n.toLowerCase()),
    responseSetHeaders: s.set,
    responseRemoveHeaders: s.remove.map((n) => n.toLowerCase()),
    responseAddHeaders: [],
    responseAddAlwaysHeaders: [],
    connectTimeoutMs: 1000,
    readTimeoutMs: 1000,
    sendTimeoutMs: 1000,
  };
  return compileProxyRoute(action, {} as Upstream, parts);
}

/** The lower-case names a Connection header of `raw` lists (as the server's head scan does). */
function connectionTokens(raw: readonly string[]): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue;
    for (const t of raw[i + 1]!.split(',')) {
      const lower = t.trim().toLowerCase();
      if (lower !== '' && lower !== 'close' && lower !== 'keep-alive') tokens.push(lower);
    }
  }
  return tokens;
}

function source(raw: readonly string[]): VariableSource {
  return {
    remoteAddr: '192.0.2.7',
    hostName: 'a.test',
    scheme: 'http',
    requestId: '0123456789abcdef01234567',
    requestUri: '/x?y',
    query: '?y',
    forwardedFor: '192.0.2.7',
    clientSpiffeId: '',
    header: (name) => {
      for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return raw[i + 1];
      return undefined;
    },
  };
}

/** The forwarding headers sluice writes on every request. */
const FORWARDING = ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host'];

/** Names of a flat list, lower-case. */
const namesOf = (flat: readonly string[]) => flat.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
const count = (names: readonly string[], name: string) => names.filter((n) => n === name).length;

describe('upstreamRequestHeaders on hostile requests', () => {
  it('sends a well-formed list: no hop-by-hop, nothing Connection named, forwarding headers once', () => {
    fc.assert(
      fc.property(
        rawHeaders,
        routeSettings,
        fuzz.check((raw, settings) => {
          const route = compile(settings);
          const tokens = connectionTokens(raw);
          const x = {
            ...source(raw),
            req: { rawHeaders: raw },
            connectionTokens: tokens.length > 0 ? tokens : null,
            forwardedProto: 'http',
            forwardedHost: 'a.test',
            tracestate: null,
          } as unknown as ProxyExchange;
          const out = upstreamRequestHeaders(x, route, '127.0.0.1:9000', '00-trace-span-01');
          expect(out.length % 2).toBe(0);
          for (const v of out) expect(typeof v).toBe('string');
          const names = namesOf(out);
          // The headers the route sets to a non-empty value for this request.
          const setNames = route.setHeaders.filter(([, t]) => t(x) !== '').map(([n]) => n.toLowerCase());
          // Headers sluice writes itself: the client's copies are dropped, and a new hop gets its own.
          const own = [...FORWARDING, 'traceparent', ...(settings.preserveHost ? [] : ['host'])];
          for (const name of names) {
            // A hop-by-hop header or one the client named in Connection is never forwarded (unless
            // the route or sluice sets it itself).
            if (!setNames.includes(name) && !own.includes(name)) {
              expect(HOP_BY_HOP, name).not.toContain(name);
              expect(tokens, name).not.toContain(name);
            }
          }
          // What the route removes is gone; what it sets is there once.
          // (Host is not among them: HTTP/1.1 requires one, so without the client's the target's goes.)
          for (const r of settings.remove.map((n) => n.toLowerCase())) {
            if (!setNames.includes(r) && r !== 'host') expect(names).not.toContain(r);
          }
          for (const n of setNames) expect(count(names, n)).toBe(1);
          // sluice's forwarding headers, once each, never the client's copy.
          const overridden = new Set([...settings.set.map(([n]) => n.toLowerCase()), ...settings.remove]);
          for (const fwd of FORWARDING) {
            expect(count(names, fwd), fwd).toBe(overridden.has(fwd) ? (setNames.includes(fwd) ? 1 : 0) : 1);
          }
          expect(count(names, 'traceparent')).toBe(1);
          expect(count(names, 'expect')).toBe(0);
          // Never two Host headers from one (the upstream would refuse the request): the client's,
          // the one set_headers writes (it wins over preserve_host: false), or the target's.
          if (count(namesOf(raw), 'host') <= 1) expect(count(names, 'host')).toBeLessThanOrEqual(1);
          const setsHost = settings.set.some(([n]) => n.toLowerCase() === 'host');
          if (!settings.preserveHost && !setsHost) {
            expect(count(names, 'host')).toBe(1);
            expect(out[names.indexOf('host') * 2 + 1]).toBe('127.0.0.1:9000');
          }
          const xff = names.indexOf('x-forwarded-for');
          if (xff !== -1 && !setNames.includes('x-forwarded-for')) expect(out[xff * 2 + 1]).toBe('192.0.2.7');
        }),
      ),
      { numRuns: 3000 },
    );
  });
});

describe('clientResponseHeaders on hostile upstream answers', () => {
  it('passes on a well-formed list: no hop-by-hop, nothing Connection named, the route edits applied', () => {
    fc.assert(
      fc.property(
        rawHeaders,
        routeSettings,
        fuzz.check((raw, settings) => {
          const route = compile(settings);
          const buffers = raw.map((s) => Buffer.from(s, 'latin1'));
          const src = source([]);
          const out = clientResponseHeaders(buffers, route, src, 200);
          expect(out.length % 2).toBe(0);
          const names = namesOf(out);
          const tokens = connectionTokens(raw);
          const setNames = route.responseSetHeaders
            .filter(([, t]) => t(src) !== '')
            .map(([n]) => n.toLowerCase());
          for (const name of names) {
            if (setNames.includes(name)) continue;
            expect(HOP_BY_HOP, name).not.toContain(name);
            expect(tokens, name).not.toContain(name);
            expect(settings.remove.map((r) => r.toLowerCase())).not.toContain(name);
          }
          for (const n of setNames) expect(count(names, n)).toBe(1);
          // Values come back as they were sent (latin1 round trip), for the headers kept.
          for (let i = 0; i < out.length; i += 2) {
            const name = out[i]!;
            if (setNames.includes(name.toLowerCase())) continue;
            const sent = raw.findIndex((n, j) => j % 2 === 0 && n === name && raw[j + 1] === out[i + 1]);
            expect(sent, `${name}: ${out[i + 1]}`).not.toBe(-1);
          }
        }),
      ),
      { numRuns: 3000 },
    );
  });
});
