/** Client addresses: one canonical form per address, and the client read from X-Forwarded-For. */
import { describe, expect, it } from 'vitest';
import { normaliseCidr } from '../../src/config/ip-cidr.js';
import { canonicalIp, clientFromForwardedFor, IpSet } from '../../src/core/ip-set.js';

describe('canonicalIp', () => {
  it('writes IPv6 in RFC 5952 form and IPv4-mapped addresses as IPv4', () => {
    expect(canonicalIp('203.0.113.7')).toBe('203.0.113.7');
    expect(canonicalIp('2001:DB8::77')).toBe('2001:db8::77');
    expect(canonicalIp('2001:0db8:0:0:0:0:0:0077')).toBe('2001:db8::77');
    expect(canonicalIp('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(canonicalIp('::FFFF:198.51.100.7')).toBe('198.51.100.7');
    expect(canonicalIp('::ffff:c633:6407')).toBe('198.51.100.7');
    expect(canonicalIp('::1')).toBe('::1');
  });

  it('refuses what is not an address, zone ids included', () => {
    for (const bad of ['', 'example.com', '1.2.3', '1.2.3.4:80', 'fe80::1%eth0', '::ffff:1.2.3.4.5'])
      expect(canonicalIp(bad)).toBeNull();
  });
});

describe('IpSet', () => {
  // One BlockList for both families matched IPv4 against IPv6 blocks (as ::ffff:a.b.c.d): a
  // "deny ::/0" refused every IPv4 client, "trusted_proxies: ::/0" trusted every IPv4 peer.
  it('checks each address against the blocks of its own family, as nginx allow/deny', () => {
    const v6 = new IpSet(['::/0']);
    expect(v6.has('10.1.2.3')).toBe(false);
    expect(v6.has('::ffff:10.1.2.3')).toBe(false);
    expect(v6.has('2001:db8::1')).toBe(true);
    // A mapped block is written as the IPv4 block it covers (ip-cidr.ts), which is what IpSet holds.
    expect(normaliseCidr('::ffff:0:0/96')).toEqual({ cidr: '0.0.0.0/0' });
    expect(normaliseCidr('::FFFF:203.0.113.0/120')).toEqual({ cidr: '203.0.113.0/24' });
    expect(normaliseCidr('::ffff:10.0.0.1')).toEqual({ cidr: '10.0.0.1/32' });
    expect(normaliseCidr('::ffff:0:0/95')).toEqual({ error: expect.stringMatching(/covers more than/) });
    expect(
      new IpSet([(normaliseCidr('::ffff:203.0.113.0/120') as { cidr: string }).cidr]).has('203.0.113.7'),
    ).toBe(true);
    expect(new IpSet(['::/1']).has('10.1.2.3')).toBe(false);
    const v4 = new IpSet(['0.0.0.0/0']);
    expect(v4.has('2001:db8::1')).toBe(false);
    expect(v4.has('::1')).toBe(false);
    expect(v4.has('10.1.2.3')).toBe(true);
  });

  it('checks an IPv4-mapped address as the IPv4 address it carries, in either spelling', () => {
    const set = new IpSet(['10.0.0.0/8', '2001:db8::/32']);
    expect(set.has('::ffff:10.1.2.3')).toBe(true);
    expect(set.has('::FFFF:10.1.2.3')).toBe(true);
    expect(set.has('::ffff:a01:203')).toBe(true);
    expect(set.has('::ffff:11.1.2.3')).toBe(false);
    expect(set.has('2001:db8:1::5')).toBe(true);
    expect(set.has('2001:db9::5')).toBe(false);
    expect(set.has('not an address')).toBe(false);
  });
});

describe('clientFromForwardedFor', () => {
  const trusted = new IpSet(['10.0.0.0/8']);

  it('takes the right-most untrusted entry, as nginx real_ip_recursive', () => {
    expect(clientFromForwardedFor('203.0.113.7, 10.0.0.2', trusted)).toBe('203.0.113.7');
    expect(clientFromForwardedFor('198.51.100.1, 203.0.113.7', trusted)).toBe('203.0.113.7');
    expect(clientFromForwardedFor('10.0.0.3, 10.0.0.2', trusted)).toBe('10.0.0.3');
  });

  it('reads entries with a port, skips empty ones, and writes the address canonically', () => {
    expect(clientFromForwardedFor('203.0.113.7:50312', trusted)).toBe('203.0.113.7');
    expect(clientFromForwardedFor('[2001:DB8::1]:443, 10.0.0.2:80', trusted)).toBe('2001:db8::1');
    expect(clientFromForwardedFor('1.2.3.4,,', trusted)).toBe('1.2.3.4');
    expect(clientFromForwardedFor('1.2.3.4, ', trusted)).toBe('1.2.3.4');
    expect(clientFromForwardedFor('::ffff:c633:6407', trusted)).toBe('198.51.100.7');
  });

  it('gives up (the peer stays the client) on an entry that is not an address', () => {
    for (const bad of ['unknown', '1.2.3.4:http', '[2001:db8::1', '[2001:db8::1]x', '1.2.3.4:123456', ','])
      expect(clientFromForwardedFor(bad, trusted)).toBeNull();
  });

  it('stops at an entry that is not an address with the last address read, as nginx does', () => {
    // nginx 1.22 with set_real_ip_from 127.0.0.1 and 10.0.0.0/8, real_ip_recursive on.
    expect(clientFromForwardedFor('garbage, 10.0.0.2', trusted)).toBe('10.0.0.2');
    expect(clientFromForwardedFor('1.1.1.1, garbage, 10.0.0.2, 10.0.0.3', trusted)).toBe('10.0.0.2');
    expect(clientFromForwardedFor('1.1.1.1, 300.1.1.1, 10.0.0.3', trusted)).toBe('10.0.0.3');
    expect(clientFromForwardedFor('1.2.3.4, unknown', trusted)).toBeNull();
  });
});
