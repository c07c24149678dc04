import { describe, expect, it } from 'vitest';
import { HostTable, normaliseHost } from '../../src/router/host-table.js';
import { normalisePath } from '../../src/router/normalise-path.js';
import { RouteTable } from '../../src/router/route-table.js';
import { resolvedRoute as route } from '../helpers/resolved-route.js';

describe('HostTable (nginx server_name order)', () => {
  const table = new HostTable([
    { names: ['first.test'], isDefault: false, value: 'first' },
    { names: ['www.example.com'], isDefault: false, value: 'exact' },
    { names: ['*.example.com'], isDefault: false, value: 'lead-short' },
    { names: ['*.b.example.com'], isDefault: false, value: 'lead-long' },
    { names: ['mail.*'], isDefault: false, value: 'trail-short' },
    { names: ['mail.example.*'], isDefault: false, value: 'trail-long' },
    { names: ['~^www\\.example\\.com$', '~^api\\d+\\.'], isDefault: false, value: 'regex' },
    { names: ['.dot.test'], isDefault: true, value: 'dot' },
  ]);

  it.each([
    ['www.example.com', 'exact'],
    ['a.example.com', 'lead-short'],
    ['a.b.example.com', 'lead-long'],
    ['deep.a.b.example.com', 'lead-long'],
    ['mail.example.net', 'trail-long'],
    ['mail.other.net', 'trail-short'],
    ['api7.anything', 'regex'],
    ['dot.test', 'dot'],
    ['x.dot.test', 'dot'],
    ['nothing.test', 'dot'],
    [undefined, 'dot'],
  ])('%s → %s', (host, value) => expect(table.match(host)).toBe(value));

  it('prefers exact over wildcards over regexes, whatever the order written', () => {
    const t = new HostTable([
      { names: ['~.*'], isDefault: false, value: 'regex' },
      { names: ['*.x.test'], isDefault: false, value: 'wild' },
      { names: ['a.x.test'], isDefault: false, value: 'exact' },
    ]);
    expect(t.match('a.x.test')).toBe('exact');
    expect(t.match('b.x.test')).toBe('wild');
    expect(t.match('other')).toBe('regex');
    // Without a default: the first server of the address.
    expect(t.defaultValue).toBe('regex');
  });

  it('normalises Host values', () => {
    expect(normaliseHost('WWW.Example.COM:8080')).toBe('www.example.com');
    expect(normaliseHost('example.com.')).toBe('example.com');
    expect(normaliseHost('[::1]:8080')).toBe('[::1]');
  });
});

describe('RouteTable (nginx location order)', () => {
  const table = new RouteTable(
    [
      route('catch-all', null),
      route('prefix-short', { kind: 'prefix', prefix: '/a/' }),
      route('prefix-long', { kind: 'prefix', prefix: '/a/b/' }),
      route('regex-1', { kind: 'regex', source: '\\.jpg$' }),
      route('regex-2', { kind: 'regex', source: '^/a/' }),
      route('exact', { kind: 'exact', path: '/a/b/c' }),
      route('post-only', { kind: 'exact', path: '/form' }, { methods: ['POST'] }),
      route('get-form', { kind: 'prefix', prefix: '/form' }),
      route(
        'beta',
        { kind: 'prefix', prefix: '/beta' },
        { headers: [{ name: 'x-beta', value: '^(1|yes)$', regex: true }] },
      ),
      route(
        'beta-exact-header',
        { kind: 'prefix', prefix: '/beta' },
        { headers: [{ name: 'x-beta', value: 'no', regex: false }] },
      ),
    ],
    (r) => r.name,
  );
  const none = { header: () => undefined };

  it.each([
    ['/a/b/c', 'exact'],
    ['/a/b/c.jpg', 'regex-1'],
    ['/a/x', 'regex-2'],
    ['/zzz', 'catch-all'],
  ])('%s → %s', (path, name) => expect(table.match(path, 'GET', none)).toBe(name));

  it('uses the longest prefix when no regex matches', () => {
    const t = new RouteTable(
      [route('short', { kind: 'prefix', prefix: '/a/' }), route('long', { kind: 'prefix', prefix: '/a/b/' })],
      (r) => r.name,
    );
    expect(t.match('/a/b/x', 'GET', none)).toBe('long');
    expect(t.match('/a/x', 'GET', none)).toBe('short');
    expect(t.match('/b', 'GET', none)).toBeUndefined();
  });

  it('falls through to the next candidate when methods or headers do not match', () => {
    expect(table.match('/form', 'POST', none)).toBe('post-only');
    expect(table.match('/form', 'GET', none)).toBe('get-form');
    expect(table.match('/beta', 'GET', { header: (n) => (n === 'x-beta' ? 'yes' : undefined) })).toBe('beta');
    expect(table.match('/beta', 'GET', { header: (n) => (n === 'x-beta' ? 'no' : undefined) })).toBe(
      'beta-exact-header',
    );
    expect(table.match('/beta', 'GET', none)).toBe('catch-all');
  });
});

describe('normalisePath', () => {
  it.each([
    ['/plain/path', '/plain/path'],
    ['/%61%62c', '/abc'],
    ['/a%2fb', '/a%2Fb'],
    ['/a/./b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/%2e%2e/x', null],
    ['/../x', null],
    ['/a%zz', null],
    ['/a%2', null],
    ['//admin//x', '/admin/x'],
    ['/%2f/admin', '/%2F/admin'],
    ['//a/..//b', '/b'],
  ])('%s → %s', (input, output) => expect(normalisePath(input)).toBe(output));

  it('keeps doubled slashes with merge_slashes: false', () => {
    expect(normalisePath('//proxy/http://x', false)).toBe('//proxy/http://x');
    expect(normalisePath('//a/./b', false)).toBe('//a/b');
  });
});
