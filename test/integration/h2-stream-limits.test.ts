/**
 * What one HTTP/2 connection may start: max_requests_per_connection streams (then GOAWAY, as
 * nginx's keepalive_requests), and never more than 128 live exchanges, also when the client
 * resets each stream as soon as it opened it (Rapid Reset, CVE-2023-44487).
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame } from '../helpers/h2-frames.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let leaf: CertFiles;
let ca: Buffer;
/** max_requests_per_connection: MAX_REQUESTS. */
let limited: TestSluice;
/** No max_requests_per_connection. */
let unlimited: TestSluice;
/** An upstream counting the connections it holds open at once; answers /slow after 300 ms. */
let upstream: net.Server;
let open = 0;
let peak = 0;

const MAX_REQUESTS = 20;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  leaf = root.leaf('h.test', { dns: ['h.test'], usage: 'server' });
  ca = readFileSync(root.cert);
  upstream = net.createServer((socket) => {
    open++;
    peak = Math.max(peak, open);
    socket.on('error', () => undefined);
    socket.once('close', () => open--);
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const delay = head.startsWith('GET /slow') ? 300 : 0;
      head = '';
      setTimeout(() => {
        if (socket.writable) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
      }, delay);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  const server = (maxRequests: number) => ({
    listen: '127.0.0.1:0',
    http2: true,
    tls: { cert: leaf.cert, key: leaf.key },
    limits: { max_requests_per_connection: maxRequests },
    routes: [{ match: { path: '/fast' }, respond: { status: 200, body: 'fast\n' } }, { proxy: { url } }],
  });
  limited = await startSluice({ servers: [server(MAX_REQUESTS)] });
  unlimited = await startSluice({ servers: [server(0)] });
});

afterAll(async () => {
  await Promise.all([limited?.close(), unlimited?.close()]);
  upstream?.close();
  pki.remove();
});

function client(p: number): http2.ClientHttp2Session {
  const c = http2.connect(`https://127.0.0.1:${p}`, { ca, servername: 'h.test' });
  c.on('error', () => undefined);
  return c;
}

function get(c: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = c.request({ ':path': path });
    let status = 0;
    let body = '';
    s.on('response', (h) => {
      status = Number(h[':status']);
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      body += d;
    });
    s.on('end', () => resolve({ status, body }));
    s.on('error', reject);
  });
}

describe('max_requests_per_connection over HTTP/2', () => {
  it('sends GOAWAY once the last stream has started, and serves no stream past it', async () => {
    const c = client(limited.port);
    let goaway: { code: number; last: number; after: number } | null = null;
    let served = 0;
    c.on('goaway', (code, last) => {
      goaway = { code, last, after: served };
    });
    for (let i = 0; i < MAX_REQUESTS + 5; i++) {
      if (c.closed || c.destroyed || goaway !== null) break;
      const r = await get(c, '/fast');
      expect(r.status).toBe(200);
      served++;
    }
    expect(served).toBe(MAX_REQUESTS);
    expect(goaway).toEqual({ code: 0, last: 2 * MAX_REQUESTS - 1, after: expect.any(Number) });
    // No answer on this connection any more (Node 20 throws, Node 24 errs the stream).
    const answered = await new Promise<boolean>((resolve) => {
      try {
        const s = c.request({ ':path': '/fast' });
        s.on('response', () => resolve(true));
        s.on('error', () => resolve(false));
        s.on('close', () => resolve(false));
      } catch {
        resolve(false);
      }
    });
    expect(answered).toBe(false);
    c.destroy();
    // The next connection is served again.
    const next = client(limited.port);
    expect((await get(next, '/fast')).status).toBe(200);
    next.close();
  });

  it('lets the streams in flight at the last one finish', async () => {
    const c = client(limited.port);
    const answers = await Promise.all(Array.from({ length: MAX_REQUESTS }, () => get(c, '/slow')));
    expect(answers.map((a) => a.status)).toEqual(Array(MAX_REQUESTS).fill(200));
    c.destroy();
  });
});

describe('Rapid Reset (CVE-2023-44487)', () => {
  it('keeps a reset loop within 128 upstream connections and closes it with ENHANCE_YOUR_CALM', async () => {
    peak = 0;
    const socket = tls.connect({
      host: '127.0.0.1',
      port: unlimited.port,
      ca,
      servername: 'h.test',
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    let goawayCode = -1;
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        // The first GOAWAY says why (Node may send a second, NO_ERROR, as it closes).
        if (buf[3] === 0x7 && goawayCode === -1) goawayCode = buf.readUInt32BE(13);
        // SETTINGS without ACK: acknowledged.
        if (buf[3] === 0x4 && (buf[4]! & 1) === 0) socket.write(frame(0x4, 1, 0, Buffer.alloc(0)));
        buf = buf.subarray(9 + len);
      }
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))]),
    );
    const block = Buffer.concat([
      literal(':method', 'GET'),
      literal(':scheme', 'https'),
      literal(':path', '/x'),
      literal(':authority', 'h.test'),
    ]);
    const cancel = Buffer.from([0, 0, 0, 8]);
    let id = 1;
    let done = false;
    void closed.then(() => {
      done = true;
    });
    const started = Date.now();
    // HEADERS (END_STREAM | END_HEADERS) then RST_STREAM(CANCEL), 100 streams a write.
    while (!done && Date.now() - started < 5000 && id < 2 ** 30) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 100; i++, id += 2)
        frames.push(frame(0x1, 0x5, id, block), frame(0x3, 0, id, cancel));
      if (!socket.write(Buffer.concat(frames))) {
        // Bounded: a connection the server stopped reading may never drain nor close.
        await Promise.race([
          new Promise((resolve) => socket.once('drain', resolve)),
          closed,
          new Promise((resolve) => setTimeout(resolve, 200)),
        ]);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
    // 128 exchanges, and a few connections the upstream has not seen closed yet.
    expect(peak).toBeLessThanOrEqual(128 + 8);
    expect(goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(socket.destroyed || socket.readableEnded).toBe(true);
    // Refused streams write no access line; the closed connection one warning.
    expect(unlimited.accessLines().length).toBeLessThanOrEqual(2 * 128);
    expect(unlimited.logs.filter((l) => l.event === 'http2_streams_refused')).toHaveLength(1);
    // Each refused stream is counted.
    expect(await refusedCount(unlimited, 'concurrency')).toBeGreaterThan(2 * 128);
    socket.destroy();
  }, 15_000);

  it('still serves a client that opens 128 streams at once', async () => {
    const c = client(unlimited.port);
    await new Promise((resolve) => c.once('remoteSettings', resolve));
    const answers = await Promise.all(Array.from({ length: 128 }, () => get(c, '/slow')));
    expect(answers.every((a) => a.status === 200 && a.body === 'ok\n')).toBe(true);
    // And again, on the same connection.
    const again = await Promise.all(Array.from({ length: 128 }, () => get(c, '/slow')));
    expect(again.every((a) => a.status === 200)).toBe(true);
    c.close();
  });
});

/** An HPACK literal field without indexing, new name (lengths under 127). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** sluice_http2_streams_refused_total{reason} of an instance. */
async function refusedCount(sluice: TestSluice, reason: string): Promise<number> {
  const text = await sluice.instance.registry.getSingleMetricAsString('sluice_http2_streams_refused_total');
  const m = new RegExp(`sluice_http2_streams_refused_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? Number.NaN);
}
