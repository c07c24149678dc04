/**
 * After GOAWAY an HTTP/2 connection closes, whatever its client does: one whose header block
 * never ends (a stream nghttp2 has begun and Node never hands over) or that keeps its side of the
 * connection open is closed header_timeout after the GOAWAY.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/cli.js';
import { FRAME, type RawH2Session, rawH2Session } from '../helpers/h2-frames.js';
import { sleep, until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

/** Frame types and flags (RFC 9113 6). */
const SETTINGS = 0x4;
const ACK = 0x1;
const END_STREAM = 0x1;
/** Error codes (RFC 9113 7). */
const NO_ERROR = 0x0;

describe('closing an HTTP/2 connection after GOAWAY', () => {
  let sluice: TestSluice;
  let pki: TestPki;
  let tls: { cert: string; key: string };
  let ca: Buffer;
  /** A server whose keepalive_timeout is short, and one whose keepalive_timeout is long. */
  let shortPort: number;
  let longPort: number;

  const serverOn = (port: number, keepalive: string) => ({
    listen: `127.0.0.1:${port}`,
    http2: true,
    tls,
    limits: { keepalive_timeout: keepalive, header_timeout: '1s', request_timeout: '5s', send_timeout: '5s' },
    routes: [{ match: { path: '/ok' }, respond: { status: 200, body: 'ok\n' } }],
  });

  beforeAll(async () => {
    pki = makePki();
    const root = pki.ca('root');
    ca = readFileSync(root.cert);
    const leaf = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
    tls = { cert: leaf.cert, key: leaf.key };
    shortPort = await freePort();
    longPort = await freePort();
    sluice = await startSluice({ servers: [serverOn(shortPort, '1s'), serverOn(longPort, '60s')] });
  });

  afterAll(async () => {
    await sluice.close();
    pki.remove();
  });

  /** A raw client that has acknowledged the server's SETTINGS: a frame inside a header block is a connection error. */
  const connect = async (port: number, halfOpen = false) => {
    const h2 = await rawH2Session(port, ca, 'a.test', [], { halfOpen });
    await until(() => h2.frames.find((f) => f.type === SETTINGS && (f.flags & ACK) === 0), 'the SETTINGS');
    return h2;
  };
  const goaway = (h2: RawH2Session) => h2.frames.find((f) => f.type === FRAME.GOAWAY);
  const closedWithin = (h2: RawH2Session, ms: number) =>
    Promise.race([h2.closed, sleep(ms).then(() => Promise.reject(new Error('still open')))]);
  /** Every connection of the test is gone, on sluice's side too. */
  const noConnections = () =>
    until(() => (sluice.instance.connections() === 0 ? true : undefined), 'no connection left', 5000);

  // A HEADERS frame without END_HEADERS is a stream to nghttp2 but none yet to Node: the GOAWAY of
  // keepalive_timeout went, and session.close() waited for the rest of the block for ever (a
  // connection held past 150 s; 10 of them held max_connections: 10).
  it('closes a connection whose header block never ends', async () => {
    const h2 = await connect(shortPort);
    try {
      h2.headers(1, '/ok', END_STREAM);
      await closedWithin(h2, 5000);
      expect(goaway(h2)).toMatchObject({ errorCode: NO_ERROR });
      await noConnections();
    } finally {
      h2.destroy();
    }
  });

  // Node ends its side after GOAWAY and then waits for the client's end, which never came.
  it('closes a connection whose client keeps its side open after GOAWAY', async () => {
    const h2 = await connect(shortPort, true);
    try {
      await until(() => goaway(h2), 'GOAWAY', 5000);
      await noConnections();
    } finally {
      h2.destroy();
    }
  });

  it('keeps an idle connection open between requests for keepalive_timeout, past header_timeout', async () => {
    const h2 = await connect(longPort);
    try {
      h2.get(1, '/ok');
      await until(() => h2.frames.find((f) => f.stream === 1 && f.type === FRAME.HEADERS), 'the answer');
      await sleep(2500);
      h2.get(3, '/ok');
      await until(
        () => h2.frames.find((f) => f.stream === 3 && f.type === FRAME.HEADERS),
        'the second answer',
      );
      expect(goaway(h2)).toBeUndefined();
    } finally {
      h2.destroy();
    }
  });

  // Drain sent GOAWAY and waited for the header block until shutdown_timeout.
  it('does not hold a drain until shutdown_timeout for a header block that never ends', async () => {
    const draining = await startSluice({ servers: [serverOn(0, '60s')] });
    const h2 = await connect(draining.port);
    try {
      h2.headers(1, '/ok', END_STREAM);
      await sleep(200);
      const started = Date.now();
      await draining.instance.close(20_000);
      expect(Date.now() - started).toBeLessThan(6000);
      expect(goaway(h2)).toMatchObject({ errorCode: NO_ERROR });
    } finally {
      h2.destroy();
      await draining.close();
    }
  });
});
