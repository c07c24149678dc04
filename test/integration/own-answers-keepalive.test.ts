/**
 * Answers sluice gives itself (a respond route, a redirect, 404, 403) to a request that declares a
 * body keep the connection when that body costs little to drop, as nginx does: each request below
 * is followed on the same connection by a second one, which must be answered too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const H = 'Host: a.test\r\n';
const NEXT = `GET /healthz HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;

describe('keep-alive after answers sluice gives itself', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { match: { path: '/healthz' }, respond: { body: 'ok' } },
            { match: { path: '/old' }, redirect: { to: '/new', status: 301 } },
            { match: { path: '/private' }, access: [{ deny: 'all' }], proxy: { url: up.url } },
            { match: { path: '/app' }, proxy: { url: up.url } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it.each([
    ['Content-Length: 0', 'Content-Length: 0\r\n\r\n'],
    ['a small body sent whole', 'Content-Length: 2\r\n\r\nhi'],
    ['an empty chunked body', 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a small chunked body', 'Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'],
  ])('keeps the connection after a respond route answers a POST with %s', async (_name, rest) => {
    const r = await rawRequest(sluice.port, `POST /healthz HTTP/1.1\r\n${H}${rest}${NEXT}`);
    expect(r.text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(r.text.split('\r\n\r\n')[0]).not.toMatch(/connection: close/i);
  });

  it.each([
    ['a redirect', '/old', 301],
    ['a 404', '/nowhere', 404],
    ['a 403 (access denied)', '/private', 403],
  ])('keeps the connection after %s to a request with a body', async (_name, path, status) => {
    const r = await rawRequest(
      sluice.port,
      `POST ${path} HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nbody${NEXT}`,
    );
    expect(r.status).toBe(status);
    expect(r.text).toMatch(/HTTP\/1\.1 200 OK[\s\S]*ok$/);
    expect(up.seen).toHaveLength(0);
  });

  // Kept open for the whole request_timeout, after which Node wrote a 408 no request asked for.
  it('closes the connection when the rest of an unread body does not come within 5 s, with no second answer', async () => {
    const started = Date.now();
    const r = await rawRequest(sluice.port, `POST /private HTTP/1.1\r\n${H}Content-Length: 60000\r\n\r\nx`, {
      waitMs: 15_000,
    });
    expect(r.status).toBe(403);
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  }, 20_000);

  it('closes the connection when a Content-Length over 64 KiB is left unread', async () => {
    const r = await rawRequest(
      sluice.port,
      `POST /healthz HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n${'x'.repeat(100)}`,
    );
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/connection: close/i);
    expect(r.closed).toBe(true);
  });

  it('closes the connection once an unread chunked body passes 64 KiB, serving nothing after it', async () => {
    const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
    // The rest of the body comes after the answer, which Node no longer counts as in progress.
    const r = await rawRequest(
      sluice.port,
      [
        `POST /healthz HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n`,
        `${chunk.repeat(5)}0\r\n\r\nGET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
      ],
      { gapMs: 100 },
    );
    expect(r.status).toBe(200);
    expect(r.closed).toBe(true);
    expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    // Node parses the request after the body all the same; it is never served (a 404 here).
    expect(sluice.accessLines().filter((l) => l.path === '/after')).toEqual([]);
  });
});
