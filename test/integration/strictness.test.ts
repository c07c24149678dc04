/**
 * BEHAVIOUR.md section 5: ambiguous or malformed requests are answered 400 (or the listed 4xx),
 * the connection is closed, and the upstream never sees them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const H = 'Host: a.test\r\n';

/** Requests that must be refused with 400 before anything is forwarded. */
const BAD_REQUESTS: Record<string, string> = {
  'Content-Length with Transfer-Encoding (CL.TE)': `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding with Content-Length (TE.CL)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
  'two equal Content-Length headers': `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
  'two different Content-Length headers': `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx`,
  'a Content-Length list': `POST / HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\nx`,
  'a signed Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`,
  'a hexadecimal Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: 0x1\r\n\r\nx`,
  'Transfer-Encoding: gzip (final coding not chunked)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nx`,
  'Transfer-Encoding: chunked, gzip': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding: xchunked (obfuscated)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
  'two Transfer-Encoding headers (TE.TE)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
  'space before the colon of Transfer-Encoding': `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding on HTTP/1.0': `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'a bad chunk size': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n`,
  'a control character in a chunk extension': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;\x01\r\nx\r\n0\r\n\r\n`,
  'obs-fold (a header line starting with a space)': `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`,
  'whitespace between a header name and the colon': `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`,
  'a header name outside tchar': `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`,
  'an empty header name': `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`,
  'NUL in a header value': `GET / HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`,
  'a bare CR in a header value': `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`,
  'bare LF line endings': 'GET / HTTP/1.1\nHost: a.test\n\n',
  'an absolute-form request target': `GET http://evil.test/x HTTP/1.1\r\n${H}\r\n`,
  'an asterisk-form request target': `OPTIONS * HTTP/1.1\r\n${H}\r\n`,
  'CONNECT on a gateway listener': 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n',
  'a missing Host on HTTP/1.1': 'GET / HTTP/1.1\r\n\r\n',
  'two Host headers': `GET / HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`,
  'a Host with a slash': 'GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n',
  'a Host with an at sign': 'GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n',
  'HTTP/0.9': 'GET /\r\n\r\n',
  'HTTP/1.2': `GET / HTTP/1.2\r\n${H}\r\n`,
  'a space inside the path': `GET /a b HTTP/1.1\r\n${H}\r\n`,
  'a control character in the path': `GET /a\x01b HTTP/1.1\r\n${H}\r\n`,
  'an invalid method token': `G(T / HTTP/1.1\r\n${H}\r\n`,
  'a bad percent escape in the path': `GET /a%zz HTTP/1.1\r\n${H}\r\n`,
  'a path climbing above the root': `GET /a/../../etc/passwd HTTP/1.1\r\n${H}\r\n`,
};

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
    const r = await rawRequest(sluice.port, `GET /${'a'.repeat(3000)} HTTP/1.1\r\n${H}\r\n`, { waitMs: 300 });
    expect(r.status).toBe(414);
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
    // Answers come back in request order, whatever order the upstream saw them in.
    expect(r.text.indexOf('"url":"/one"')).toBeLessThan(r.text.indexOf('"url":"/two"'));
    expect(up.seen.map((s) => [s.url, s.body.toString()]).sort()).toEqual([
      ['/one', 'abc'],
      ['/two', ''],
    ]);
  });
});
