import { describe, expect, it } from 'vitest';
import { banAddress } from '../../src/security/ban-address.js';

describe('banAddress (DELETE /api/bans/{address})', () => {
  it('takes an address or an IPv6 /64 in the form bans are kept under', () => {
    expect(banAddress('192.0.2.1')).toBe('192.0.2.1');
    expect(banAddress('2001:DB8::1')).toBe('2001:db8::1');
    expect(banAddress('2001:db8:1:2::/64')).toBe('2001:db8:1:2::/64');
  });

  // It was kept as written and answered lifted: 0 while the /64 was banned.
  it('clears the host bits of a /64 written with them', () => {
    expect(banAddress('2001:db8:1:2:3::/64')).toBe('2001:db8:1:2::/64');
  });

  it('refuses anything else', () => {
    for (const text of ['*', '1', '192.0.2.0/24', '::ffff:192.0.2.1/64', '2001:db8::/48', ''])
      expect(banAddress(text)).toBeNull();
  });
});
