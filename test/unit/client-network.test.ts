/** $remote_net and `per: network` bans: what network a client address stands for. */
import { describe, expect, it } from 'vitest';
import { clientNetwork } from '../../src/core/client-network.js';

describe('clientNetwork', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:0db8:0000:0000:0001::', '2001:db8::/64'],
    ['2001:db8::5', '2001:db8::/64'],
    ['::1', '::/64'],
    ['fe80::1', 'fe80::/64'],
    ['not an address', 'not an address'],
  ])('%s → %s', (address, network) => {
    expect(clientNetwork(address)).toBe(network);
    // Asked again (from the cache): the same.
    expect(clientNetwork(address)).toBe(network);
  });
});
