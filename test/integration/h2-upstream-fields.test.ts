/**
 * An upstream's HTTP/1.1 answer carrying fields Node's HTTP/2 refuses to send as they are: a
 * single-value field given twice, and `HTTP2-Settings`. HTTP/1.1 relays them as given; HTTP/2 keeps
 * the last value of a repeated one and drops `HTTP2-Settings`, where both were a 502.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/cli.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

/** The exact heads the upstream writes, by request path. */
const HEADS: Record<string, string> = {
  '/two-types':
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nok\n',
  '/two-locations': 'HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n',
  '/two-etags':
    'HTTP/1.1 200 OK\r\nETag: "a"\r\nETag: "b"\r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\nContent-Length: 3\r\n\r\nok\n',
  '/http2-settings':
    'HTTP/1.1 200 OK\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 3\r\n\r\nok\n',
};

let upstream: net.Server;
let sluice: TestSluice;
let pki: TestPki;
let ca: Buffer;

beforeAll(async () => {
  upstream = net.createServer((socket) => {
    let head = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.end(HEADS[head.split(' ')[1] ?? '/'] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  const leaf = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
  sluice = await startSluice({
    servers: [
      { listen: '127.0.0.1:0', routes: [{ proxy: { url } }] },
      {
        listen: `127.0.0.1:${await freePort()}`,
        http2: true,
        tls: { cert: leaf.cert, key: leaf.key },
        routes: [{ proxy: { url } }],
      },
    ],
  });
});

afterAll(async () => {
  await sluice?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  pki?.remove();
});

/** The head and body of an HTTP/2 GET of `path`. */
async function h2Get(path: string): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
  const client = http2.connect(`https://127.0.0.1:${sluice.instance.addresses().servers[1]!.port}`, {
    ca,
    servername: 'a.test',
  });
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({ ':path': path });
      let headers: http2.IncomingHttpHeaders = {};
      let body = '';
      req.setEncoding('utf8');
      req.on('response', (h) => {
        headers = h;
      });
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('error', reject);
      req.on('end', () => resolve({ headers, body }));
    });
  } finally {
    client.close();
  }
}

/** The access line of the request for `path`. */
async function accessLine(path: string): Promise<Record<string, unknown> | undefined> {
  const lines = await sluice.waitForAccessLines(1);
  return lines.filter((l) => l.path === path).at(-1);
}

describe('a single-value field an upstream repeats', () => {
  it.each([
    ['/two-types', 200, 'content-type', 'text/html'],
    ['/two-locations', 302, 'location', '/b'],
    ['/two-etags', 200, 'etag', '"b"'],
  ])('%s is answered over HTTP/2 with its last value', async (path, status, name, value) => {
    const answer = await h2Get(path);
    expect(answer.headers[':status']).toBe(status);
    expect(answer.headers[name]).toBe(value);
    expect(answer.body).toBe(status === 200 ? 'ok\n' : '');
    const line = await accessLine(path);
    expect(line?.status).toBe(status);
    expect(line?.error).toBeUndefined();
  });

  it('leaves a field that may repeat as it is', async () => {
    const answer = await h2Get('/two-etags');
    expect(answer.headers['set-cookie']).toEqual(['x=1', 'y=2']);
  });

  it.each([
    ['/two-types', /\r\nContent-Type: text\/plain\r\nContent-Type: text\/html\r\n/],
    ['/two-locations', /\r\nLocation: \/a\r\nLocation: \/b\r\n/],
    ['/two-etags', /\r\nETag: "a"\r\nETag: "b"\r\n/],
  ])('%s is relayed over HTTP/1.1 with both', async (path, both) => {
    const r = await rawRequest(sluice.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    expect(r.text).toMatch(both);
  });
});

describe('an upstream HTTP2-Settings field', () => {
  it('is dropped over HTTP/2', async () => {
    const answer = await h2Get('/http2-settings');
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['http2-settings']).toBeUndefined();
    expect(answer.body).toBe('ok\n');
    expect((await accessLine('/http2-settings'))?.error).toBeUndefined();
  });

  it('is relayed over HTTP/1.1, as nginx relays it', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /http2-settings HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n/);
  });
});
