import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/config/template.js';
import { upstreamErrorCode } from '../../src/proxy/upstream-error.js';
import { compileTemplate, type VariableSource } from '../../src/proxy/variables.js';

const src: VariableSource = {
  remoteAddr: '203.0.113.7',
  hostName: 'example.com',
  scheme: 'https',
  requestId: 'abc',
  requestUri: '/p?q=1',
  query: '?q=1',
  forwardedFor: '10.0.0.1, 203.0.113.7',
  clientSpiffeId: 'spiffe://example.org/client',
  header: (n) => (n === 'x-user-id' ? 'u42' : undefined),
};

const compile = (text: string) => {
  const parsed = parseTemplate(text);
  if ('error' in parsed) throw new Error(parsed.error);
  return compileTemplate(parsed.parts);
};

describe('templates', () => {
  it('evaluates every variable', () => {
    expect(compile('$scheme://$host$request_uri')(src)).toBe('https://example.com/p?q=1');
    expect(
      compile('$remote_addr|$request_id|$http_x_user_id|$http_missing|$proxy_add_x_forwarded_for')(src),
    ).toBe('203.0.113.7|abc|u42||10.0.0.1, 203.0.113.7');
    expect(compile('id=$client_spiffe_id')(src)).toBe('id=spiffe://example.org/client');
    expect(compile('/new$is_args$args')(src)).toBe('/new?q=1');
    expect(compile('/new$is_args$args')({ ...src, query: '' })).toBe('/new');
  });

  it('keeps constants constant and $$ literal', () => {
    expect(compile('plain')(src)).toBe('plain');
    expect(compile('cost: $$5')(src)).toBe('cost: $5');
  });
});

describe('upstream error mapping', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, 'SLUICE_E_UPSTREAM_CONNECT'],
    [{ code: 'UND_ERR_CONNECT_TIMEOUT' }, 'SLUICE_E_UPSTREAM_TIMEOUT'],
    [{ code: 'UND_ERR_HEADERS_TIMEOUT' }, 'SLUICE_E_UPSTREAM_TIMEOUT'],
    [{ code: 'UND_ERR_BODY_TIMEOUT' }, 'SLUICE_E_UPSTREAM_TIMEOUT'],
    [{ code: 'UND_ERR_SOCKET' }, 'SLUICE_E_UPSTREAM_RESET'],
    [{ code: 'ECONNRESET' }, 'SLUICE_E_UPSTREAM_RESET'],
    [{ name: 'HTTPParserError' }, 'SLUICE_E_UPSTREAM_INVALID_RESPONSE'],
    [{ code: 'HPE_INVALID_CONSTANT' }, 'SLUICE_E_UPSTREAM_INVALID_RESPONSE'],
    [{ code: 'ERR_INVALID_CHAR' }, 'SLUICE_E_UPSTREAM_INVALID_RESPONSE'],
    [{ code: 'UND_ERR_INVALID_ARG' }, 'SLUICE_E_RUNTIME_INTERNAL'],
    [{ code: 'UND_ERR_NOT_SUPPORTED' }, 'SLUICE_E_RUNTIME_INTERNAL'],
    [{ code: 'SLUICE_INVALID_REQUEST' }, 'SLUICE_E_RUNTIME_INTERNAL'],
    // This host's failures, not the target's: no descriptor, no local port.
    [{ code: 'EMFILE', syscall: 'connect' }, 'SLUICE_E_RUNTIME_FD_LIMIT'],
    [{ code: 'ENFILE', syscall: 'connect' }, 'SLUICE_E_RUNTIME_FD_LIMIT'],
    [{ code: 'EMFILE', syscall: 'getaddrinfo' }, 'SLUICE_E_RUNTIME_FD_LIMIT'],
    [{ code: 'EADDRNOTAVAIL', syscall: 'connect' }, 'SLUICE_E_UPSTREAM_CONNECT'],
    [new Error('anything else'), 'SLUICE_E_UPSTREAM_RESET'],
  ])('%j → %s', (err, code) => expect(upstreamErrorCode(err)).toBe(code));

  it('takes any failed name lookup for a connect failure, EINVAL (a name over 253 octets) included', async () => {
    const name = `${['a', 'b', 'c', 'd'].map((c) => c.repeat(70)).join('.')}.example.test`;
    const err = await new Promise<Error>((resolve) => {
      const socket = net.connect({ host: name, port: 443 });
      socket.on('error', resolve);
    });
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'getaddrinfo' });
    expect(upstreamErrorCode(err)).toBe('SLUICE_E_UPSTREAM_CONNECT');
  });
});
