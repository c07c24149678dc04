/**
 * BEHAVIOUR.md section 5: ambiguous or malformed requests are answered 400 (or the listed 4xx),
 * the connection is closed, and the upstream never sees them.
 */
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BAD_REQUESTS, H } from '../helpers/hostile-requests.js';
import { rawRequest } from '../helpers/raw-http.js';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { echo, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('HTTP/1.1 strictness', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '1kb', max_header: '8kb', max_uri: '2kb', header_timeout: '1s' },
          routes: [{ proxy: { url: up.url } }],
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

  it('forwards a well-formed request (control)', async () => {
    const r = await rawRequest(
      sluice.port,
      `POST /ok HTTP/1.1\r\n${H}Content-Length: 2\r\nConnection: close\r\n\r\nhi`,
    );
    expect(r.status).toBe(200);
    expect(up.seen).toHaveLength(1);
  });

  it('forwards a Host with an empty port (RFC 3986 allows it, as nginx does) and one trailing dot', async () => {
    for (const host of ['a.test:', 'a.test.', 'A.Test.:80']) {
      const r = await rawRequest(
        sluice.port,
        `GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, host).toBe(200);
    }
    expect(up.seen).toHaveLength(3);
  });

  it.each(Object.entries(BAD_REQUESTS))(
    'refuses %s: 400, connection closed, nothing forwarded',
    async (_name, raw) => {
      const r = await rawRequest(sluice.port, raw);
      expect(r.status).toBe(400);
      expect(r.closed).toBe(true);
      expect(up.seen).toHaveLength(0);
    },
  );

  it('answers 413 for a Content-Length over max_body without reading the body', async () => {
    const r = await rawRequest(
      sluice.port,
      `POST / HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n${'x'.repeat(100)}`,
    );
    expect(r.status).toBe(413);
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it('answers 413 for a chunked body that grows over max_body', async () => {
    const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
    const r = await rawRequest(
      sluice.port,
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk}${chunk}0\r\n\r\n`,
    );
    expect(r.status).toBe(413);
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it('answers 414 for a request target over max_uri', async () => {
    const r = await rawRequest(
      sluice.port,
      `GET /${'a'.repeat(3000)} HTTP/1.1\r\n${H}\r\nGET /after HTTP/1.1\r\n${H}\r\n`,
    );
    expect(r.status).toBe(414);
    // Closed, as the other refusals: the request pipelined after it is not served.
    expect(r.closed).toBe(true);
    expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(up.seen).toHaveLength(0);
  });

  it('answers 414, not 431, for a request target longer than max_header itself, whole or in pieces', async () => {
    // Node counts the target into max_header (8kb here), so its limit comes before max_uri's check.
    const target = `/${'a'.repeat(9000)}`;
    for (const payload of [
      `GET ${target} HTTP/1.1\r\n${H}\r\n`,
      [
        `GET ${target.slice(0, 4000)}`,
        target.slice(4000, 7000),
        `${target.slice(7000)} HTTP/1.1\r\n${H}\r\n`,
      ],
      [`GET ${target}`, ` HTTP/1.1\r\n${H}\r\n`],
    ]) {
      const r = await rawRequest(sluice.port, payload, { gapMs: 50 });
      expect(r.status).toBe(414);
      expect(r.closed).toBe(true);
    }
    expect(up.seen).toHaveLength(0);
  });

  // Node stops on the space after the colon of the name that crossed max_header, as it stops on the
  // one after a long target: those heads were answered 414 URI Too Long.
  it('answers 431, not 414, for a head over max_header made of many short fields', async () => {
    const fields = (line: (i: number) => string) =>
      Array.from({ length: 1500 }, (_, i) => `${line(i)}\r\n`).join('');
    for (const many of [fields((i) => `X-H${i}: v`), fields((i) => `Cookie: a=b${i}`)]) {
      const r = await rawRequest(sluice.port, `GET /x HTTP/1.1\r\n${H}${many}\r\n`);
      expect(r.status).toBe(431);
      expect(r.closed).toBe(true);
    }
    expect(up.seen).toHaveLength(0);
  });

  it('answers 431 for a request head over max_header, and closes', async () => {
    const r = await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(9000)}\r\n\r\n`);
    expect(r.status).toBe(431);
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it('answers 408 and closes when the head is not complete within header_timeout (slowloris)', async () => {
    const started = Date.now();
    const r = await rawRequest(sluice.port, ['GET / HTTP/1.1\r\n', 'Host: a.test\r\n', 'X-Slow: 1\r\n'], {
      gapMs: 300,
      waitMs: 5000,
    });
    expect(r.status).toBe(408);
    expect(r.closed).toBe(true);
    // header_timeout is 1 s; Node checks it on a timer, so allow a generous margin.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(up.seen).toHaveLength(0);
  });

  it('keeps a pipelined second request separate from the first', async () => {
    const r = await rawRequest(
      sluice.port,
      `POST /one HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );
    expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(r.text.indexOf('"url":"/one"')).toBeLessThan(r.text.indexOf('"url":"/two"'));
    // One after the other, as nginx: the second is read once the first is answered.
    expect(up.seen.map((s) => [s.url, s.body.toString()])).toEqual([
      ['/one', 'abc'],
      ['/two', ''],
    ]);
  });

  it.each([
    ['a refused request (duplicate Host)', `GET /bad HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`],
    ['a bad path', `GET /%zz HTTP/1.1\r\n${H}\r\n`],
  ])('drops a request pipelined after %s: never forwarded, nothing left in flight', async (_name, first) => {
    const r = await rawRequest(
      sluice.port,
      `${first}POST /smuggled HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nevil`,
    );
    expect(r.status).toBe(400);
    expect(r.closed).toBe(true);
    expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await new Promise((res) => setTimeout(res, 100));
    expect(up.seen).toHaveLength(0);
    expect(sluice.instance.handles().inflight).toEqual([]);
  });

  it.each([
    ['Content-Length', 'Content-Length: 5\r\n\r\nhello'],
    ['chunked', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ])('serves an Upgrade: h2c request as plain HTTP/1.1 with its body (%s)', async (_framing, rest) => {
    const r = await rawRequest(
      sluice.port,
      `POST /h2c HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings, X-Drop\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Drop: 1\r\n${rest}` +
        `GET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );
    expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(up.seen.map((s) => [s.url, s.body.toString()])).toEqual([
      ['/h2c', 'hello'],
      ['/next', ''],
    ]);
    const headers = up.seen[0]!.headers;
    expect(headers.upgrade).toBeUndefined();
    expect(headers['http2-settings']).toBeUndefined();
    expect(headers['x-drop']).toBeUndefined();
    expect(sluice.instance.handles().inflight).toEqual([]);
  });

  it.each([
    ['Content-Length', 'Content-Length: 5\r\n\r\nhello'],
    ['chunked', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ])(
    'serves a WebSocket Upgrade request with a body as plain HTTP/1.1, body and all (%s)',
    async (_framing, rest) => {
      const r = await rawRequest(
        sluice.port,
        `GET /ws-body HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${rest}` +
          `GET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      );
      expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
      expect(up.seen.map((s) => [s.url, s.body.toString()])).toEqual([
        ['/ws-body', 'hello'],
        ['/next', ''],
      ]);
      expect(up.seen[0]!.headers.upgrade).toBeUndefined();
      expect(sluice.instance.handles().inflight).toEqual([]);
    },
  );

  it('serves an Upgrade: h2c request pipelined behind one still being answered', async () => {
    const r = await rawRequest(
      sluice.port,
      `GET /first HTTP/1.1\r\n${H}\r\nPOST /h2c-second HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\nhi`,
    );
    expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(up.seen.map((s) => [s.url, s.body.toString()])).toEqual([
      ['/first', ''],
      ['/h2c-second', 'hi'],
    ]);
    expect(sluice.instance.handles().inflight).toEqual([]);
  });

  it('takes h2c out of an Upgrade that offers other protocols beside it, and upgrades to those', async () => {
    const r = await rawRequest(
      sluice.port,
      `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    // The upstream is no WebSocket server: its 200 is relayed and the connection closes, as after
    // any upgrade that was not taken.
    expect(r.status).toBe(200);
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(1);
    expect(up.seen[0]!.headers.upgrade).toBe('websocket');
    expect(up.seen[0]!.headers['http2-settings']).toBeUndefined();
  });

  it('answers a WebSocket upgrade pipelined behind a request still being answered, in order', async () => {
    const r = await rawRequest(
      sluice.port,
      `GET /first HTTP/1.1\r\n${H}\r\nGET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    // The upstream is no WebSocket server: it answers 200, relayed, and the connection closes.
    expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(r.closed).toBe(true);
    expect(up.seen.map((s) => s.url)).toEqual(['/first', '/ws']);
    await new Promise((res) => setTimeout(res, 300));
    expect(sluice.instance.handles().inflight).toEqual([]);
  });

  it('answers a request sent with Connection: close despite bytes after it', async () => {
    const r = await rawRequest(
      sluice.port,
      `GET /closing HTTP/1.1\r\n${H}Connection: close\r\n\r\nGARBAGE\r\n`,
    );
    expect(r.status).toBe(200);
    expect(r.closed).toBe(true);
    expect(up.seen.map((s) => s.url)).toEqual(['/closing']);
  });

  it('answers TRACE 405 and closes, never forwarding it (cross-site tracing), as nginx', async () => {
    const before = sluice.accessLines().length;
    const r = await rawRequest(
      sluice.port,
      `TRACE /echo HTTP/1.1\r\n${H}Cookie: session=secret\r\n\r\nGET /after HTTP/1.1\r\n${H}\r\n`,
    );
    expect(r.status).toBe(405);
    expect(r.text).toMatch(/content-type: application\/problem\+json/i);
    expect(r.text).toContain('"code":"SLUICE_E_CLIENT_METHOD_NOT_ALLOWED"');
    expect(r.text).not.toContain('secret');
    expect(r.closed).toBe(true);
    expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(up.seen).toHaveLength(0);
    const lines = await sluice.waitForAccessLines(before + 1);
    expect(lines.at(-1)).toMatchObject({ method: 'TRACE', status: 405 });
  });
});

describe('answers given before a request exists', () => {
  // They went to the client with no access line, no metric and no ban strike: a client sending
  // malformed requests was never banned for them.
  it('are logged, counted and count towards a ban on the default server', async () => {
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_header: '4kb' },
          ban: { statuses: [400, 431], max: 3, window: '1m', duration: '1m' },
          routes: [{ respond: { body: 'ok\n' } }],
        },
      ],
    });
    try {
      const bad = await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}Bad Header\r\n\r\n`);
      expect(bad.status).toBe(400);
      const big = await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(8000)}\r\n\r\n`);
      expect(big.status).toBe(431);
      const connect = await rawRequest(
        sluice.port,
        'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n',
      );
      expect(connect.status).toBe(400);
      const lines = await sluice.waitForAccessLines(3);
      expect(lines.map((l) => [l.method, l.status, l.error])).toEqual([
        ['-', 400, 'SLUICE_E_CLIENT_BAD_REQUEST'],
        ['-', 431, 'SLUICE_E_CLIENT_HEADERS_TOO_LARGE'],
        ['CONNECT', 400, 'SLUICE_E_CLIENT_BAD_REQUEST'],
      ]);
      // Counted with the method their lines have (`-` was OTHER, which is for unknown methods).
      const counts = (await sluice.instance.registry.metrics())
        .split('\n')
        .filter((l) => l.startsWith('sluice_http_requests_total{'))
        .map((l) => l.replace(/^.*method="([^"]*)",code="(\d+)"\} (\d+)$/, '$1 $2 $3'));
      expect(counts).toEqual(['- 400 1', '- 431 1', 'CONNECT 400 1']);
      // Three strikes: banned.
      const after = await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      expect(after.status).toBe(403);
      expect(after.text).toContain('SLUICE_E_AUTH_BANNED');
    } finally {
      await sluice.close();
    }
  });
  // They went out without `x-sluice-error-id` or a `request_id` in the body, while their access
  // line had a request_id: nothing tied the answer a client reports to its line.
  it('carry the request id of their access line, as x-sluice-error-id and in the body', async () => {
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_header: '4kb', header_timeout: '1s', max_connections: 1 },
          routes: [{ respond: { body: 'ok\n' } }],
        },
      ],
    });
    try {
      const answers = [
        await rawRequest(sluice.port, 'GARBAGE\r\n\r\n'),
        await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(8000)}\r\n\r\n`),
        await rawRequest(sluice.port, 'GET / HTTP/1.1\r\n', { waitMs: 3000 }),
        await rawRequest(sluice.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n'),
      ];
      // A second connection while one is open: over max_connections.
      const held = net.connect(sluice.port, '127.0.0.1');
      held.on('error', () => undefined);
      await new Promise((r) => held.once('connect', r));
      await until(() => (sluice.instance.connections() === 1 ? true : undefined), 'the held connection');
      answers.push(await rawRequest(sluice.port, ''));
      held.destroy();
      expect(answers.map((a) => a.status)).toEqual([400, 431, 408, 400, 503]);
      const lines = await sluice.waitForAccessLines(answers.length);
      expect(lines.map((l) => l.status)).toEqual([400, 431, 408, 400, 503]);
      for (const [i, a] of answers.entries()) {
        const id = lines[i]!.request_id as string;
        expect(id).toMatch(/^[0-9a-f]{24}$/);
        const [head, body] = a.text.split('\r\n\r\n') as [string, string];
        expect(head).toContain(`\r\nx-sluice-error-id: ${id}\r\n`);
        expect(head).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/);
        const doc = JSON.parse(body) as Record<string, unknown>;
        expect(doc).toMatchObject({ status: a.status, code: lines[i]!.error, request_id: id });
        // The length said is the body sent, and the line counts it.
        expect(head).toContain(`\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`);
        expect(lines[i]!.bytes_out).toBe(Buffer.byteLength(body));
      }
    } finally {
      await sluice.close();
    }
  });
  it('have a trace id, as every access line has (CONTRACT section 7)', async () => {
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_header: '4kb', max_uri: '1kb', header_timeout: '1s' },
          routes: [{ respond: { body: 'ok\n' } }],
        },
      ],
    });
    try {
      const requests = [
        `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(8000)}\r\n\r\n`,
        'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n',
        `GET / HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`,
        `GET /${'a'.repeat(2000)} HTTP/1.1\r\n${H}\r\n`,
        'GET / HTTP/1.1\r\n',
      ];
      for (const raw of requests) await rawRequest(sluice.port, raw, { waitMs: 3000 });
      const lines = await sluice.waitForAccessLines(requests.length);
      expect(lines.map((l) => l.status)).toEqual([400, 431, 400, 400, 414, 408]);
      const ids = lines.map((l) => l.trace_id);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await sluice.close();
    }
  });
});

describe('a request refused after its head was read', () => {
  // llhttp refuses a Transfer-Encoding not ending in chunked only after the head, which sluice
  // has answered 400 by then: the parser's error was refused again, so one request had two access
  // lines (`GET /a` and `-`), two counts and two ban strikes.
  it('is logged, counted and struck once, as is bad framing in a body dropped after an early answer', async () => {
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          ban: { statuses: [400], max: 4, window: '1m', duration: '1m' },
          routes: [{ respond: { body: 'ok\n' } }],
        },
      ],
    });
    try {
      for (const raw of [
        'GET /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n',
        'GET /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n',
        ['POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 'xxxx', 'yyyy'],
      ]) {
        const r = await rawRequest(sluice.port, raw, { gapMs: 50 });
        expect(r.status).toBe(400);
        expect(r.closed).toBe(true);
        expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
      }
      // Answered 200 before its body was read, whose chunk size is bad: one answer, one line.
      const early = await rawRequest(
        sluice.port,
        [`POST /d HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, 'zz\r\nx\r\n0\r\n\r\n'],
        { gapMs: 50 },
      );
      expect(early.status).toBe(200);
      expect(early.closed).toBe(true);
      expect(early.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
      // Three strikes of four: not banned (six were counted before).
      const after = await rawRequest(sluice.port, `GET /e HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      expect(after.status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      expect(sluice.accessLines().map((l) => [l.method, l.path, l.status])).toEqual([
        ['GET', '/a', 400],
        ['GET', '/b', 400],
        ['POST', '/c', 400],
        ['POST', '/d', 200],
        ['GET', '/e', 200],
      ]);
      const counts = (await sluice.instance.registry.metrics())
        .split('\n')
        .filter((l) => l.startsWith('sluice_http_requests_total{'));
      expect(counts).toEqual([
        expect.stringMatching(/method="GET",code="400"} 2$/),
        expect.stringMatching(/method="POST",code="400"} 1$/),
        expect.stringMatching(/method="POST",code="200"} 1$/),
        expect.stringMatching(/method="GET",code="200"} 1$/),
      ]);
    } finally {
      await sluice.close();
    }
  });
});

describe('HTTP/1.1 without Host', () => {
  // Node's requireHostHeader answered it with a bare 400 of its own (an empty chunked body): no
  // problem document, no error id, no access line, no count and no ban strike.
  it("is sluice's 400: problem document, error id, access line, count and ban strike; HTTP/1.0 may omit it", async () => {
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          ban: { statuses: [400], max: 2, window: '1m', duration: '1m' },
          routes: [{ respond: { body: 'ok\n' } }],
        },
      ],
    });
    try {
      const old = await rawRequest(sluice.port, 'GET /old HTTP/1.0\r\n\r\n');
      expect(old.status).toBe(200);
      const r = await rawRequest(sluice.port, 'GET /api/x HTTP/1.1\r\n\r\n');
      expect(r.status).toBe(400);
      expect(r.closed).toBe(true);
      expect(r.text).toMatch(/content-type: application\/problem\+json/i);
      expect(r.text).toContain('"code":"SLUICE_E_CLIENT_BAD_REQUEST"');
      const id = /x-sluice-error-id: (\w+)/i.exec(r.text)?.[1];
      expect(id).toBeDefined();
      const lines = await sluice.waitForAccessLines(2);
      expect(lines[1]).toMatchObject({
        method: 'GET',
        path: '/api/x',
        status: 400,
        request_id: id,
        error: 'SLUICE_E_CLIENT_BAD_REQUEST',
        error_message: 'refused request head: host_missing',
      });
      expect(await sluice.instance.registry.metrics()).toMatch(
        /sluice_http_requests_total\{server="[^"]+",route="",method="GET",code="400"\} 1\n/,
      );
      // The second strike bans.
      await rawRequest(sluice.port, 'GET /again HTTP/1.1\r\n\r\n');
      const after = await rawRequest(sluice.port, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      expect(after.status).toBe(403);
    } finally {
      await sluice.close();
    }
  });
});

describe('a request Node refuses, pipelined behind one being answered', () => {
  // The parser's error was taken for the request before it, which may already have run at its
  // target: that request was answered 400 (its body said "not forwarded") and logged 400, and the
  // target's answer was thrown away. The refused request is the later one, refused in its turn.
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream((req, res, body) => {
      if (req.url === '/stream') {
        // The head and part of the body at once, the rest 600 ms later.
        res.writeHead(200, { 'content-length': '4' });
        res.write('ab');
        setTimeout(() => res.end('cd'), 600);
        return;
      }
      const delay = req.url === '/slow' ? 400 : 0;
      setTimeout(() => echo(req, res, body), delay);
    });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_header: '8kb' },
          routes: [{ match: { path: '/respond' }, respond: { body: 'resp\n' } }, { proxy: { url: up.url } }],
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

  /** Statuses of the answers in `text`, in order. */
  const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);

  it.each([
    [
      'a bad request line in the segment of a POST and its body',
      `POST /a HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc\x01\x02garbage\r\n\r\n`,
      ['/a'],
      ['POST', '/a', 400],
    ],
    [
      'two Content-Length, sent while a POST is at a slow target (and more bytes after them)',
      [
        `POST /slow HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`,
        `GET /b HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
        `GET /c HTTP/1.1\r\n${H}\r\n`,
      ],
      ['/slow'],
      ['POST', '/slow', 400],
    ],
    [
      'a head over max_header behind a GET',
      `GET /a HTTP/1.1\r\n${H}\r\nGET /b HTTP/1.1\r\n${H}X-Big: ${'x'.repeat(9000)}\r\n\r\n`,
      ['/a'],
      ['GET', '/a', 431],
    ],
  ])(
    '%s: the first gets its answer, then the refusal, then the connection closes',
    async (_name, raw, seen, first) => {
      const before = sluice.accessLines().length;
      const r = await rawRequest(sluice.port, raw, { gapMs: 100, waitMs: 3000 });
      const refusal = first[2] as number;
      expect(statuses(r.text)).toEqual(['200', String(refusal)]);
      expect(r.text).toContain(`"url":"${first[1]}"`);
      expect(r.closed).toBe(true);
      expect(up.seen.map((s) => s.url)).toEqual(seen);
      const lines = (await sluice.waitForAccessLines(before + 2)).slice(before);
      await new Promise((res) => setTimeout(res, 100));
      expect(sluice.accessLines()).toHaveLength(before + 2);
      expect(lines.map((l) => [l.method, l.path, l.status])).toEqual([
        [first[0], first[1], 200],
        ['-', '', refusal],
      ]);
      expect(lines[0]!.error).toBeUndefined();
      expect(sluice.instance.handles().inflight).toEqual([]);
    },
  );

  /**
   * Sends `raw` on one connection: the statuses answered, whether it closed, and the access lines
   * written meanwhile (one per answer is waited for, then 100 ms more for any extra one).
   */
  const pipelined = async (raw: string | readonly string[], gapMs = 0) => {
    const before = sluice.accessLines().length;
    const r = await rawRequest(sluice.port, raw, { gapMs, waitMs: 5000 });
    const answered = statuses(r.text);
    await sluice.waitForAccessLines(before + answered.length);
    await new Promise((res) => setTimeout(res, 100));
    const lines = sluice.accessLines().slice(before);
    return { ...r, answered, lines, logged: lines.map((l) => [l.method, l.path, l.status]) };
  };
  const chunked = (path: string, body: string) =>
    `POST ${path} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${body}`;
  const faults = [
    ['a chunk size that is no hex number', 'zz\r\n\r\n'],
    ['a chunk size with 0x', '0xf\r\n\r\n'],
    ['a chunk size with +', '+f\r\n\r\n'],
    ['a control character in a chunk extension', '1;\x01\r\nx\r\n0\r\n\r\n'],
    ['a trailer line without a colon', '0\r\nno-colon\r\n\r\n'],
  ] as const;

  // The error came while the request waited its turn (its head read, its body not): the connection
  // closed after the answer before it, and that request had no answer, no access line and no count.
  it.each(faults.flatMap(([fault, body]) => ['/a', '/slow'].map((first) => [fault, first, body] as const)))(
    'answers a POST with %s, pipelined behind GET %s, 400 in its turn with its own access line',
    async (_fault, first, body) => {
      const r = await pipelined(`GET ${first} HTTP/1.1\r\n${H}\r\n${chunked('/b', body)}`);
      expect(r.answered).toEqual(['200', '400']);
      expect(r.closed).toBe(true);
      expect(up.seen.map((s) => s.url)).toEqual([first]);
      expect(r.logged).toEqual([
        ['GET', first, 200],
        ['POST', '/b', 400],
      ]);
      expect(r.lines[1]!.error).toBe('SLUICE_E_CLIENT_BAD_REQUEST');
      expect(r.text).toContain(`"request_id":"${r.lines[1]!.request_id}"`);
      expect(sluice.instance.handles().inflight).toEqual([]);
    },
  );

  it('answers a body that turns bad while it waits behind two requests, in its turn, and counts it', async () => {
    const posts400 = async () =>
      Number(
        /sluice_http_requests_total\{server="[^"]+",route="[^"]*",method="POST",code="400"\} (\d+)\n/.exec(
          await sluice.instance.registry.metrics(),
        )?.[1] ?? 0,
      );
    const counted = await posts400();
    const r = await pipelined(
      [
        `GET /slow HTTP/1.1\r\n${H}\r\nGET /c HTTP/1.1\r\n${H}\r\n${chunked('/count', '3\r\nabc\r\n')}`,
        'zz\r\n\r\n',
      ],
      100,
    );
    expect(r.answered).toEqual(['200', '200', '400']);
    expect(r.closed).toBe(true);
    expect(up.seen.map((s) => s.url)).toEqual(['/slow', '/c']);
    expect(r.logged).toEqual([
      ['GET', '/slow', 200],
      ['GET', '/c', 200],
      ['POST', '/count', 400],
    ]);
    expect(await posts400()).toBe(counted + 1);
  });

  // With the streamed answer's head out, Node kept the connection for the valid request read behind
  // it (dropped with the refusal): nothing answered that one, and nothing closed the connection.
  // Then the valid request was dropped with the refusal: it is served in its turn, and the refusal
  // after it.
  it('serves a valid request waiting behind an answer whose head was out, then refuses the next', async () => {
    const r = await pipelined(
      [`GET /stream HTTP/1.1\r\n${H}\r\nGET /b HTTP/1.1\r\n${H}\r\n`, 'XX YY\r\n\r\n'],
      200,
    );
    expect(r.answered).toEqual(['200', '200', '400']);
    expect(r.text).toContain('\r\n\r\nabcdHTTP/1.1 200');
    expect(r.closed).toBe(true);
    expect(up.seen.map((s) => s.url)).toEqual(['/stream', '/b']);
    expect(r.logged).toEqual([
      ['GET', '/stream', 200],
      ['GET', '/b', 200],
      ['-', '', 400],
    ]);
  });

  // The connection closed after the answer in progress, and the valid requests waiting behind it
  // were dropped unanswered with the unreadable one.
  it.each([
    ['a bad request line', 'XX YY\r\n\r\n'],
    ['two Content-Length', `POST /e HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`],
  ])('serves the requests waiting before %s, each in its turn, then refuses it', async (_name, bad) => {
    const r = await pipelined(
      `GET /slow HTTP/1.1\r\n${H}\r\nGET /c HTTP/1.1\r\n${H}\r\nGET /d HTTP/1.1\r\n${H}\r\n${bad}`,
    );
    expect(r.answered).toEqual(['200', '200', '200', '400']);
    expect(r.closed).toBe(true);
    expect(up.seen.map((s) => s.url)).toEqual(['/slow', '/c', '/d']);
    expect(r.logged).toEqual([
      ['GET', '/slow', 200],
      ['GET', '/c', 200],
      ['GET', '/d', 200],
      ['-', '', 400],
    ]);
    expect(sluice.instance.handles().inflight).toEqual([]);
  });

  it('answers one behind an answer sluice gave itself (a respond route), after that answer', async () => {
    const before = sluice.accessLines().length;
    const r = await rawRequest(sluice.port, `GET /respond HTTP/1.1\r\n${H}\r\nXX YY\r\n\r\n`);
    // The 200 is still going out when the parser refuses what follows: the 400 waits for it. It
    // was dropped (the connection closed under the 200) and yet logged and counted.
    expect(statuses(r.text)).toEqual(['200', '400']);
    expect(r.text).toContain('resp\n');
    expect(r.closed).toBe(true);
    await sluice.waitForAccessLines(before + 2);
    await new Promise((res) => setTimeout(res, 100));
    expect(
      sluice
        .accessLines()
        .slice(before)
        .map((l) => [l.method, l.path, l.status]),
    ).toEqual([
      ['GET', '/respond', 200],
      ['-', '', 400],
    ]);
    expect(up.seen).toHaveLength(0);
  });
});
