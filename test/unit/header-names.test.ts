import { describe, expect, it } from 'vitest';
import { connectionTokens, headerName, isHopByHop, withoutNamed } from '../../src/core/header-names.js';

describe('header names', () => {
  it('lower-cases names, however they are spelled', () => {
    expect(headerName('Content-Type')).toBe('content-type');
    expect(headerName('CONTENT-TYPE')).toBe('content-type');
    expect(isHopByHop(headerName('Keep-Alive'))).toBe(true);
    expect(isHopByHop('content-type')).toBe(false);
  });

  it('reads the header names a Connection value lists, leaving out close and keep-alive', () => {
    expect(connectionTokens('keep-alive', null)).toBeNull();
    expect(connectionTokens('Close', null)).toBeNull();
    expect(connectionTokens('KEEP-ALIVE', null)).toBeNull();
    const given = ['x-a'];
    expect(connectionTokens('close', given)).toBe(given);
    expect(connectionTokens('Keep-Alive, X-Secret ,, Close', null)).toEqual(['x-secret']);
    expect(connectionTokens('x-b', ['x-a'])).toEqual(['x-a', 'x-b']);
    expect(withoutNamed(['X-Secret', '1', 'Y', '2'], ['x-secret'])).toEqual(['Y', '2']);
  });
});
