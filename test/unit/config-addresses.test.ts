import { describe, expect, it } from 'vitest';
import { normaliseCidr } from '../../src/config/ip-cidr.js';
import { listenAddressesOverlap, parseListenAddress } from '../../src/config/listen-address.js';
import type { ListenAddress } from '../../src/config/types.js';
import { parseUpstreamUrl } from '../../src/config/upstream-url.js';

describe('parseListenAddress', () => {
  it.each<[string | number, string, number, string]>([
    [8080, '0.0.0.0', 8080, '0.0.0.0:8080'],
    ['8080', '0.0.0.0', 8080, '0.0.0.0:8080'],
    [':8080', '0.0.0.0', 8080, '0.0.0.0:8080'],
    ['*:80', '0.0.0.0', 80, '0.0.0.0:80'],
    ['0.0.0.0:8080', '0.0.0.0', 8080, '0.0.0.0:8080'],
    ['127.0.0.1:8080', '127.0.0.1', 8080, '127.0.0.1:8080'],
    ['[::1]:8080', '::1', 8080, '[::1]:8080'],
    ['[::]:8443', '::', 8443, '[::]:8443'],
    ['[0:0::1]:1', '::1', 1, '[::1]:1'],
    ['[FE80::A]:443', 'fe80::a', 443, '[fe80::a]:443'],
    ['localhost:8080', 'localhost', 8080, 'localhost:8080'],
    ['Edge-1.Example.com:65535', 'edge-1.example.com', 65535, 'edge-1.example.com:65535'],
    ['127.0.0.1:0', '127.0.0.1', 0, '127.0.0.1:0'],
    // An IPv4-mapped address takes only IPv4 connections to the address it carries: it is that one.
    ['[::ffff:127.0.0.1]:8080', '127.0.0.1', 8080, '127.0.0.1:8080'],
    ['[::FFFF:7f00:1]:8080', '127.0.0.1', 8080, '127.0.0.1:8080'],
    ['[::ffff:0.0.0.0]:80', '0.0.0.0', 80, '0.0.0.0:80'],
  ])('%j → %s port %d (%s)', (input, host, port, key) => {
    expect(parseListenAddress(input)).toEqual({ host, port, key });
  });

  it.each<[string | number, string]>([
    [65536, 'port 65536 is out of range 0-65535'],
    [80.5, '"80.5" is not a port number'],
    ['', '"" has no port; write HOST:PORT or :PORT'],
    ['localhost', '"localhost" has no port; write HOST:PORT or :PORT'],
    [':http', '"http" is not a port number'],
    ['127.0.0.1:', '"" is not a port number'],
    ['::1:8080', '"::1:8080": an IPv6 address needs brackets, as in "[::1]:8080"'],
    ['[::1]', '"[::1]" is not [IPV6]:PORT'],
    ['[127.0.0.1]:80', '"127.0.0.1" is not an IPv6 address'],
    ['1.2.3:80', '"1.2.3" is not an IPv4 address'],
    ['bad_host:80', '"bad_host" is not an IP address or host name'],
    ['-x.com:80', '"-x.com" is not an IP address or host name'],
    // Node's isIP takes a zone id, the URL parser that spells the key threw on it.
    [
      '[fe80::1%lo]:8080',
      '"fe80::1%lo" has an IPv6 zone id ("%lo"), which a listen address cannot have; listen on "[::]:PORT" to serve link-local addresses',
    ],
    ['[x%lo]:8080', '"x%lo" is not an IPv6 address'],
  ])('rejects %j', (input, error) => {
    expect(parseListenAddress(input)).toEqual({ error });
  });
});

describe('listenAddressesOverlap', () => {
  const a = (text: string): ListenAddress => {
    const r = parseListenAddress(text);
    if ('error' in r) throw new Error(r.error);
    return r;
  };
  it.each([
    [':80', '127.0.0.1:80', true],
    ['127.0.0.1:80', ':80', true],
    [':80', 'localhost:80', true],
    ['[::]:80', '[::1]:80', true],
    [':80', ':80', false],
    [':80', '127.0.0.1:81', false],
    [':80', '[::]:80', false],
    [':80', '[::1]:80', false],
    ['[::]:80', '127.0.0.1:80', false],
    ['127.0.0.1:80', '127.0.0.2:80', false],
    ['localhost:80', '127.0.0.1:80', true],
    ['[::1]:80', 'localhost:80', true],
    ['localhost:80', '127.0.0.1:81', false],
    ['localhost:80', '127.0.0.2:80', false],
    // Bound as the IPv4 address it carries: beside the IPv4 wildcard it cannot be, beside [::] it can.
    [':80', '[::ffff:127.0.0.1]:80', true],
    ['[::]:80', '[::ffff:127.0.0.1]:80', false],
    ['localhost:80', '[::ffff:127.0.0.1]:80', true],
  ])('%s with %s: %s', (x, y, overlap) => {
    expect(listenAddressesOverlap(a(x), a(y))).toBe(overlap);
  });
});

describe('normaliseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.0.0.1', '10.0.0.1/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::1', '::1/128'],
    ['FD00::/8', 'fd00::/8'],
  ])('%s → %s', (text, cidr) => expect(normaliseCidr(text)).toEqual({ cidr }));

  it.each([
    ['10.0.0.0/33', '"33" is not a prefix length for IPv4 (0-32)'],
    ['::/129', '"129" is not a prefix length for IPv6 (0-128)'],
    ['10.0.0.0/-1', '"-1" is not a prefix length for IPv4 (0-32)'],
    ['10.0.0.0/8/8', '"8/8" is not a prefix length for IPv4 (0-32)'],
    ['10.0.0/8', '"10.0.0" is not an IP address'],
    ['example.com', '"example.com" is not an IP address'],
    // Node's BlockList would drop the zone and match the address on every interface.
    [
      'fe80::1%eth0/128',
      '"fe80::1%eth0" has an IPv6 zone id ("%eth0"), but rules apply on every interface; write the address without it',
    ],
    ['10.0.0.1%eth0', '"10.0.0.1%eth0" is not an IP address'],
  ])('rejects %s', (text, error) => expect(normaliseCidr(text)).toEqual({ error }));
});

describe('parseUpstreamUrl', () => {
  it.each([
    ['http://127.0.0.1:9001', 'http://127.0.0.1:9001', ''],
    ['http://127.0.0.1:9001/', 'http://127.0.0.1:9001', ''],
    ['http://127.0.0.1:9001/api/', 'http://127.0.0.1:9001', '/api'],
    ['https://Backend.Internal:443/v1', 'https://backend.internal', '/v1'],
    ['http://[::1]:8080/x', 'http://[::1]:8080', '/x'],
    ['HTTP://example.com:80', 'http://example.com', ''],
  ])('%s → %s + %j', (text, origin, basePath) => {
    expect(parseUpstreamUrl(text)).toEqual({ origin, basePath });
  });

  it.each([
    ['127.0.0.1:9001', '"127.0.0.1:9001" is not an absolute URL; write it as http://127.0.0.1:9001'],
    ['/api', '"/api" is not an absolute URL; write it as http://api'],
    [' http://u:pw@a:9001', '" http://u:redacted@a:9001" has white space around it; write it without'],
    ['http://a:9001 ', '"http://a:9001 " has white space around it; write it without'],
    ['ws://x', '"ws://x" must use http:// or https://, not ws://'],
    ['http://a/?x=1', '"http://a/?x=1" must not have a query or fragment'],
    ['http://a/#top', '"http://a/#top" must not have a query or fragment'],
    ['http://a/?', '"http://a/?" must not have a query or fragment'],
    [
      'http://u@a',
      '"http://redacted@a" must not hold credentials; set an Authorization header with set_headers instead (an @ in a path is written %40)',
    ],
    // A password with a /: host u, port 9001, path /pw@a to a URL parser.
    [
      'http://u:9001/pw@a',
      '"http://u:redacted@a" must not hold credentials; set an Authorization header with set_headers instead (an @ in a path is written %40)',
    ],
    ['u:pw@a:9001', '"u:redacted@a:9001" is not an absolute URL; write it as http://u:redacted@a:9001'],
    ['http://a:99999', '"http://a:99999" is not a valid URL'],
  ])('rejects %s', (text, error) => expect(parseUpstreamUrl(text)).toEqual({ error }));
});
