/** Connection-level limits: idle keep-alive timeout, whole-request timeout, max_connections. */
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { rawUpstream } from '../helpers/raw-upstream.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('connection limits', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: {
            keepalive_timeout: '500ms',
            request_timeout: '1s',
            header_timeout: '1s',
            max_connections: 3,
            max_body: '10mb',
          },
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('closes an idle keep-alive connection after keepalive_timeout', async () => {
    const socket = net.connect(sluice.port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => {
      let answeredAt = 0;
      socket.on('data', () => {
        answeredAt = Date.now();
      });
      socket.on('close', () => resolve(Date.now() - answeredAt));
    });
    socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const idleMs = await closed;
    // keepalive_timeout is 500 ms; the server may close a little later, never much earlier.
    expect(idleMs).toBeGreaterThanOrEqual(400);
    expect(idleMs).toBeLessThan(3000);
  });

  it('answers 408 when the body does not arrive within request_timeout', async () => {
    const r = await rawRequest(
      sluice.port,
      ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n', 'x'.repeat(10), 'x'.repeat(10)],
      { gapMs: 1500, waitMs: 5000 },
    );
    expect(r.status === 408 || r.closed).toBe(true);
    expect(up.seen.filter((s) => s.method === 'POST')).toHaveLength(0);
  });

  it('answers 503 beyond max_connections and serves again once connections close', async () => {
    const held = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(sluice.port, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const refused = await rawRequest(sluice.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(refused.status).toBe(503);
    expect(refused.text).toContain('SLUICE_E_RUNTIME_OVERLOADED');
    expect(refused.closed).toBe(true);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const ok = await rawRequest(sluice.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(ok.status).toBe(200);
  });
});

describe('Expect: 100-continue', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', limits: { max_body: '1kb' }, routes: [{ proxy: { url: up.url } }] }],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('invites a body within max_body with 100 Continue, then forwards it', async () => {
    const r = await rawRequest(
      sluice.port,
      [
        'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n',
        'hello',
      ],
      { gapMs: 200 },
    );
    expect(r.text.startsWith('HTTP/1.1 100 Continue\r\n')).toBe(true);
    expect(r.text).toContain('HTTP/1.1 200 OK');
    expect(up.seen.at(-1)?.body.toString()).toBe('hello');
  });

  it('answers 413 at once, without 100 Continue, for a body over max_body', async () => {
    const r = await rawRequest(
      sluice.port,
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n',
    );
    expect(r.status).toBe(413);
    expect(r.text).not.toContain('100 Continue');
  });

  it('sends no 100 Continue to an HTTP/1.0 client (RFC 9110 10.1.1, 15.2), and serves it', async () => {
    const r = await rawRequest(
      sluice.port,
      'POST /e HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi',
    );
    expect(r.text).not.toContain('100 Continue');
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(up.seen.at(-1)?.body.toString()).toBe('hi');
  });

  // Node took the list as expecting 100 and sluice did not: no 100 went out, and Node closed the
  // connection after the answer, dropping the request pipelined behind it.
  it('takes 100-continue in a list, keeps the connection and serves what is pipelined behind it', async () => {
    const r = await rawRequest(
      sluice.port,
      'POST /list HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['100', '200', '200']);
    expect(r.text.split('\r\n\r\n')[1]).toMatch(/\r\nConnection: keep-alive\r\n/);
    expect(up.seen.map((s) => s.url).slice(-2)).toEqual(['/list', '/next']);
  });

  it('ignores an expectation it does not know and serves the request, as nginx', async () => {
    const before = sluice.accessLines().length;
    const r = await rawRequest(
      sluice.port,
      'POST /e HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    );
    expect(r.status).toBe(200);
    const seen = up.seen.at(-1);
    expect(seen?.body.toString()).toBe('hi');
    expect(seen?.headers.expect).toBeUndefined();
    const lines = await sluice.waitForAccessLines(before + 1);
    expect(lines.at(-1)).toMatchObject({ path: '/e', status: 200 });
  });
});

describe('max_requests_per_connection', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_requests_per_connection: 3 },
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('closes the connection after the Nth answer, even for a client that ignores Connection: close', async () => {
    const socket = net.connect(sluice.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1').on('data', (d: string) => {
      text += d;
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    // Five requests, one after the other, as a client that never looks at Connection would send them.
    for (let i = 1; i <= 5 && !socket.destroyed; i++) {
      const before = (text.match(/HTTP\/1\.1 /g) ?? []).length;
      socket.write(`GET /n${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
      for (
        let t = 0;
        t < 100 && (text.match(/HTTP\/1\.1 /g) ?? []).length === before && !socket.destroyed;
        t++
      )
        await new Promise((r) => setTimeout(r, 10));
    }
    await closed;
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '200']);
    expect(text.split('HTTP/1.1 ')[3]).toMatch(/\r\nconnection: close\r\n/i);
    expect(up.seen.map((s) => s.url)).toEqual(['/n1', '/n2', '/n3']);
  });

  it('answers a pipelined burst up to the Nth request, never forwarding those after it', async () => {
    up.seen.length = 0;
    const burst = [1, 2, 3, 4, 5].map((i) => `GET /p${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
    const r = await rawRequest(sluice.port, burst);
    expect(r.closed).toBe(true);
    expect([...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['200', '200', '200']);
    await new Promise((res) => setTimeout(res, 100));
    // In order, one after the other, and nothing left waiting (a drain would wait for it).
    expect(up.seen.map((s) => s.url)).toEqual(['/p1', '/p2', '/p3']);
    expect(sluice.instance.handles().inflight).toEqual([]);
  });
});

describe('a route max_body (nginx: client_max_body_size in a location)', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '1kb' },
          routes: [
            { match: { path_prefix: '/upload/' }, max_body: '8kb', proxy: { url: up.url } },
            { match: { path_prefix: '/tiny/' }, max_body: '16b', proxy: { url: up.url } },
            { match: { path: '/ok' }, respond: { body: 'ok' } },
            { proxy: { url: up.url } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  const post = (path: string, body: string, chunked = false) =>
    rawRequest(
      sluice.port,
      chunked
        ? `POST ${path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
        : `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );

  it("takes the route's limit in place of the server's, larger or smaller, by Content-Length or chunked", async () => {
    const big = 'b'.repeat(4000);
    expect((await post('/upload/a', big)).status).toBe(200);
    expect(up.seen.at(-1)?.body.length).toBe(4000);
    expect((await post('/upload/b', big, true)).status).toBe(200);
    expect(up.seen.at(-1)?.body.length).toBe(4000);
    expect((await post('/upload/c', 'b'.repeat(9000))).status).toBe(413);
    expect((await post('/upload/d', 'b'.repeat(9000), true)).status).toBe(413);
    expect((await post('/elsewhere-big', big)).status).toBe(413);
    expect((await post('/elsewhere-big-chunked', big, true)).status).toBe(413);
    expect((await post('/tiny/a', 'x'.repeat(10))).status).toBe(200);
    expect((await post('/tiny/b', 'x'.repeat(100))).status).toBe(413);
    expect((await post('/elsewhere-small', 'x'.repeat(100))).status).toBe(200);
    const refused = ['/upload/c', '/upload/d', '/elsewhere-big', '/elsewhere-big-chunked', '/tiny/b'];
    expect(up.seen.filter((r) => refused.includes(r.url))).toEqual([]);
  });

  it('refuses an announced body over max_body on a respond route too, as nginx', async () => {
    expect((await post('/ok', 'x'.repeat(2000))).status).toBe(413);
    expect((await post('/ok', 'x'.repeat(10))).status).toBe(200);
  });

  it("invites a body within the route's limit with 100 Continue", async () => {
    const r = await rawRequest(
      sluice.port,
      [
        'POST /upload/e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n',
        'e'.repeat(4000),
      ],
      { gapMs: 200 },
    );
    expect(r.text.startsWith('HTTP/1.1 100 Continue\r\n')).toBe(true);
    expect(r.text).toContain('HTTP/1.1 200 OK');
  });
});

describe('send_timeout', () => {
  let up: TestUpstream;
  let sluice: TestSluice;
  let upstreamClosed: Promise<void>;

  beforeAll(async () => {
    let closed!: () => void;
    upstreamClosed = new Promise((resolve) => {
      closed = resolve;
    });
    // 256 MB, written as the client takes it: far more than the socket buffers hold.
    up = await startUpstream((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 4096;
      res.writeHead(200, { 'content-length': String(chunk.length * left) });
      res.once('close', closed);
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    sluice = await startSluice({
      servers: [
        { listen: '127.0.0.1:0', limits: { send_timeout: '1s' }, routes: [{ proxy: { url: up.url } }] },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('closes a client that stops reading, and the upstream connection behind it', async () => {
    const socket = net.connect(sluice.port, '127.0.0.1');
    const started = Date.now();
    socket.on('error', () => undefined);
    socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    // Reads the head, then nothing more (a paused socket does not see the close either).
    socket.once('data', () => socket.pause());
    const [line] = await sluice.waitForAccessLines(1, 15_000);
    // send_timeout is 1 s, checked every second: cut within seconds, not at the 60 s read timeout.
    expect(Date.now() - started).toBeLessThan(10_000);
    // Logged with the status it was sent, as nginx does (and as HTTP/2 is), not as a client that left.
    expect(line).toMatchObject({ path: '/big', status: 200, error: 'SLUICE_E_CLIENT_SEND_TIMEOUT' });
    await upstreamClosed;
    // What was buffered is read, then the connection ends: it was closed, not left open.
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.resume();
    await closed;
  });
});

describe('a flood of pipelined requests behind one that is never answered', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  const sluices: TestSluice[] = [];

  beforeAll(async () => {
    up = await rawUpstream(() => '', { mode: 'silent' });
    for (const limits of [{}, { max_requests_per_connection: 0 }]) {
      sluices.push(
        await startSluice({
          servers: [
            { listen: '127.0.0.1:0', limits, routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }] },
          ],
        }),
      );
    }
  });

  afterAll(async () => {
    for (const s of sluices) await s.close();
    await up?.close();
  });

  // Node parses whatever the connection delivers and builds a request and a response for each:
  // 200,000 pipelined GETs held 450 MB and 37 s of CPU in one worker. Once 32 wait (or the
  // connection's max_requests_per_connection is reached), the connection must not be read on.
  it.each([
    ['max_requests_per_connection 1000', 0],
    ['no max_requests_per_connection', 1],
  ])('stops reading it (%s)', async (_name, which) => {
    const client = net.connect(sluices[which]!.port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    client.on('error', () => undefined);
    const local = client.localPort;
    let parsed = 0;
    const onStart = (m: unknown) => {
      if ((m as { socket: net.Socket }).socket.remotePort === local) parsed++;
    };
    diagnostics.subscribe('http.server.request.start', onStart);
    try {
      // 300,000 requests, 9 MB: far more than the socket buffers hold.
      client.write(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(300_000)));
      await new Promise((r) => setTimeout(r, 2000));
      const then = parsed;
      await new Promise((r) => setTimeout(r, 1000));
      // Reading stops after the chunk being parsed when the limit is met (64 KiB: about 2,400 requests).
      expect(parsed).toBeLessThan(10_000);
      expect(parsed).toBe(then);
    } finally {
      diagnostics.unsubscribe('http.server.request.start', onStart);
      client.destroy();
    }
  });
});

describe('a long pipelined burst to a target that answers', () => {
  it('is answered whole, in order, reading resumed as the waiting requests are served', async () => {
    const up = await startUpstream();
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_requests_per_connection: 0 },
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    });
    try {
      const burst = Array.from({ length: 300 }, (_, i) => `GET /b${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');
      const r = await rawRequest(
        sluice.port,
        `${burst}GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
        {
          waitMs: 15_000,
        },
      );
      expect((r.text.match(/HTTP\/1\.1 200 /g) ?? []).length).toBe(301);
      expect(up.seen.map((s) => s.url)).toEqual([
        ...Array.from({ length: 300 }, (_, i) => `/b${i}`),
        '/last',
      ]);
    } finally {
      await sluice.close();
      await up.close();
    }
  }, 30_000);
});
