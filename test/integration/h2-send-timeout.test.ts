/**
 * send_timeout over HTTP/2, per stream: a stream whose client keeps its flow-control window shut
 * (the stream's or the connection's) is reset and its upstream request cancelled; a client that
 * reads slowly but steadily keeps its stream.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/cli.js';
import {
  FRAME,
  type RawH2Session,
  rawH2Session,
  SETTINGS_INITIAL_WINDOW_SIZE,
} from '../helpers/h2-frames.js';
import { sleep, until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const NGHTTP2_CANCEL = 0x8;

describe('send_timeout over HTTP/2', () => {
  let up: TestUpstream;
  let sluice: TestSluice;
  let pki: TestPki;
  let ca: Buffer;
  let leaf: CertFiles;
  /** Paths whose upstream answer was closed before it was whole. */
  const upstreamClosed: string[] = [];

  beforeAll(async () => {
    // 256 MB, written as sluice takes it: far more than any buffer on the way holds.
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/small/')) {
        res.writeHead(200, { 'content-length': '2' }).end('ok');
        return;
      }
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 4096;
      res.writeHead(200, { 'content-length': String(chunk.length * left) });
      res.once('close', () => {
        if (left > 0) upstreamClosed.push(req.url ?? '');
      });
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    pki = makePki();
    const root = pki.ca('root');
    ca = readFileSync(root.cert);
    leaf = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
    sluice = await startSluice({
      servers: [
        {
          listen: `127.0.0.1:${await freePort()}`,
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          limits: { send_timeout: '1s', keepalive_timeout: '1s' },
          routes: [
            { match: { path_prefix: '/ok/' }, respond: { status: 200, body: 'ok\n' } },
            { proxy: { url: up.url } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
    pki.remove();
  });

  const resets = (h2: RawH2Session, id: number) =>
    h2.frames.filter((f) => f.type === FRAME.RST_STREAM && f.stream === id);
  const lineOf = (path: string) =>
    until(() => sluice.accessLines().find((l) => l.path === path), `the access line of ${path}`, 10_000);

  // A client that advertised a window of 0 and never opened it held its streams, and an upstream
  // connection each, for as long as it stayed connected, past the GOAWAY of keepalive_timeout.
  it('resets streams whose window stays shut, cancels their upstream requests, then closes the connection', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    const started = Date.now();
    h2.get(1, '/big/shut-1');
    h2.get(3, '/big/shut-3');
    try {
      await until(() => (resets(h2, 1).length > 0 && resets(h2, 3).length > 0) || undefined, 'two resets');
      // send_timeout is 1 s, checked every second.
      expect(Date.now() - started).toBeLessThan(5000);
      // No longer served (RFC 9113 7), not a failure: CANCEL, as for a window shut to a stopped upload.
      expect(resets(h2, 1)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(resets(h2, 3)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      for (const path of ['/big/shut-1', '/big/shut-3']) {
        // Logged with the status the client was sent, why it was cut, and the none of it it got.
        expect(await lineOf(path)).toMatchObject({
          status: 200,
          bytes_out: 0,
          error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
        });
        await until(
          () => upstreamClosed.includes(path) || undefined,
          `the upstream request of ${path} closed`,
        );
      }
      // keepalive_timeout sent GOAWAY; with its streams gone, the connection closes.
      await until(() => h2.frames.some((f) => f.type === FRAME.GOAWAY) || undefined, 'a GOAWAY');
      // Open streams, held by flow control, are left to send_timeout: keepalive_timeout runs only
      // once none is open, so its GOAWAY comes after both resets.
      const goaway = h2.frames.findIndex((f) => f.type === FRAME.GOAWAY);
      for (const id of [1, 3]) expect(goaway).toBeGreaterThan(h2.frames.indexOf(resets(h2, id)[0]!));
      await Promise.race([h2.closed, sleep(5000).then(() => Promise.reject(new Error('still open')))]);
    } finally {
      h2.destroy();
    }
  });

  // The stream's window is wide open, the connection's never grows past its first 64 KB.
  it("resets a stream held back by the connection's window", async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24]]);
    const started = Date.now();
    h2.get(1, '/big/connection-window');
    try {
      await until(() => resets(h2, 1)[0], 'a reset', 10_000);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(resets(h2, 1)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(h2.dataBytes(1)).toBe(65_535);
      expect(await lineOf('/big/connection-window')).toMatchObject({
        status: 200,
        error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
      });
      await until(
        () => upstreamClosed.includes('/big/connection-window') || undefined,
        'the upstream closed',
      );
    } finally {
      h2.destroy();
    }
  });

  // A small answer fits whole in Node's stream buffer and was logged at once as a clean 200 with
  // its bytes, though its window stayed shut and the client got none of it.
  it('logs a small answer held back by a shut window as not sent', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.get(1, '/ok/shut');
    h2.get(3, '/small/shut');
    try {
      await until(() => (resets(h2, 1).length > 0 && resets(h2, 3).length > 0) || undefined, 'two resets');
      expect(resets(h2, 1)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(resets(h2, 3)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(h2.dataBytes(1) + h2.dataBytes(3)).toBe(0);
      for (const path of ['/ok/shut', '/small/shut']) {
        expect(await lineOf(path)).toMatchObject({
          status: 200,
          bytes_out: 0,
          error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
        });
      }
    } finally {
      h2.destroy();
    }
  });

  // The stream's own window is open; the connection's was used up by the download before it.
  it("logs a small answer held back by the connection's window as not sent", async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24]]);
    h2.get(1, '/big/before-ok');
    try {
      await until(() => h2.dataBytes(1) === 65_535 || undefined, 'the connection window used up');
      h2.get(3, '/ok/connection-window');
      await until(() => resets(h2, 3)[0], 'a reset', 10_000);
      expect(resets(h2, 3)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(h2.dataBytes(3)).toBe(0);
      expect(await lineOf('/ok/connection-window')).toMatchObject({
        status: 200,
        bytes_out: 0,
        error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
      });
    } finally {
      h2.destroy();
    }
  });

  const headersOf = (h2: RawH2Session, id: number) =>
    until(() => h2.frames.find((f) => f.type === FRAME.HEADERS && f.stream === id), `the HEADERS of ${id}`);

  it('logs a small answer once its stream has sent it', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.get(1, '/ok/late');
    try {
      await headersOf(h2, 1);
      // Whole on sluice's side, none of it sent: not logged as an answer the client got.
      expect(sluice.accessLines().find((l) => l.path === '/ok/late')).toBeUndefined();
      h2.windowUpdate(1, 1024);
      await until(() => h2.dataBytes(1) === 3 || undefined, 'the body');
      expect(await lineOf('/ok/late')).toMatchObject({ status: 200, bytes_out: 3 });
      expect((await lineOf('/ok/late')).error).toBeUndefined();
    } finally {
      h2.destroy();
    }
  });

  it('logs a small answer whose client reset its stream before it was sent as a client that left', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.get(1, '/ok/reset');
    try {
      await headersOf(h2, 1);
      h2.reset(1, NGHTTP2_CANCEL);
      expect(await lineOf('/ok/reset')).toMatchObject({ status: 499, bytes_out: 0 });
    } finally {
      h2.destroy();
    }
  });

  // The stream and the connection are open wide, but the client reads nothing: what is sent backs
  // up in the kernel, and then not even the reset can leave.
  it('cuts a stream whose client reads nothing of the connection', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0x7fffffff]]);
    h2.windowUpdate(0, 0x7fffffff - 65_535);
    h2.get(1, '/big/unread');
    await until(() => h2.dataBytes(1) > 0 || undefined, 'the first DATA');
    h2.reading(false);
    try {
      expect(await lineOf('/big/unread')).toMatchObject({
        status: 200,
        error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
      });
      await until(() => upstreamClosed.includes('/big/unread') || undefined, 'the upstream closed');
      // What the kernel holds is read, then the connection ends (keepalive_timeout closed it).
      h2.reading(true);
      await Promise.race([h2.closed, sleep(5000).then(() => Promise.reject(new Error('still open')))]);
    } finally {
      h2.destroy();
    }
  });

  // nginx's send_timeout is between two writes, not for the whole answer: a download far slower
  // than its upstream, that goes on, is not cut.
  it('keeps a stream whose client reads slowly but steadily', async () => {
    const h2 = await rawH2Session(sluice.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.get(1, '/big/slow');
    const read: number[] = [];
    try {
      // 64 KB every 500 ms (128 KB/s; 256 MB would take 34 min), for 5 send_timeouts.
      for (let i = 0; i < 10; i++) {
        h2.windowUpdate(1, 64 * 1024);
        h2.windowUpdate(0, 64 * 1024);
        await sleep(500);
        read.push(h2.dataBytes(1));
      }
      expect(resets(h2, 1)).toEqual([]);
      expect(upstreamClosed).not.toContain('/big/slow');
      // Still flowing at the end.
      expect(read[9]!).toBeGreaterThan(read[7]!);
      expect(read[9]!).toBeGreaterThanOrEqual(8 * 64 * 1024);
    } finally {
      h2.destroy();
    }
    // The client left: logged as such, not as a send timeout.
    expect(await lineOf('/big/slow')).toMatchObject({ status: 499 });
    expect((await lineOf('/big/slow')).error).toBeUndefined();
  });

  /** A respond route on the limits' defaults (send_timeout 60 s). */
  const respondingWithDefaults = async () =>
    startSluice({
      servers: [
        {
          listen: `127.0.0.1:${await freePort()}`,
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          routes: [{ respond: { status: 200, body: 'ok\n' } }],
        },
      ],
    });

  // A stopped upload's answer has a second to leave, far less than send_timeout (60 s here): the
  // stream is then reset, and its answer, whole on sluice's side, was logged as sent.
  it('logs the answer of a stopped upload whose client kept its window shut as not sent', async () => {
    const other = await respondingWithDefaults();
    const h2 = await rawH2Session(other.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.postStarted(1, '/upload', 'abc');
    try {
      await until(() => resets(h2, 1)[0], 'a reset');
      expect(resets(h2, 1)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
      expect(h2.dataBytes(1)).toBe(0);
      const line = await until(() => other.accessLines().find((l) => l.path === '/upload'), 'the line');
      expect(line).toMatchObject({ status: 200, bytes_out: 0, error: 'SLUICE_E_CLIENT_SEND_TIMEOUT' });
    } finally {
      h2.destroy();
      await other.close();
    }
  });

  // The answer's line waits for its stream; the stop does not wait for it past shutdown_timeout.
  it('logs an answer not sent by shutdown_timeout as cut', async () => {
    const other = await respondingWithDefaults();
    const h2 = await rawH2Session(other.port, ca, 'a.test', [[SETTINGS_INITIAL_WINDOW_SIZE, 0]]);
    h2.get(1, '/held');
    try {
      await headersOf(h2, 1);
      await other.close();
      expect(other.accessLines().find((l) => l.path === '/held')).toMatchObject({
        status: 499,
        bytes_out: 0,
        error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
      });
      await until(() => resets(h2, 1)[0], 'a reset');
      expect(resets(h2, 1)[0]!.errorCode).toBe(NGHTTP2_CANCEL);
    } finally {
      h2.destroy();
    }
  });
});
