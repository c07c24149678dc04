/**
 * What handlers answer, as the client gets it: fields HTTP/2 forbids, answers cut short, clients
 * that leave, over HTTP/2 (TLS) and HTTP/1.1.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let ca: Buffer;
/** The same routes on plain HTTP/1.1 (`h1`) and on TLS with HTTP/2 (`h2`). */
let h1: TestSluice;
let h2: TestSluice;
/** An upstream for /f/relay: Node's server answers with `Connection` and `Keep-Alive`, chunked. */
let upstream: http.Server;
let relay: string;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  const leaf = root.leaf('h.test', { dns: ['h.test'], usage: 'server' });
  ca = readFileSync(root.cert);
  upstream = http.createServer((_req, res) => {
    res.write('relayed ');
    res.end('body\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  relay = `/f/relay?to=${encodeURIComponent(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`)}`;
  const routes = [
    { name: 'fetch', match: { path_prefix: '/f/' }, handler: 'test/fixtures/handlers/edge-fetch-app.ts' },
    { name: 'listener', handler: 'test/fixtures/handlers/edge-listener-app.ts' },
  ];
  h1 = await startSluice({ servers: [{ listen: '127.0.0.1:0', routes }] });
  h2 = await startSluice({
    servers: [{ listen: '127.0.0.1:0', http2: true, tls: { cert: leaf.cert, key: leaf.key }, routes }],
  });
});

afterAll(async () => {
  await Promise.all([h1?.close(), h2?.close()]);
  upstream?.close();
  pki.remove();
});

/** How an HTTP/2 stream ended, as its client saw it. */
interface H2Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
  /** The RST_STREAM code the stream closed with (0 after a clean END_STREAM too). */
  readonly rstCode: number;
  /** The client's 'end': the server's END_STREAM, or (Node) a reset with NO_ERROR. */
  readonly ended: boolean;
}

/** One HTTP/2 request; settles when the stream closes, or after `timeoutMs` with what came. */
function h2Get(path: string, timeoutMs = 3000): Promise<H2Answer | 'timeout'> {
  return new Promise((resolve) => {
    const client = http2.connect(`https://127.0.0.1:${h2.port}`, { ca, servername: 'h.test' });
    client.on('error', () => undefined);
    const req = client.request({ ':path': path, ':authority': 'h.test' });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    let ended = false;
    req.setEncoding('utf8');
    req.on('response', (h) => {
      headers = h;
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      ended = true;
    });
    req.on('error', () => undefined);
    const timer = setTimeout(() => {
      client.destroy();
      resolve('timeout');
    }, timeoutMs);
    req.on('close', () => {
      clearTimeout(timer);
      client.close();
      resolve({ headers, body, rstCode: req.rstCode ?? -1, ended });
    });
    req.end();
  });
}

/** The access line of the request for `path`. */
function accessLine(sluice: TestSluice, path: string) {
  return until(
    () => sluice.logs.find((l) => l.msg === 'request' && l.path === path),
    `the access line of ${path}`,
  );
}

describe('connection-specific fields of a handler answer, over HTTP/2', () => {
  it.each([
    ['/te', 'te\n'],
    ['/keep-alive', 'keep-alive\n'],
    ['/upgrade', 'upgrade\n'],
    ['/named', 'named\n'],
    ['/f/keep-alive', 'x'],
    ['/f/hop-by-hop', 'hop\n'],
    ['/f/relay', 'relayed body\n'],
  ])('%s is answered without them', async (path, body) => {
    const answer = await h2Get(path === '/f/relay' ? relay : path);
    expect(answer).not.toBe('timeout');
    const a = answer as H2Answer;
    expect(a.headers[':status']).toBe(200);
    expect(a.body).toBe(body);
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'x-hop',
    ])
      expect(a.headers[name]).toBeUndefined();
    if (path === '/named' || path === '/f/hop-by-hop') expect(a.headers['x-kept']).toBe('yes');
  });
});

describe('a handler answer Node refuses to send, over HTTP/2', () => {
  it('is a 500 at once, never a stream left open', async () => {
    const answer = await h2Get('/two-etags');
    expect(answer).not.toBe('timeout');
    expect((answer as H2Answer).headers[':status']).toBe(500);
    expect((answer as H2Answer).headers.etag).toBeUndefined();
    expect(await accessLine(h2, '/two-etags')).toMatchObject({
      status: 500,
      error: 'SLUICE_E_HANDLER_ERROR',
    });
  });
});
