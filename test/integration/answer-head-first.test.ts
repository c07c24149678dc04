/**
 * A target that sends its answer's head and then waits before its body (Server-Sent Events, long
 * polls, "headers first" streams): the client gets the head as soon as the target sends it, as
 * through nginx with `proxy_buffering off`, not together with the first body bytes. Node sends a
 * ServerResponse's head only with its first body write, which held it back.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** A raw HTTP/1.1 client that collects what it receives and notes when the server closes. */
function collecting(port: number, request: string): { text: () => string; closed: () => boolean } {
  const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
  socket.on('error', () => undefined);
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    text += d;
  });
  socket.on('close', () => {
    closed = true;
  });
  return { text: () => text, closed: () => closed };
}

/** A target that sends its head at once and holds the body until the test ends the answer. */
async function holdingUpstream(held: Map<string, http.ServerResponse>): Promise<TestUpstream> {
  return startUpstream(
    (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      held.set(req.url ?? '', res);
    },
    { streaming: true },
  );
}

/** Ends the answers still held, then sluice and the target. */
async function closeAll(held: Map<string, http.ServerResponse>, sluice: TestSluice, up: TestUpstream) {
  for (const res of held.values()) res.destroy();
  await sluice.close();
  await up.close();
}

describe('an answer whose head comes before its body', () => {
  const held = new Map<string, http.ServerResponse>();
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await holdingUpstream(held);
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            {
              match: { path_prefix: '/slow/' },
              proxy: { url: `http://127.0.0.1:${up.port}`, timeouts: { read: '1s' } },
            },
            { proxy: { url: `http://127.0.0.1:${up.port}` } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await closeAll(held, sluice, up);
  });

  it('reaches an HTTP/1.1 client before the body, which follows when the target sends it', async () => {
    const c = collecting(sluice.port, 'GET /events HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => c.text().includes('\r\n\r\n'));
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.text()).toMatch(/content-type: text\/event-stream/i);
    expect(c.text()).toMatch(/transfer-encoding: chunked\r\n/i);
    // Nothing of the body yet: the target has not sent any.
    expect(c.text().endsWith('\r\n\r\n')).toBe(true);
    held.get('/events')!.end('data: first\n\n');
    await until(() => c.text().endsWith('0\r\n\r\n'));
    expect(c.text()).toContain('data: first\n\n');
    expect(c.text().endsWith('0\r\n\r\n')).toBe(true);
  });

  it('is what an HTTP/1.1 client has when timeouts.read then cuts the answer (as nginx), not an empty reply', async () => {
    const c = collecting(sluice.port, 'GET /slow/events HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => c.closed(), 5000);
    expect(c.closed()).toBe(true);
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    await until(() => sluice.accessLines().some((l) => l.path === '/slow/events'));
    const line = sluice.accessLines().find((l) => l.path === '/slow/events');
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_UPSTREAM_TIMEOUT' });
  });
});

describe('an answer whose head comes before its body, over HTTP/2', () => {
  const held = new Map<string, http.ServerResponse>();
  let up: TestUpstream;
  let sluice: TestSluice;
  let pki: TestPki;
  let ca: Buffer;

  beforeAll(async () => {
    pki = makePki();
    const root = pki.ca('root');
    ca = readFileSync(root.cert);
    const leaf = root.leaf('localhost', { dns: ['localhost'], usage: 'server' });
    up = await holdingUpstream(held);
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await closeAll(held, sluice, up);
    pki.remove();
  });

  it('reaches the client before the body', async () => {
    const session = http2.connect(`https://localhost:${sluice.port}`, { ca });
    try {
      const stream = session.request({ ':path': '/h2-events' });
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      expect(headers[':status']).toBe(200);
      expect(headers['content-type']).toBe('text/event-stream');
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        body += d;
      });
      await until(() => held.has('/h2-events'));
      held.get('/h2-events')!.end('data: first\n\n');
      await new Promise((resolve) => stream.once('end', resolve));
      expect(body).toBe('data: first\n\n');
    } finally {
      session.close();
    }
  });
});

describe('an answer whose head comes before its body, through the egress proxy', () => {
  const held = new Map<string, http.ServerResponse>();
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await holdingUpstream(held);
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ respond: { body: 'ok\n' } }] }],
      egress: {
        listen: '127.0.0.1:0',
        policies: [{ name: 'tests', sources: ['127.0.0.1/32'], hosts: [`127.0.0.1:${up.port}`] }],
      },
    });
  });

  afterAll(async () => {
    await closeAll(held, sluice, up);
  });

  it('reaches the client before the body', async () => {
    const port = sluice.instance.addresses().egress!.port;
    const origin = `127.0.0.1:${up.port}`;
    const c = collecting(port, `GET http://${origin}/egress-events HTTP/1.1\r\nHost: ${origin}\r\n\r\n`);
    await until(() => c.text().includes('\r\n\r\n'));
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.text().endsWith('\r\n\r\n')).toBe(true);
    held.get('/egress-events')!.end('data: first\n\n');
    await until(() => c.text().endsWith('0\r\n\r\n'));
    expect(c.text()).toContain('data: first\n\n');
  });
});
