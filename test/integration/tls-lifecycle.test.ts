/**
 * A TLS listener through its life: WebSockets (HTTP/1.1 only) on an HTTP/2 address, the
 * HTTP/1.1 limits over TLS, HTTP/2 limits and idle sessions, reloads that change certificates (or
 * try to switch an address between plain and TLS), and a drain that sends HTTP/2 clients GOAWAY.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { freePort } from '../helpers/cli.js';
import { resolve, startSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

let pki: TestPki;
let ca: Buffer;
let a: CertFiles;
let a2: CertFiles;
let up: TestUpstream;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  a = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
  a2 = root.leaf('a.test-2', { dns: ['a.test'], usage: 'server' });
  up = await startUpstream((req, res) => {
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow done'), 400);
      return;
    }
    res.end(`ok ${req.url}`);
  });
});

afterAll(async () => {
  await up?.close();
  pki?.remove();
});

function config(extra: Record<string, unknown> = {}, cert: CertFiles = a): SluiceConfigInput {
  return {
    servers: [
      {
        listen: '127.0.0.1:0',
        server_name: ['a.test'],
        http2: true,
        tls: { cert: cert.cert, key: cert.key },
        routes: [{ proxy: { url: up.url } }],
        ...extra,
      },
    ],
  } as SluiceConfigInput;
}

function h2Connect(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolvePromise, reject) => {
    const client = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'a.test', settings }, () =>
      resolvePromise(client),
    );
    client.on('error', reject);
  });
}

/** Starts sluice with `cfg`, connects an HTTP/2 client, runs `run`, and closes both whatever happens. */
async function withH2(
  cfg: SluiceConfigInput,
  run: (client: http2.ClientHttp2Session, sluice: Awaited<ReturnType<typeof startSluice>>) => Promise<void>,
): Promise<void> {
  const sluice = await startSluice(cfg);
  const client = await h2Connect(sluice.port);
  try {
    await run(client, sluice);
  } finally {
    client.close();
    await sluice.close();
  }
}

function h2Get(
  client: http2.ClientHttp2Session,
  path: string,
  body?: Buffer,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<{ status: number; body: string }> {
  const req = client.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST', ...headers });
  const failed = new Promise<never>((_, reject) => req.on('error', reject));
  req.end(body);
  return Promise.race([h2Answer(req), failed]);
}

/** The status and body of the answer on `req`, once it has ended (errors are the caller's). */
function h2Answer(req: http2.ClientHttp2Stream): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise) => {
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => resolvePromise({ status, body }));
  });
}

/** The CN a new TLS connection is served. */
function servedCn(port: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca }, () => {
      resolvePromise(String(socket.getPeerCertificate().subject.CN));
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('WebSocket on an HTTP/2 TLS address', () => {
  it('tunnels wss:// over HTTP/1.1', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo:${d.toString()}`)));
    const wsPort = (wss.address() as AddressInfo).port;
    const sluice = await startSluice(config({ routes: [{ proxy: { url: `http://127.0.0.1:${wsPort}` } }] }));
    try {
      const options = { ca, servername: 'a.test', headers: { host: 'a.test' } } as WebSocket.ClientOptions;
      const ws = new WebSocket(`wss://127.0.0.1:${sluice.port}/ws`, options);
      const reply = await new Promise<string>((resolvePromise, reject) => {
        ws.on('open', () => ws.send('hi'));
        ws.on('message', (d) => resolvePromise(d.toString()));
        ws.on('error', reject);
      });
      expect(reply).toBe('echo:hi');
      ws.close();
    } finally {
      await sluice.close();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});

describe('handlers over HTTP/2', () => {
  it('serves a fetch-style app and a Node listener: status, headers, Set-Cookie, bodies', async () => {
    await withH2(
      config({
        routes: [
          { name: 'fetch', match: { path_prefix: '/f/' }, handler: 'test/fixtures/handlers/fetch-app.ts' },
          { name: 'listener', handler: 'test/fixtures/handlers/listener-app.ts' },
        ],
      }),
      async (client, sluice) => {
        const echo = await h2Get(client, '/f/echo', Buffer.from('hi'));
        expect(echo.status).toBe(200);
        expect(JSON.parse(echo.body)).toMatchObject({
          method: 'POST',
          body: 'hi',
          url: `https://a.test:${sluice.port}/f/echo`,
        });
        const cookies = await new Promise<http2.IncomingHttpHeaders>((resolvePromise, reject) => {
          const req = client.request({ ':path': '/f/cookies' });
          req.on('response', resolvePromise);
          req.on('error', reject);
          req.resume();
          req.end();
        });
        expect(cookies[':status']).toBe(201);
        expect(cookies['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
        expect(await h2Get(client, '/f/stream')).toEqual({
          status: 200,
          body: 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n',
        });
        const listener = await h2Get(client, '/anything', Buffer.from('x'));
        expect(listener.status).toBe(200);
        expect(JSON.parse(listener.body)).toMatchObject({ method: 'POST', url: '/anything', body: 'x' });
        const lines = await sluice.waitForAccessLines(5);
        expect(lines.find((l) => l.path === '/anything')).toMatchObject({
          status: 200,
          bytes_out: Buffer.byteLength(listener.body),
        });
      },
    );
  });

  it('applies max_body to a handler body by its content-length only, as for HTTP/1.1 chunked', async () => {
    await withH2(
      config({
        routes: [{ handler: 'test/fixtures/handlers/body-outcome-app.ts' }],
        limits: { max_body: '1kb' },
      }),
      async (client) => {
        const body = Buffer.alloc(5000, 'x');
        expect(await h2Get(client, '/i/unsized', body)).toEqual({ status: 200, body: '5000\n' });
        const sized = await h2Get(client, '/i/sized', body, { 'content-length': 5000 });
        expect(sized.status).toBe(413);
      },
    );
  });

  it('never lets a handler read an HTTP/2 body cut short as complete: client reset, connection lost or request_timeout', async () => {
    // The fixture app records into this array (sluice runs in the test's process).
    const outcomes: { path: string; outcome: string; code: string }[] = [];
    (globalThis as { __bodyOutcomes?: unknown }).__bodyOutcomes = outcomes;
    const readers = ['/i/', '/e/', '/f/'];
    await withH2(
      config({
        routes: [{ handler: 'test/fixtures/handlers/body-outcome-app.ts' }],
        limits: { request_timeout: '1s' },
      }),
      async (client, sluice) => {
        // RST_STREAM part-way through the body, with no END_STREAM.
        for (const reader of readers) {
          for (const headers of [{ 'content-length': 1000 }, {}]) {
            const req = client.request({ ':path': `${reader}reset`, ':method': 'POST', ...headers });
            req.on('error', () => undefined);
            req.write(Buffer.alloc(500, 'x'));
            await new Promise((r) => setTimeout(r, 100));
            req.destroy();
            await new Promise((r) => req.once('close', r));
          }
          // The connection lost part-way: the session's socket closes under its streams.
          const lost = await h2Connect(sluice.port);
          lost.on('error', () => undefined);
          const req = lost.request({ ':path': `${reader}lost`, ':method': 'POST' });
          req.on('error', () => undefined);
          req.write(Buffer.alloc(500, 'x'));
          await new Promise((r) => setTimeout(r, 100));
          lost.destroy();
          await new Promise((r) => lost.once('close', r));
        }
        // A body still arriving at request_timeout: the client gets 408, the reader an error.
        const slow = readers.map((reader) => {
          const req = client.request({ ':path': `${reader}slow`, ':method': 'POST' });
          req.on('error', () => undefined);
          req.write(Buffer.alloc(100, 'z'));
          return h2Answer(req);
        });
        for (const answer of await Promise.all(slow)) expect(answer.status).toBe(408);
        for (const reader of readers) {
          expect(await h2Get(client, `${reader}whole`, Buffer.alloc(3000, 'y'))).toEqual({
            status: 200,
            body: '3000\n',
          });
        }
        await new Promise((r) => setTimeout(r, 200));
        // Node's own code for an HTTP/1.1 body cut short (handlers.test.ts), not ERR_STREAM_PREMATURE_CLOSE
        // or an AbortError.
        const cut = 'error ECONNRESET';
        expect(outcomes.map((o) => `${o.path} ${o.outcome} ${o.code}`.trimEnd()).sort()).toEqual(
          readers
            .flatMap((r) => [
              `${r}reset ${cut}`,
              `${r}reset ${cut}`,
              `${r}lost ${cut}`,
              `${r}slow ${cut}`,
              `${r}whole complete`,
            ])
            .sort(),
        );
      },
    );
  });
});

describe('limits over TLS', () => {
  it('answers 408 to a slow HTTP/1.1 head on an HTTP/2 address (header_timeout)', async () => {
    const sluice = await startSluice(config({ limits: { header_timeout: '1s' } }));
    try {
      const started = Date.now();
      const text = await new Promise<string>((resolvePromise) => {
        let out = '';
        const socket = tls.connect(
          { host: '127.0.0.1', port: sluice.port, servername: 'a.test', ca, ALPNProtocols: ['http/1.1'] },
          () => socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n'),
        );
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => {
          out += d;
        });
        socket.on('close', () => resolvePromise(out));
        socket.on('error', () => undefined);
      });
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      await sluice.close();
    }
  });

  it('answers 413 to an HTTP/2 body over max_body, with or without a content-length', async () => {
    await withH2(config({ limits: { max_body: '1kb' } }), async (client) => {
      expect(await h2Get(client, '/small', Buffer.alloc(100, 'x'))).toMatchObject({ status: 200 });
      expect(await h2Get(client, '/big', Buffer.alloc(5000, 'x'))).toMatchObject({ status: 413 });
      const sized = await h2Get(client, '/big-sized', Buffer.alloc(5000, 'x'), { 'content-length': 5000 });
      expect(sized).toMatchObject({ status: 413 });
      expect(up.seen.map((r) => r.url)).not.toContain('/big-sized');
    });
  });

  it('resets the stream of an HTTP/2 upload answered 413 part-way, so the client stops sending', async () => {
    // No content-length: the body is counted as it comes, buffered (1kb) or streamed upstream (100kb).
    const routes = [
      { match: { path_prefix: '/buffered/' }, max_body: '1kb', proxy: { url: up.url } },
      { max_body: '100kb', proxy: { url: up.url } },
    ];
    await withH2(config({ routes }), async (client) => {
      for (const path of ['/buffered/over', '/streamed/over']) {
        const req = client.request({ ':path': path, ':method': 'POST' });
        req.on('error', () => undefined);
        // Never ended: without the reset, Node's client waits in these writes for ever.
        for (let i = 0; i < 4; i++) req.write(Buffer.alloc(512 * 1024, 'x'));
        const answer = await h2Answer(req);
        expect(answer.status).toBe(413);
        await new Promise((r) => setTimeout(r, 200));
        // RST_STREAM closed the stream (rstCode reads 0 before any reset too).
        expect(req.closed).toBe(true);
        expect(req.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
        expect(up.seen.map((r) => r.url)).not.toContain(path);
      }
      expect(await h2Get(client, '/after-413')).toMatchObject({ status: 200, body: 'ok /after-413' });
    });
  });

  it('answers 408 to an HTTP/2 body still arriving at request_timeout, and resets its stream', async () => {
    // One byte every 100 ms: the connection is never idle, so only request_timeout can end it.
    await withH2(config({ limits: { request_timeout: '1s', keepalive_timeout: '3s' } }), async (client) => {
      const started = Date.now();
      const req = client.request({ ':path': '/trickle', ':method': 'POST', 'content-length': 1000 });
      const drip = setInterval(() => req.write('x'), 100);
      // Waits for the end of the answer, not for the client stream's 'close': Node's client holds
      // that back while a write of its own is queued on a stream the server reset with NO_ERROR.
      req.on('error', () => undefined);
      const answer = await h2Answer(req);
      clearInterval(drip);
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'SLUICE_E_CLIENT_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(4000);
      await new Promise((r) => setTimeout(r, 200));
      expect(req.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
      // The connection stays usable for other streams.
      expect(await h2Get(client, '/after')).toMatchObject({ status: 200, body: 'ok /after' });
      await new Promise((r) => setTimeout(r, 200));
      expect(up.seen.map((r) => r.url)).not.toContain('/trickle');
    });
  });

  it('cancels a timed-out HTTP/2 stream whose client keeps its window shut to the answer', async () => {
    const sluice = await startSluice(
      config({ limits: { request_timeout: '1s', keepalive_timeout: '600ms' } }),
    );
    const client = await h2Connect(sluice.port, { initialWindowSize: 0 });
    try {
      const started = Date.now();
      const req = client.request({ ':path': '/shut', ':method': 'POST', 'content-length': 1000 });
      const drip = setInterval(() => {
        if (!req.closed && !req.destroyed) req.write('x');
      }, 100);
      let status = 0;
      req.on('response', (h) => {
        status = Number(h[':status']);
      });
      req.on('error', () => undefined);
      await new Promise((r) => req.once('close', r));
      clearInterval(drip);
      expect(status).toBe(408);
      expect(req.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      client.destroy();
      await sluice.close();
    }
  });

  it('never lets a streamed HTTP/2 body cut by request_timeout reach the upstream as complete', async () => {
    // Over 64 KiB and no content-length: the body is streamed to the upstream as it comes.
    await withH2(config({ limits: { request_timeout: '1s' } }), async (client) => {
      const req = client.request({ ':path': '/streamed-cut', ':method': 'POST' });
      req.on('error', () => undefined);
      req.resume();
      req.write(Buffer.alloc(70_000, 'y'));
      const drip = setInterval(() => {
        if (!req.closed && !req.destroyed) req.write('x');
      }, 100);
      // The server answers at 1 s and resets the stream; whether Node's client reports the reset of
      // a stream with writes still queued is its own affair, so wait on the clock instead.
      await Promise.race([new Promise((r) => req.once('close', r)), new Promise((r) => setTimeout(r, 3000))]);
      clearInterval(drip);
      await new Promise((r) => setTimeout(r, 300));
      expect(up.seen.map((r) => r.url)).not.toContain('/streamed-cut');
    });
  });

  it('never forwards an HTTP/2 body the client reset part-way, buffered or streamed', async () => {
    await withH2(config(), async (client) => {
      // 500 bytes are buffered; 100,000 without content-length are streamed upstream chunked, and
      // the reset must not send their last chunk.
      const cases = [
        { size: 500, headers: { 'content-length': 1000 } },
        { size: 500, headers: {} },
        { size: 100_000, headers: {} },
      ];
      for (const { size, headers } of cases) {
        const req = client.request({ ':path': '/cut', ':method': 'POST', ...headers });
        req.on('error', () => undefined);
        req.write(Buffer.alloc(size, 'x'));
        await new Promise((r) => setTimeout(r, 300));
        // destroy() sends RST_STREAM(CANCEL) alone: close(code) would send END_STREAM first,
        // and a body with its END_STREAM is whole.
        req.destroy();
        await new Promise((r) => req.once('close', r));
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(up.seen.map((r) => r.url)).not.toContain('/cut');
      expect(await h2Get(client, '/after-cut')).toMatchObject({ status: 200 });
    });
  });

  it('leaves an HTTP/2 upload alone while it keeps within request_timeout', async () => {
    await withH2(config({ limits: { request_timeout: '1s' } }), async (client) => {
      expect(await h2Get(client, '/upload', Buffer.alloc(200_000, 'y'))).toMatchObject({ status: 200 });
      await new Promise((r) => setTimeout(r, 1200));
      expect(await h2Get(client, '/after')).toMatchObject({ status: 200 });
    });
  });

  it('refuses TLS connections over max_connections', async () => {
    const sluice = await startSluice(config({ limits: { max_connections: 1 } }));
    const first = await h2Connect(sluice.port);
    try {
      expect(await h2Get(first, '/one')).toMatchObject({ status: 200 });
      await expect(h2Connect(sluice.port).then((c) => h2Get(c, '/two'))).rejects.toThrow();
      expect(sluice.instance.connections()).toBe(1);
    } finally {
      first.close();
      await sluice.close();
    }
  });

  it('closes an idle HTTP/2 connection after keepalive_timeout with GOAWAY', async () => {
    await withH2(config({ limits: { keepalive_timeout: '500ms' } }), async (client) => {
      const goaway = new Promise<number>((r) => client.once('goaway', (code) => r(code)));
      expect(await h2Get(client, '/')).toMatchObject({ status: 200 });
      const started = Date.now();
      expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
      expect(Date.now() - started).toBeLessThan(3000);
    });
  });
});

describe('min_version', () => {
  /** Opens a TLS connection with `version` and sends a request; the status, or the error. */
  function tryVersion(port: number, servername: string, version: tls.SecureVersion): Promise<string> {
    return new Promise((resolvePromise) => {
      let out = '';
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port,
          servername,
          ca,
          minVersion: version,
          maxVersion: version,
          checkServerIdentity: () => undefined,
        },
        () => socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`),
      );
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        out += d;
      });
      socket.on('close', () => resolvePromise(out.slice(0, 12) || 'closed'));
      socket.on('error', (err: NodeJS.ErrnoException) => resolvePromise(err.code ?? 'error'));
    });
  }

  it('TLSv1.3 on every server of an address refuses TLS 1.2 in the handshake', async () => {
    const sluice = await startSluice(config({ tls: { cert: a.cert, key: a.key, min_version: 'TLSv1.3' } }));
    try {
      expect(await tryVersion(sluice.port, 'a.test', 'TLSv1.2')).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
      expect(await tryVersion(sluice.port, 'a.test', 'TLSv1.3')).toBe('HTTP/1.1 200');
    } finally {
      await sluice.close();
    }
  });

  it('TLSv1.3 on one server of a shared address closes TLS 1.2 connections that name it', async () => {
    const sluice = await startSluice({
      servers: [
        {
          name: 'modern',
          listen: '127.0.0.1:0',
          server_name: ['a.test'],
          tls: { cert: a.cert, key: a.key, min_version: 'TLSv1.3' },
          routes: [{ proxy: { url: up.url } }],
        },
        {
          name: 'legacy',
          listen: '127.0.0.1:0',
          server_name: ['b.test'],
          tls: { cert: a.cert, key: a.key },
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    } as SluiceConfigInput);
    try {
      // Closed right after the handshake, before any answer.
      expect(['closed', 'ECONNRESET']).toContain(await tryVersion(sluice.port, 'a.test', 'TLSv1.2'));
      expect(await tryVersion(sluice.port, 'a.test', 'TLSv1.3')).toBe('HTTP/1.1 200');
      expect(await tryVersion(sluice.port, 'b.test', 'TLSv1.2')).toBe('HTTP/1.1 200');
    } finally {
      await sluice.close();
    }
  });
});

describe('reload and drain', () => {
  it('serves the certificate of a reloaded config to new connections', async () => {
    const sluice = await startSluice(config());
    try {
      expect(await servedCn(sluice.port)).toBe('a.test');
      await sluice.instance.reload(resolve(config({}, a2)));
      expect(await servedCn(sluice.port)).toBe('a.test-2');
    } finally {
      await sluice.close();
    }
  });

  it('refuses a reload that would switch a listen address from TLS to plain HTTP', async () => {
    const sluice = await startSluice(config());
    try {
      const plain = {
        servers: [{ listen: `127.0.0.1:0`, routes: [{ proxy: { url: up.url } }] }],
      } as SluiceConfigInput;
      await expect(sluice.instance.reload(resolve(plain))).rejects.toThrow(
        /cannot switch to plain HTTP\/1\.1 in place/,
      );
      expect(await servedCn(sluice.port)).toBe('a.test');
    } finally {
      await sluice.close();
    }
  });

  it('releases the admin listener bound for a reload that is then refused', async () => {
    const [first, second] = [await freePort(), await freePort()];
    const sluice = await startSluice({ ...config(), admin: { listen: `127.0.0.1:${first}` } });
    try {
      const plain = {
        admin: { listen: `127.0.0.1:${second}` },
        servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: up.url } }] }],
      } as SluiceConfigInput;
      await expect(sluice.instance.reload(resolve(plain))).rejects.toThrow(/in place/);
      expect((await fetch(`http://127.0.0.1:${first}/api/status`)).status).toBe(200);
      await expect(fetch(`http://127.0.0.1:${second}/api/status`)).rejects.toThrow();
    } finally {
      await sluice.close();
    }
  });

  it('refuses a reload whose certificate cannot be used, and keeps serving the old one', async () => {
    // Config validation tries the files (config-tls-files.test.ts); here a file changes after it,
    // before the reload applies, and the last check before serving refuses it.
    const sluice = await startSluice(config());
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-swap-'));
    const cert = join(dir, 'cert.pem');
    try {
      copyFileSync(a.cert, cert);
      const validated = resolve(config({}, { cert, key: a.key }));
      copyFileSync(a2.cert, cert);
      await expect(sluice.instance.reload(validated)).rejects.toMatchObject({
        code: 'SLUICE_E_RUNTIME_LISTEN',
        message: expect.stringContaining('cannot use its TLS certificate'),
      });
      expect(await servedCn(sluice.port)).toBe('a.test');
      copyFileSync(a.cert, cert);
      const upstreamTls = {
        ...config(),
        upstreams: { u: { targets: [{ url: 'https://127.0.0.1:1' }], tls: { cert, key: a.key } } },
      } as SluiceConfigInput;
      const validatedUpstream = resolve(upstreamTls);
      copyFileSync(a2.cert, cert);
      await expect(sluice.instance.reload(validatedUpstream)).rejects.toMatchObject({
        code: 'SLUICE_E_CONFIG_FILE',
      });
      expect(await servedCn(sluice.port)).toBe('a.test');
    } finally {
      await sluice.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a config whose servers sharing an address disagree on TLS', async () => {
    const mixed = {
      servers: [
        {
          name: 'tls',
          listen: '127.0.0.1:0',
          server_name: ['a.test'],
          tls: { cert: a.cert, key: a.key },
          routes: [{ proxy: { url: up.url } }],
        },
        {
          name: 'plain',
          listen: '127.0.0.1:0',
          server_name: ['b.test'],
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    } as SluiceConfigInput;
    // Caught by the config check (with its position), before anything is bound.
    await expect(startSluice(mixed)).rejects.toThrow(
      /SLUICE_E_CONFIG_DUPLICATE_LISTEN servers\[1\]\.listen: 127\.0\.0\.1:0 is shared by .* one address is either TLS or plain/,
    );
  });

  it('drains: an HTTP/2 request in flight finishes, the client gets GOAWAY, close does not wait for the deadline', async () => {
    const sluice = await startSluice(config());
    const client = await h2Connect(sluice.port);
    const goaway = new Promise<void>((r) => client.once('goaway', () => r()));
    const inflight = h2Get(client, '/slow');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await sluice.instance.close(5000);
    const took = Date.now() - started;
    expect(await inflight).toEqual({ status: 200, body: 'slow done' });
    await goaway;
    expect(took).toBeLessThan(2000);
    client.close();
  });
});
