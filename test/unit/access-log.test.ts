import { describe, expect, it } from 'vitest';
import { accessFields, JsonAccessLog, jsonConstantsHeld } from '../../src/observability/access-log.js';
import type { Exchange } from '../../src/server/exchange.js';

/** An exchange as the access log sees it, with awkward strings in every free-text field. */
function exchange(over: Partial<Exchange> = {}): Exchange {
  return {
    method: 'GET',
    path: '/we"ird\\path/ünï',
    requestUri: '/we"ird\\path/ünï?token=secret',
    status: 502,
    durationMs: 12.3456789,
    bytesOut: 42,
    remoteAddr: '::1',
    server: { name: 'web "1"' },
    route: { name: 'api\n' },
    requestId: '0123456789abcdef01234567',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    upstream: 'be',
    target: 'http://127.0.0.1:1',
    attempts: 2,
    errorCode: 'SLUICE_E_UPSTREAM_CONNECT',
    errorMessage: 'connect ECONNREFUSED "x"',
    ...over,
  } as unknown as Exchange;
}

describe('JSON access lines', () => {
  it('are valid JSON with the contract fields, whatever the strings contain', () => {
    const lines: string[] = [];
    new JsonAccessLog({ write: (l) => lines.push(l) }).write(exchange());
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('}\n')).toBe(true);
    const doc = JSON.parse(lines[0]!);
    expect(doc).toMatchObject({
      level: 'info',
      msg: 'request',
      pid: process.pid,
      method: 'GET',
      path: '/we"ird\\path/ünï',
      status: 502,
      status_text: 'Bad Gateway',
      duration_ms: 12.346,
      bytes_out: 42,
      remote_addr: '::1',
      server: 'web "1"',
      route: 'api\n',
      request_id: '0123456789abcdef01234567',
      upstream: 'be',
      target: 'http://127.0.0.1:1',
      attempts: 2,
      error: 'SLUICE_E_UPSTREAM_CONNECT',
      error_message: 'connect ECONNREFUSED "x"',
    });
    expect(doc.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[0]).not.toContain('secret');
  });

  // Methods are any token over HTTP/2: 30,000 invented 60 KB methods were kept, 615 MB of heap.
  it('remember at most a few MB of method and name literals, whatever clients invent', () => {
    const lines: string[] = [];
    const log = new JsonAccessLog({ write: (l) => lines.push(l) });
    const long = 'M'.repeat(60_000);
    for (let i = 0; i < 200; i++) log.write(exchange({ method: `${long}${i}` }));
    for (let i = 0; i < 12_000; i++) log.write(exchange({ method: `M${i}` }));
    expect(JSON.parse(lines[0]!).method).toBe(`${long}0`);
    expect(JSON.parse(lines.at(-1)!).method).toBe('M11999');
    const held = jsonConstantsHeld();
    expect(held.count).toBeLessThanOrEqual(10_000);
    expect(held.chars).toBeLessThan(6_000_000);
  });

  it('match the fields the pretty logger writes', () => {
    const lines: string[] = [];
    const x = exchange({ errorCode: null, errorMessage: null, upstream: null } as Partial<Exchange>);
    new JsonAccessLog({ write: (l) => lines.push(l) }).write(x);
    const { level, time, pid, msg, ...fields } = JSON.parse(lines[0]!);
    expect(fields).toEqual(accessFields(x));
  });

  it('log the path without its query when the request was refused before routing', () => {
    const lines: string[] = [];
    new JsonAccessLog({ write: (l) => lines.push(l) }).write(
      exchange({ path: '', server: null, route: null, status: 400 } as Partial<Exchange>),
    );
    expect(JSON.parse(lines[0]!)).toMatchObject({
      path: '/we"ird\\path/ünï',
      server: null,
      route: null,
      status_text: 'Bad Request',
    });
  });
});

describe('jsonString', () => {
  it('writes exactly what JSON.stringify writes, with and without characters to escape', async () => {
    const { jsonString } = await import('../../src/observability/access-log.js');
    for (const s of [
      '/plain/path',
      '',
      'quote"d',
      'back\\slash',
      'tab\there',
      'nl\n',
      '\u0000',
      'é/ü/漢字',
      '\ud800',
      'a\u001fb',
      '\u007f',
    ])
      expect(jsonString(s)).toBe(JSON.stringify(s));
  });
});
