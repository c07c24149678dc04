/**
 * Request bodies over 64 KiB (BODY_BUFFER_LIMIT) are streamed to the target as they arrive. Every
 * plain-http request is answered through the same client and response parser, whatever its body:
 * an unsolicited 100 Continue is skipped, a malformed answer is a 502, for streamed bodies as for
 * buffered ones. The streaming itself keeps its rules: back-pressure, timeouts.send, 413 past
 * max_body, a client that leaves aborts the upstream request, the framing the client sent, no retry
 * once sent, and an answer complete before the body stops the upload and closes the connection, while
 * a target answering as it reads (`req.pipe(res)`) gets the whole body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sendInPieces } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { rawUpstream } from '../helpers/raw-upstream.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** Over BODY_BUFFER_LIMIT (64 KiB): streamed. */
const STREAMED = 70_000;
/** Under it: read whole first. */
const BUFFERED = 60_000;

/** A request with a body of `size` `x`s, announced by Content-Length or sent chunked, answered on a closing connection. */
function upload(
  path: string,
  size: number,
  framing: 'length' | 'chunked' = 'length',
  method = 'PUT',
): string {
  const body = 'x'.repeat(size);
  return framing === 'length'
    ? `${method} ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n${body}`
    : `${method} ${path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${size.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);

/** A raw connection to `port` that collects what it receives. */
function collecting(port: number): { socket: net.Socket; text: () => string } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    text += d;
  });
  return { socket, text: () => text };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe('an unsolicited 100 Continue from the target', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await rawUpstream(
      () => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    );
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }] }],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  // RFC 9110 15.2: a client must accept 1xx answers it did not ask for. undici (which carried
  // streamed bodies) destroyed the connection on any 100: a 502 that counted against the target.
  it.each([
    [BUFFERED, 'length'],
    [STREAMED, 'length'],
    [STREAMED, 'chunked'],
  ] as const)('is skipped, and the final answer relayed, for a %i-byte body (%s)', async (size, framing) => {
    const r = await rawRequest(sluice.port, upload('/x', size, framing, 'POST'), { waitMs: 5000 });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('100 Continue');
    expect(bodyOf(r.text)).toBe('hello');
  });

  it('counts nothing against the target', async () => {
    const before = sluice.accessLines().length;
    const r = await rawRequest(sluice.port, 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(200);
    const lines = await sluice.waitForAccessLines(before + 1);
    expect(lines.filter((l) => l.error !== undefined)).toEqual([]);
  });
});

/** Answers a strict client refuses, by path; every one is a 502, whatever the request body. */
const BAD_ANSWERS: Record<string, string> = {
  '/http2': 'HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello',
  '/te-gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-chunked-chunked':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-twice':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-empty': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello',
  '/te-and-cl':
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/empty-line-first': '\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  '/differing-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
};

describe('upstream response strictness', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await rawUpstream(
      (path) =>
        BAD_ANSWERS[path] ??
        (path === '/equal-cl'
          ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
          : 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'),
    );
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }] }],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  const cases = Object.keys(BAD_ANSWERS).flatMap((path) =>
    [BUFFERED, STREAMED].map((size) => [path, size] as const),
  );

  it.each(cases)('answers 502 for %s after a %i-byte body', async (path, size) => {
    const r = await rawRequest(sluice.port, upload(path, size), { waitMs: 5000 });
    expect(r.status).toBe(502);
    expect(r.text).toContain('SLUICE_E_UPSTREAM_INVALID_RESPONSE');
    expect(r.text).not.toContain('hello');
  });

  it.each([BUFFERED, STREAMED])(
    'relays an answer repeating an equal Content-Length, with one, after a %i-byte body',
    async (size) => {
      const r = await rawRequest(sluice.port, upload('/equal-cl', size), { waitMs: 5000 });
      expect(r.status).toBe(200);
      expect(r.text.match(/^content-length: 5\r$/gim)).toHaveLength(1);
      expect(bodyOf(r.text)).toBe('hello');
    },
  );
});

describe('a streamed upload', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream((req, res, body) => {
      const doc = JSON.stringify({
        length: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(doc);
    });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '64mb' },
          routes: [{ proxy: { url: up.url, timeouts: { read: '500ms' } } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  beforeEach(() => {
    up.seen.length = 0;
  });

  /** Sends `body` in 64 KiB writes, with Content-Length or chunked; the target's JSON answer. */
  const send = async (body: Buffer, framing: 'length' | 'chunked') => {
    const r = await sendInPieces(`${sluice.url}/upload`, body, { framing });
    return { status: r.status, json: JSON.parse(r.body.toString()) as Record<string, unknown> };
  };

  it.each(['length', 'chunked'] as const)(
    'delivers 30 MB byte for byte, framed as the client framed it (%s)',
    async (framing) => {
      const body = randomBytes(30 * 1024 * 1024);
      const r = await send(body, framing);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({
        length: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentLength: framing === 'length' ? String(body.length) : null,
        transferEncoding: framing === 'chunked' ? 'chunked' : null,
      });
    },
  );

  it('reuses the connection after a streamed body was sent whole', async () => {
    const before = up.connections;
    for (const framing of ['length', 'chunked', 'length'] as const) {
      expect((await send(Buffer.alloc(STREAMED, 'y'), framing)).status).toBe(200);
    }
    expect(up.connections - before).toBeLessThanOrEqual(1);
  });

  // timeouts.read bounds the target's silence, not the client's: undici's headers timeout, which
  // carried these bodies, likewise holds off while the body is still being written.
  it('is not a read timeout while the client pauses mid-body longer than timeouts.read', async () => {
    const head = `PUT /slow HTTP/1.1\r\nHost: a\r\nContent-Length: ${2 * STREAMED}\r\nConnection: close\r\n\r\n`;
    const r = await rawRequest(sluice.port, [head + 'x'.repeat(STREAMED), 'x'.repeat(STREAMED)], {
      gapMs: 1200,
      waitMs: 5000,
    });
    expect(r.status).toBe(200);
    expect(r.text).toContain(`"length":${2 * STREAMED}`);
  });
});

describe('a streamed upload cut short', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    // Reads and never answers.
    up = await rawUpstream(() => '', { mode: 'silent' });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '200kb' },
          routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  /** The connection that carried the request for `path`. */
  const carrying = (path: string) => up.connections.find((c) => c.heads.some((h) => h.includes(` ${path} `)));

  it('past max_body (chunked): 413, and the upstream request is aborted', async () => {
    const chunk = `${(50_000).toString(16)}\r\n${'x'.repeat(50_000)}\r\n`;
    const r = await rawRequest(
      sluice.port,
      `PUT /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(6)}0\r\n\r\n`,
      { waitMs: 5000 },
    );
    expect(r.status).toBe(413);
    expect(r.text).toContain('SLUICE_E_CLIENT_BODY_TOO_LARGE');
    await until(() => carrying('/big')?.closed === true);
    expect(carrying('/big')?.closed).toBe(true);
    // The body was streamed (over 64 KiB went out), never whole (300,000 bytes).
    expect(carrying('/big')?.received).toBeGreaterThan(STREAMED);
    expect(carrying('/big')?.received).toBeLessThan(300_000);
  });

  // A reset, or a clean close (FIN) half-way through the body: the client left either way. The
  // FIN was logged 400 SLUICE_E_CLIENT_BAD_REQUEST "Parse Error" (Node's parser at the early end).
  it.each(['reset', 'half-close'] as const)(
    'by a client that leaves (%s): the upstream request is aborted, logged 499',
    async (how) => {
      const path = `/leave-${how}`;
      const lines = sluice.accessLines().length;
      const socket = net.connect(sluice.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        `PUT ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 150000\r\n\r\n${'x'.repeat(STREAMED)}`,
      );
      await until(() => (carrying(path)?.received ?? 0) > STREAMED);
      if (how === 'reset') socket.resetAndDestroy();
      else socket.end();
      await until(() => carrying(path)?.closed === true);
      expect(carrying(path)?.closed).toBe(true);
      const [line] = (await sluice.waitForAccessLines(lines + 1)).slice(lines);
      expect(line).toMatchObject({ status: 499, path });
      expect(line).not.toHaveProperty('error', 'SLUICE_E_CLIENT_BAD_REQUEST');
    },
  );
});

describe('an early answer to a streamed upload', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    // Answers as soon as the head is in (its body 300 ms later), keeps the connection open and
    // reads on.
    up = await rawUpstream(() => 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\n', {
      mode: 'early',
      keepOpen: true,
      tail: 'nope',
    });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '64mb' },
          routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('is relayed; once it is complete the rest of the body is not sent, and the connection is not reused', async () => {
    const size = 8 * 1024 * 1024;
    const { socket: client, text } = collecting(sluice.port);
    client.write(`PUT /early HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n${'x'.repeat(STREAMED)}`);
    const first = () => up.connections[0];
    // The target has answered whole (its body follows its head 300 ms later); then the client goes
    // on sending: none of that reaches the target.
    await until(() => text().includes('nope'));
    expect(text()).toMatch(/^HTTP\/1\.1 413 /);
    expect(text().endsWith('\r\n\r\nnope')).toBe(true);
    client.write('x'.repeat(size - STREAMED));
    await until(() => first()?.closed === true);
    expect(first()?.closed).toBe(true);
    expect(first()?.received).toBeLessThan(2 * 1024 * 1024);
    client.destroy();
    // The next request takes a new connection.
    const r = await rawRequest(sluice.port, 'GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(413);
    expect(up.connections).toHaveLength(2);
  });
});

describe('the rest of a streamed upload answered early', () => {
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await rawUpstream(
      () => 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\n',
      { mode: 'early', keepOpen: true, tail: 'nope' },
    );
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '64mb', request_timeout: '60s' },
          routes: [{ proxy: { url: `http://127.0.0.1:${up.port}` } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  // nginx reads and drops the rest of a body it no longer needs (lingering close). Left unread,
  // the body filled the socket buffers and the client waited in its write until request_timeout.
  it('lets the client finish sending the rest, dropped, and serves its next request on the connection', async () => {
    const size = 8 * 1024 * 1024;
    const { socket: client, text } = collecting(sluice.port);
    client.write(`PUT /early HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n${'x'.repeat(STREAMED)}`);
    await until(() => text().includes('nope'));
    const sent = client.write('x'.repeat(size - STREAMED));
    if (!sent) await new Promise((r) => client.once('drain', r));
    client.write('GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await until(() => text().split('HTTP/1.1 413').length === 3, 10_000);
    client.destroy();
    expect(text().split('HTTP/1.1 413')).toHaveLength(3);
  });

  it('closes the connection of a client that stops sending the rest, within seconds', async () => {
    const { socket: client, text } = collecting(sluice.port);
    const closed = new Promise<number>((resolve) => client.on('close', () => resolve(Date.now())));
    client.write(`PUT /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(STREAMED)}`);
    await until(() => text().includes('nope'));
    const answered = Date.now();
    // request_timeout is 60 s here: the 5 s bound on the unread rest closes it first.
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(0), 15_000))]);
    client.destroy();
    expect(at).toBeGreaterThan(0);
    expect(at - answered).toBeLessThan(15_000);
  }, 20_000);
});

describe('a target that answers while it reads the body', () => {
  it('gets the whole body, its answer relayed whole', async () => {
    // An echo: the answer's head goes out with the first bytes read, before the body has all come.
    const echo = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as net.AddressInfo).port;
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '64mb' },
          routes: [{ proxy: { url: `http://127.0.0.1:${port}` } }],
        },
      ],
    });
    try {
      const body = randomBytes(4 * 1024 * 1024);
      // In pieces, so the echo answers before the body is all sent.
      const { body: got } = await sendInPieces(`${sluice.url}/echo`, body, {
        method: 'POST',
        piece: 256 * 1024,
        pauseMs: 5,
      });
      expect(got.length).toBe(body.length);
      expect(createHash('sha256').update(got).digest('hex')).toBe(
        createHash('sha256').update(body).digest('hex'),
      );
    } finally {
      await sluice.close();
      await new Promise((r) => echo.close(r));
    }
  });
});

describe('a streamed upload that fails once sent', () => {
  let a: Awaited<ReturnType<typeof rawUpstream>>;
  let b: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    // Both reset the connection once body bytes arrive.
    a = await rawUpstream(() => '', { mode: 'reset' });
    b = await rawUpstream(() => '', { mode: 'reset' });
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'two' } }] }],
      upstreams: {
        two: {
          max_fails: 0,
          targets: [{ url: `http://127.0.0.1:${a.port}` }, { url: `http://127.0.0.1:${b.port}` }],
        },
      },
    });
  });

  afterAll(async () => {
    await sluice.close();
    await a.close();
    await b.close();
  });

  const requests = () => a.connections.length + b.connections.length;

  it('is not retried on another target, even for PUT; a buffered body is (control)', async () => {
    const streamed = await rawRequest(sluice.port, upload('/streamed', STREAMED), { waitMs: 5000 });
    expect(streamed.status).toBe(502);
    expect(requests()).toBe(1);
    const buffered = await rawRequest(sluice.port, upload('/buffered', BUFFERED), { waitMs: 5000 });
    expect(buffered.status).toBe(502);
    expect(requests()).toBe(3);
  });
});

describe('an HTTP/2 upload whose end comes after timeouts.read, to a silent target', () => {
  let pki: TestPki;
  let ca: Buffer;
  let up: Awaited<ReturnType<typeof rawUpstream>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    pki = makePki();
    const root = pki.ca('root');
    ca = readFileSync(root.cert);
    const leaf = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
    up = await rawUpstream(() => '', { mode: 'silent' });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          routes: [{ proxy: { url: `http://127.0.0.1:${up.port}`, timeouts: { read: '500ms' } } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await up?.close();
    pki?.remove();
  });

  // All of a Content-Length body is sent at once, its END_STREAM 1.2 s later: no write follows the
  // end, so the read timer had to start again by itself (it had run out while the client held back).
  it('is a 504 once timeouts.read has passed after the end', async () => {
    const client = http2.connect(`https://127.0.0.1:${sluice.port}`, { ca, servername: 'a.test' });
    client.on('error', () => undefined);
    try {
      const stream = client.request({
        ':method': 'PUT',
        ':path': '/held',
        'content-length': String(STREAMED),
      });
      const status = new Promise<number>((resolve) => {
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('close', () => resolve(0));
      });
      stream.on('error', () => undefined);
      stream.resume();
      stream.write(Buffer.alloc(STREAMED, 0x78));
      await new Promise((r) => setTimeout(r, 1200));
      const ended = Date.now();
      stream.end();
      const got = await Promise.race([status, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
      expect(got).toBe(504);
      expect(Date.now() - ended).toBeLessThan(10_000);
    } finally {
      client.destroy();
    }
  }, 20_000);
});
