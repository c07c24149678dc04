import { describe, expect, it } from 'vitest';
import type { ResolvedEgressPolicy } from '../../src/config/types.js';
import { EGRESS_CODES } from '../../src/egress/egress-errors.js';
import { egressRequestHeaders, egressResponseHeaders } from '../../src/egress/egress-headers.js';
import { compileEgressPolicies, decideEgress } from '../../src/egress/egress-policy.js';
import { canonicalHost, parseAbsoluteTarget, parseConnectTarget } from '../../src/egress/egress-target.js';
import { LoopGuard } from '../../src/egress/loop-guard.js';
import { ERROR_CATALOGUE } from '../../src/errors/catalogue.js';

const policy = (name: string, sources: string[], hosts: string[]): ResolvedEgressPolicy => ({
  name,
  sources,
  hosts,
});

const decide = (policies: ResolvedEgressPolicy[], source: string, host: string, port: number) =>
  decideEgress(compileEgressPolicies(policies), source, host, port);

describe('decideEgress', () => {
  const payments = policy('payments', ['10.0.0.0/8'], ['api.payment-gateway.com', '*.example.com']);

  it('allows an exact host on any port when the entry has none', () => {
    expect(decide([payments], '10.1.2.3', 'api.payment-gateway.com', 443)).toEqual({
      allowed: true,
      policy: 'payments',
    });
    expect(decide([payments], '10.1.2.3', 'api.payment-gateway.com', 8080)).toEqual({
      allowed: true,
      policy: 'payments',
    });
  });

  it('denies a host that is not listed, naming the reason', () => {
    expect(decide([payments], '10.1.2.3', 'evil.com', 443)).toEqual({ allowed: false, reason: 'host' });
    expect(decide([payments], '10.1.2.3', 'payment-gateway.com', 443)).toEqual({
      allowed: false,
      reason: 'host',
    });
    expect(decide([payments], '10.1.2.3', 'x.api.payment-gateway.com', 443)).toEqual({
      allowed: false,
      reason: 'host',
    });
  });

  it('matches a wildcard against any depth of subdomain, never the apex or a look-alike', () => {
    expect(decide([payments], '10.0.0.1', 'a.example.com', 80).allowed).toBe(true);
    expect(decide([payments], '10.0.0.1', 'a.b.c.example.com', 80).allowed).toBe(true);
    expect(decide([payments], '10.0.0.1', 'example.com', 80)).toEqual({ allowed: false, reason: 'host' });
    expect(decide([payments], '10.0.0.1', 'badexample.com', 80).allowed).toBe(false);
    expect(decide([payments], '10.0.0.1', 'example.com.evil.net', 80).allowed).toBe(false);
    expect(decide([payments], '10.0.0.1', 'a.example.co', 80).allowed).toBe(false);
  });

  it('is case-insensitive and ignores a trailing dot (hosts are canonicalised by the target parser)', () => {
    const t = parseAbsoluteTarget('http://API.Example.COM./x');
    expect('error' in t).toBe(false);
    if ('error' in t) return;
    expect(t.host).toBe('api.example.com');
    expect(decide([payments], '10.0.0.1', t.host, t.port).allowed).toBe(true);
    // Entries are canonicalised too.
    expect(
      decide([policy('p', ['10.0.0.0/8'], ['API.Other.ORG'])], '10.0.0.1', 'api.other.org', 80).allowed,
    ).toBe(true);
  });

  it('restricts the port when an entry has one; several entries for a host add up', () => {
    const p = policy('p', ['0.0.0.0/0'], ['api.x.com:443', 'api.x.com:8443', '*.y.com:443']);
    expect(decide([p], '1.2.3.4', 'api.x.com', 443).allowed).toBe(true);
    expect(decide([p], '1.2.3.4', 'api.x.com', 8443).allowed).toBe(true);
    expect(decide([p], '1.2.3.4', 'api.x.com', 80)).toEqual({ allowed: false, reason: 'host' });
    expect(decide([p], '1.2.3.4', 'a.y.com', 443).allowed).toBe(true);
    expect(decide([p], '1.2.3.4', 'a.y.com', 80).allowed).toBe(false);
    // An entry without a port widens the host to every port.
    const any = policy('p', ['0.0.0.0/0'], ['api.x.com:443', 'api.x.com']);
    expect(decide([any], '1.2.3.4', 'api.x.com', 9999).allowed).toBe(true);
  });

  it('checks the source against IPv4 and IPv6 CIDRs', () => {
    const p = policy('p', ['192.168.1.0/24', 'fd00::/8', '::1/128'], ['h.com']);
    expect(decide([p], '192.168.1.200', 'h.com', 80).allowed).toBe(true);
    expect(decide([p], '192.168.2.1', 'h.com', 80)).toEqual({ allowed: false, reason: 'source' });
    expect(decide([p], 'fd12:3456::1', 'h.com', 80).allowed).toBe(true);
    expect(decide([p], '::1', 'h.com', 80).allowed).toBe(true);
    expect(decide([p], 'fe80::1', 'h.com', 80)).toEqual({ allowed: false, reason: 'source' });
    expect(decide([p], 'not-an-ip', 'h.com', 80)).toEqual({ allowed: false, reason: 'source' });
    expect(decide([p], '', 'h.com', 80)).toEqual({ allowed: false, reason: 'source' });
  });

  it('reads an IPv4-mapped IPv6 source as its IPv4 address', () => {
    const p = policy('p', ['127.0.0.1/32'], ['h.com']);
    expect(decide([p], '::ffff:127.0.0.1', 'h.com', 80).allowed).toBe(true);
    expect(decide([p], '::ffff:127.0.0.2', 'h.com', 80).allowed).toBe(false);
  });

  it('takes the first policy, in config order, that allows the request', () => {
    const a = policy('a', ['10.0.0.0/8'], ['one.com']);
    const b = policy('b', ['10.1.0.0/16'], ['two.com', 'one.com']);
    const c = policy('c', ['0.0.0.0/0', '::/0'], ['public.org']);
    expect(decide([a, b, c], '10.1.0.5', 'one.com', 80)).toEqual({ allowed: true, policy: 'a' });
    expect(decide([a, b, c], '10.1.0.5', 'two.com', 80)).toEqual({ allowed: true, policy: 'b' });
    expect(decide([a, b, c], '10.2.0.5', 'two.com', 80)).toEqual({ allowed: false, reason: 'host' });
    expect(decide([a, b, c], '172.16.0.1', 'public.org', 80)).toEqual({ allowed: true, policy: 'c' });
    expect(decide([a, b], '172.16.0.1', 'one.com', 80)).toEqual({ allowed: false, reason: 'source' });
    expect(decide([], '10.0.0.1', 'one.com', 80)).toEqual({ allowed: false, reason: 'source' });
  });

  it('matches IP literals only against IP entries, never wildcards', () => {
    const p = policy('p', ['0.0.0.0/0'], ['127.0.0.1', '[::1]:8080', '*.0.0.1', '*.localhost']);
    expect(decide([p], '1.1.1.1', '127.0.0.1', 80).allowed).toBe(true);
    expect(decide([p], '1.1.1.1', '127.0.0.2', 80).allowed).toBe(false);
    expect(decide([p], '1.1.1.1', '[::1]', 8080).allowed).toBe(true);
    expect(decide([p], '1.1.1.1', '[::1]', 80).allowed).toBe(false);
    expect(decide([p], '1.1.1.1', 'a.localhost', 80).allowed).toBe(true);
    // A name is not its address: `localhost` is not allowed by the `127.0.0.1` entry.
    expect(decide([p], '1.1.1.1', 'localhost', 80).allowed).toBe(false);
    const t = parseConnectTarget('[0:0::1]:8080');
    expect(!('error' in t) && decide([p], '1.1.1.1', t.host, t.port).allowed).toBe(true);
  });
});

describe('egress targets', () => {
  it('parses absolute-form targets, keeping the path as written', () => {
    expect(parseAbsoluteTarget('http://api.example.com/a/../b%2F?q=1#frag')).toEqual({
      host: 'api.example.com',
      connectHost: 'api.example.com',
      port: 80,
      origin: 'http://api.example.com:80',
      path: '/a/../b%2F?q=1',
      hostHeader: 'api.example.com',
    });
    expect(parseAbsoluteTarget('HTTP://Example.com:8080')).toMatchObject({
      path: '/',
      port: 8080,
      hostHeader: 'example.com:8080',
    });
    expect(parseAbsoluteTarget('http://h.com?x')).toMatchObject({ path: '/?x' });
    expect(parseAbsoluteTarget('http://[::1]:9000/x')).toMatchObject({
      host: '[::1]',
      connectHost: '::1',
      origin: 'http://[::1]:9000',
      hostHeader: '[::1]:9000',
    });
  });

  it('refuses origin-form, other schemes and malformed authorities', () => {
    expect(parseAbsoluteTarget('/x')).toEqual({ error: 'origin-form' });
    expect(parseAbsoluteTarget('*')).toEqual({ error: 'origin-form' });
    expect(parseAbsoluteTarget('https://h.com/')).toEqual({ error: 'scheme' });
    expect(parseAbsoluteTarget('ftp://h.com/')).toEqual({ error: 'scheme' });
    expect(parseAbsoluteTarget('http://user:pw@h.com/')).toEqual({ error: 'invalid' });
    expect(parseAbsoluteTarget('http:///x')).toEqual({ error: 'invalid' });
    expect(parseAbsoluteTarget('http://h.com:0/')).toEqual({ error: 'invalid' });
    expect(parseAbsoluteTarget('http://h.com:65536/')).toEqual({ error: 'invalid' });
    expect(parseAbsoluteTarget('http://a b/')).toEqual({ error: 'invalid' });
  });

  it('parses CONNECT authorities; the port is required', () => {
    expect(parseConnectTarget('API.example.com:443')).toEqual({
      host: 'api.example.com',
      connectHost: 'api.example.com',
      port: 443,
    });
    expect(parseConnectTarget('[::1]:443')).toEqual({ host: '[::1]', connectHost: '::1', port: 443 });
    expect(parseConnectTarget('h.com')).toEqual({ error: 'invalid' });
    expect(parseConnectTarget('h.com:x')).toEqual({ error: 'invalid' });
    expect(parseConnectTarget('u@h.com:443')).toEqual({ error: 'invalid' });
    expect(parseConnectTarget('/x')).toEqual({ error: 'origin-form' });
  });

  it('canonicalises hosts as the URL parser does', () => {
    expect(canonicalHost('127.1')).toBe('127.0.0.1');
    expect(canonicalHost('bücher.de')).toBe('xn--bcher-kva.de');
    expect(canonicalHost('[0:0::1]')).toBe('[::1]');
    expect(canonicalHost('a b')).toBe(null);
  });

  // The URL parser reads `\` as `/`: `a\b.com` was the host `a`, checked and connected to as such.
  it('refuses a backslash in a host rather than cutting the name at it', () => {
    expect(canonicalHost('a\\b.com')).toBe(null);
    expect(parseConnectTarget('a\\b.com:443')).toEqual({ error: 'invalid' });
    expect(parseAbsoluteTarget('http://a\\b.com/')).toEqual({ error: 'invalid' });
  });

  it('refuses names DNS cannot carry: empty labels, labels over 63 octets, names over 253, `*`', () => {
    expect(canonicalHost('x.example.com.')).toBe('x.example.com');
    expect(canonicalHost('_dmarc.example.com')).toBe('_dmarc.example.com');
    expect(canonicalHost(`${'a'.repeat(63)}.com`)).toBe(`${'a'.repeat(63)}.com`);
    for (const bad of [
      '.example.com',
      'x..example.com',
      'x.example.com..',
      '*.example.com',
      'a$b.example.com',
      `${'a'.repeat(64)}.com`,
      `${['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(50)).join('.')}.com`,
    ]) {
      expect([bad, canonicalHost(bad)]).toEqual([bad, null]);
    }
    expect(parseConnectTarget('*.example.com:443')).toEqual({ error: 'invalid' });
  });
});

describe('egress headers', () => {
  it('drops hop-by-hop, Proxy-*, Expect and Connection-named headers and sets Host from the target', () => {
    const out = egressRequestHeaders(
      [
        'Host',
        'wrong.example',
        'Proxy-Authorization',
        'Basic eDp5',
        'Proxy-Connection',
        'keep-alive',
        'Connection',
        'keep-alive, X-Secret, host',
        'Keep-Alive',
        'timeout=5',
        'TE',
        'trailers',
        'Transfer-Encoding',
        'chunked',
        'Expect',
        '100-continue',
        'X-Secret',
        '1',
        'Accept',
        '*/*',
        'Authorization',
        'Bearer t',
      ],
      'api.example.com:8080',
    );
    expect(out).toEqual(['host', 'api.example.com:8080', 'Accept', '*/*', 'Authorization', 'Bearer t']);
  });

  it('drops hop-by-hop headers from responses', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Connection',
      'close, X-Hop',
      'X-Hop',
      '1',
      'Keep-Alive',
      'timeout=5',
      'Proxy-Authenticate',
      'Basic',
    ].map((s) => Buffer.from(s));
    expect(egressResponseHeaders(raw)).toEqual(['Content-Type', 'text/plain']);
  });
});

describe('LoopGuard', () => {
  it('recognises its own specific address and port', () => {
    const g = new LoopGuard(() => new Set());
    g.bind('127.0.0.1', 3128);
    expect(g.pointsAtSelf('127.0.0.1', 3128)).toBe(true);
    expect(g.pointsAtSelf('::ffff:127.0.0.1', 3128)).toBe(true);
    expect(g.pointsAtSelf('127.0.0.1', 3129)).toBe(false);
    expect(g.pointsAtSelf('127.0.0.2', 3128)).toBe(false);
    expect(g.pointsAtSelf(undefined, 3128)).toBe(false);
  });

  it('on a wildcard address, any loopback or interface address on its port is itself', () => {
    const g = new LoopGuard(() => new Set(['10.0.0.5', 'fd00::5']));
    g.bind('0.0.0.0', 3128);
    expect(g.pointsAtSelf('127.0.0.9', 3128)).toBe(true);
    expect(g.pointsAtSelf('::1', 3128)).toBe(true);
    expect(g.pointsAtSelf('10.0.0.5', 3128)).toBe(true);
    expect(g.pointsAtSelf('fd00::5', 3128)).toBe(true);
    expect(g.pointsAtSelf('10.0.0.6', 3128)).toBe(false);
    expect(g.pointsAtSelf('10.0.0.5', 80)).toBe(false);
  });
});

describe('egress error codes', () => {
  it('follow SLUICE_E_<AREA>_EGRESS_<WHAT> and are in the main catalogue', () => {
    for (const code of EGRESS_CODES) {
      expect(code).toMatch(/^SLUICE_E_(CLIENT|AUTH)_EGRESS_[A-Z_]+$/);
      expect(Object.hasOwn(ERROR_CATALOGUE, code)).toBe(true);
    }
  });
});
