/**
 * The egress forward proxy with real sockets: a real curl through `-x`, a local HTTP origin, a
 * TCP echo origin for CONNECT, and the log lines the proxy writes.
 */
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedEgress } from '../../src/config/types.js';
import { EgressServer } from '../../src/egress/egress-server.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface LogLine {
  level: 'info' | 'warn' | 'error';
  msg: string;
  [key: string]: unknown;
}

function captureLog() {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => {
    lines.push({ ...(obj as Record<string, unknown>), level, msg });
  };
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

interface CurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real curl; `input` goes to its stdin (for `--data-binary @-`). */
function curl(args: readonly string[], input?: Buffer): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      ['-sS', '--max-time', '10', ...args],
      { maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** A TCP server that echoes every byte back. */
async function startEcho(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Opens a CONNECT tunnel on a raw socket; resolves with the socket and the proxy's answer head. */
function connectTunnel(
  proxyPort: number,
  authority: string,
  early = '',
): Promise<{ socket: net.Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1');
    let buf = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () =>
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n${early}`),
    );
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      resolve({ socket, head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('close', () => reject(new Error(`closed before an answer: ${buf.toString('latin1')}`)));
  });
}

/** Writes `payload` through an open tunnel and collects the same number of bytes back. */
function echoThrough(
  socket: net.Socket,
  payload: Buffer,
  already: Buffer = Buffer.alloc(0),
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [already];
    let size = already.length;
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size >= payload.length) resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.resume();
    socket.write(payload);
  });
}

/**
 * A port whose connections never complete: a child process listens with a backlog of 1 and never
 * accepts (its event loop blocked), and three connections fill its accept queue, so the kernel drops
 * further SYNs and a connect hangs until its timeout. (Node takes a backlog of 0 as its default, 511.)
 */
async function unacceptingPort(): Promise<{ port: number; close(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
        console.log(s.address().port);
        setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000), 50);
      });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout.once('data', (d) => resolve(Number(String(d)))),
  );
  await new Promise((r) => setTimeout(r, 150));
  const fillers = [1, 2, 3].map(() => net.connect(port, '127.0.0.1'));
  for (const f of fillers) f.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, 100));
  return {
    port,
    close() {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    },
  };
}

const waitFor = async (check: () => boolean, ms = 3000): Promise<void> => {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('egress forward proxy', () => {
  let origin: TestUpstream;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let egress: EgressServer;
  let capture: ReturnType<typeof captureLog>;
  let proxy: string;

  const config = (hosts: string[]): ResolvedEgress => ({
    listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
    policies: [
      // 127.0.0.2 (another loopback address) is in no policy.
      { name: 'apps', sources: ['127.0.0.1/32', '::1/128'], hosts },
      { name: 'other', sources: ['10.0.0.0/8'], hosts: ['localhost'] },
    ],
  });

  beforeAll(async () => {
    origin = await startUpstream();
    echo = await startEcho();
    capture = captureLog();
    // The origin is allowed by address; `localhost` (the same origin, by name) is not.
    egress = new EgressServer(config(['127.0.0.1', '*.example.test']), capture.log, {
      timeouts: { headersMs: 500, connectMs: 2000 },
    });
    await egress.listen();
    proxy = `http://127.0.0.1:${egress.port}`;
  });

  afterAll(async () => {
    await egress.close(1000);
    await origin.close();
    await echo.close();
  });

  afterEach(() => {
    origin.seen.length = 0;
    capture.lines.length = 0;
  });

  it('forwards an allowed absolute-form request from curl -x, hop-by-hop and Proxy-* headers stripped, body intact', async () => {
    const body = Buffer.alloc(300_000, 'abcdefghij');
    const r = await curl(
      [
        '-x',
        proxy,
        '-H',
        'Proxy-Authorization: Basic dXNlcjpwYXNz',
        '-H',
        'Proxy-Connection: keep-alive',
        '-H',
        'Connection: keep-alive, X-Hop',
        '-H',
        'X-Hop: secret',
        '-H',
        'Keep-Alive: timeout=5',
        '-H',
        'TE: trailers',
        '-H',
        'X-Kept: yes',
        '-H',
        'Content-Type: application/octet-stream',
        '--data-binary',
        '@-',
        '-w',
        '\n%{http_code}',
        `http://127.0.0.1:${origin.port}/upload?x=1`,
      ],
      body,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('\n200')).toBe(true);
    expect(origin.seen).toHaveLength(1);
    const seen = origin.seen[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/upload?x=1');
    expect(seen.body.equals(body)).toBe(true);
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen.headers['x-kept']).toBe('yes');
    for (const name of ['proxy-authorization', 'proxy-connection', 'x-hop', 'keep-alive', 'te']) {
      expect(seen.headers[name], name).toBeUndefined();
    }
    // Node adds its own `connection: keep-alive` towards the origin; the client's tokens are gone.
    expect(seen.headers.connection ?? 'keep-alive').toBe('keep-alive');
    const line = capture.lines.find((l) => l.msg === 'egress');
    expect(line).toMatchObject({
      level: 'info',
      source: '127.0.0.1',
      host: '127.0.0.1',
      port: origin.port,
      method: 'POST',
      policy: 'apps',
      status: 200,
      bytes_sent: body.length,
    });
    expect(line?.bytes_received).toBeGreaterThan(body.length);
  });

  it('streams a large response back through the proxy', async () => {
    const big = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 'z');
      let sent = 0;
      const pump = () => {
        while (sent < 8 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    try {
      const r = await curl([
        '-x',
        proxy,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{size_download}',
        `${big.url}/big`,
      ]);
      expect(r.stdout).toBe(`200 ${8 * 1024 * 1024}`);
    } finally {
      await big.close();
    }
  });

  it('refuses a host not in the policy with 403, the origin sees nothing, and logs a warning', async () => {
    const r = await curl(['-x', proxy, '-i', `http://localhost:${origin.port}/secret`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.stdout).toMatch(/content-type: application\/problem\+json/i);
    const doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(doc).toMatchObject({ status: 403, code: 'SLUICE_E_AUTH_EGRESS_DENIED' });
    expect(origin.seen).toHaveLength(0);
    expect(capture.lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: 'egress denied',
        source: '127.0.0.1',
        host: 'localhost',
        port: origin.port,
        method: 'GET',
        reason: 'host',
        error_id: doc.request_id,
      }),
    ]);
  });

  it('refuses a client address that no policy lists', async () => {
    const r = await curl([
      '--interface',
      '127.0.0.2',
      '-x',
      proxy,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://127.0.0.1:${origin.port}/`,
    ]);
    expect(r.stdout).toBe('403');
    expect(origin.seen).toHaveLength(0);
    expect(capture.lines[0]).toMatchObject({ msg: 'egress denied', source: '127.0.0.2', reason: 'source' });
  });

  it('tunnels an allowed CONNECT (curl -p) and relays bytes both ways', async () => {
    const r = await curl([
      '-p',
      '-x',
      proxy,
      '-w',
      '\n%{http_code}',
      `http://127.0.0.1:${origin.port}/through-tunnel`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.endsWith('\n200')).toBe(true);
    expect(origin.seen.map((s) => s.url)).toEqual(['/through-tunnel']);

    const { socket, head, rest } = await connectTunnel(egress.port, `127.0.0.1:${echo.port}`, 'early bytes|');
    expect(head).toBe('HTTP/1.1 200 Connection Established');
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const back = await echoThrough(socket, payload, rest);
    expect(back.subarray(0, 12).toString()).toBe('early bytes|');
    expect(back.subarray(12).equals(payload)).toBe(true);
    socket.end();
    await waitFor(() => capture.lines.filter((l) => l.method === 'CONNECT').length === 2);
    const lines = capture.lines.filter((l) => l.method === 'CONNECT');
    expect(lines.every((l) => l.msg === 'egress' && l.level === 'info' && l.policy === 'apps')).toBe(true);
    expect(lines[1]).toMatchObject({ host: '127.0.0.1', port: echo.port, status: 200 });
    expect(lines[1]!.bytes_sent).toBe(payload.length + 12);
    expect(lines[1]!.bytes_received).toBe(payload.length + 12);
  });

  it('refuses a denied CONNECT with 403 and closes', async () => {
    const r = await curl(['-p', '-x', proxy, `http://localhost:${origin.port}/`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/403/);
    expect(origin.seen).toHaveLength(0);

    const before = echo.connections();
    const raw = await rawRequest(
      egress.port,
      `CONNECT localhost:${echo.port} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    );
    expect(raw.status).toBe(403);
    expect(raw.closed).toBe(true);
    expect(raw.text).toContain('SLUICE_E_AUTH_EGRESS_DENIED');
    expect(echo.connections()).toBe(before);
    expect(capture.lines.filter((l) => l.msg === 'egress denied').map((l) => [l.method, l.host])).toEqual([
      ['CONNECT', 'localhost'],
      ['CONNECT', 'localhost'],
    ]);
  });

  it('matches wildcard names through CONNECT by the name in the CONNECT line', async () => {
    // `*.example.test` is allowed; `.test` names do not resolve, so the allowed tunnel fails (502,
    // or 504 where DNS answers slowly) instead of being refused.
    const ok = await rawRequest(egress.port, 'CONNECT api.example.test:443 HTTP/1.1\r\n\r\n', {
      waitMs: 5000,
    });
    expect([502, 504]).toContain(ok.status);
    expect(capture.lines[0]).toMatchObject({
      msg: 'egress',
      policy: 'apps',
      host: 'api.example.test',
      port: 443,
    });
    const apex = await rawRequest(egress.port, 'CONNECT example.test:443 HTTP/1.1\r\n\r\n');
    expect(apex.status).toBe(403);
    expect(capture.lines[1]).toMatchObject({ msg: 'egress denied', host: 'example.test', reason: 'host' });
  });

  it('refuses a target that is not a DNS name with 400, before the policy and DNS, even under an allowed wildcard', async () => {
    const long = ['a', 'b', 'c', 'd'].map((c) => c.repeat(70)).join('.');
    // 4 labels of 60: each within 63 octets, the name over 253.
    const tooLong = ['a', 'b', 'c', 'd'].map((c) => c.repeat(60)).join('.');
    const targets = [
      `CONNECT ${long}.example.test:443`,
      `CONNECT ${tooLong}.example.test:443`,
      'GET http://.example.test/',
      'GET http://x..example.test/',
      'GET http://*.example.test/',
      'GET http://a$b.example.test/',
      'CONNECT x.example.test..:443',
    ];
    for (const t of targets) {
      const r = await rawRequest(egress.port, `${t} HTTP/1.1\r\nHost: x\r\n\r\n`, { waitMs: 3000 });
      expect([t, r.status]).toEqual([t, 400]);
      expect(r.text).toContain('SLUICE_E_CLIENT_EGRESS_TARGET');
    }
    expect(capture.lines.map((l) => [l.msg, l.code])).toEqual(
      targets.map(() => ['egress refused', 'SLUICE_E_CLIENT_EGRESS_TARGET']),
    );
  });

  it('answers origin-form requests with 400: the listener is only a proxy', async () => {
    const raw = await rawRequest(egress.port, 'GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(raw.status).toBe(400);
    expect(raw.text).toContain('SLUICE_E_CLIENT_EGRESS_NOT_PROXY');
    const https = await rawRequest(egress.port, 'GET https://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(https.status).toBe(400);
    expect(https.text).toContain('SLUICE_E_CLIENT_EGRESS_TARGET');
    const noPort = await rawRequest(egress.port, 'CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n');
    expect(noPort.status).toBe(400);
    // Each answer's id is in a log line, as for every other error answer.
    const ids = [raw, https, noPort].map((r) => /x-sluice-error-id: (\w+)/i.exec(r.text)?.[1]);
    const refused = capture.lines.filter((l) => l.msg === 'egress refused');
    expect(refused.map((l) => [l.level, l.method, l.target, l.code, l.error_id])).toEqual([
      ['warn', 'GET', '/x', 'SLUICE_E_CLIENT_EGRESS_NOT_PROXY', ids[0]],
      ['warn', 'GET', 'https://127.0.0.1/', 'SLUICE_E_CLIENT_EGRESS_TARGET', ids[1]],
      ['warn', 'CONNECT', '127.0.0.1', 'SLUICE_E_CLIENT_EGRESS_TARGET', ids[2]],
    ]);
  });

  it('checks the policy before inviting a body: a denied Expect: 100-continue gets its 403 and no 100', async () => {
    const head = (host: string) =>
      `POST http://${host}:${origin.port}/up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`;
    // The body is never sent: the client waits for the 100 (curl waits 1 s, then sends it anyway).
    const denied = await rawRequest(egress.port, head('localhost'));
    expect(denied.status).toBe(403);
    expect(denied.text).not.toContain('100 Continue');
    expect(denied.text).toContain('SLUICE_E_AUTH_EGRESS_DENIED');
    // Its body was announced and never read: the connection closes, as for any refused body.
    expect(denied.closed).toBe(true);
    const refused = await rawRequest(egress.port, head('127.0.0.1').replace('http://', 'https://'));
    expect(refused.status).toBe(400);
    expect(refused.text).not.toContain('100 Continue');
    // An allowed one is invited, and its body goes through.
    const allowed = await rawRequest(egress.port, [head('127.0.0.1'), 'hello'], { gapMs: 200 });
    expect(allowed.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(origin.seen.map((r) => [r.url, r.body.toString(), r.headers.expect])).toEqual([
      ['/up', 'hello', undefined],
    ]);
  });

  it.each([
    ['a Transfer-Encoding not ending in chunked', 'Transfer-Encoding: gzip\r\n\r\nhello'],
    [
      'a chunk extension holding a bare CR',
      'Transfer-Encoding: chunked\r\n\r\n5;a=b\rc\r\nhello\r\n0\r\n\r\n',
    ],
  ])(
    'refuses a request body with bad framing (%s) 400, opening nothing to the origin, and logs it as such',
    async (_name, rest) => {
      // An origin of its own: no pooled connection to it that a request could reuse unseen.
      const fresh = await startUpstream();
      try {
        const r = await rawRequest(
          egress.port,
          `POST http://127.0.0.1:${fresh.port}/up HTTP/1.1\r\nHost: x\r\n${rest}`,
        );
        expect(r.status).toBe(400);
        expect(r.closed).toBe(true);
        const id = /x-sluice-error-id: (\w+)/i.exec(r.text)?.[1];
        expect(id).toBeDefined();
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(fresh.connections).toBe(0);
        expect(capture.lines).toEqual([
          expect.objectContaining({
            level: 'warn',
            msg: 'egress',
            method: 'POST',
            port: fresh.port,
            status: 400,
            error: 'SLUICE_E_CLIENT_BAD_REQUEST',
            error_id: id,
            bytes_sent: 0,
          }),
        ]);
      } finally {
        await fresh.close();
      }
    },
  );

  it('answers bad framing that arrives after the upload started 400 too, logged as such, not as the client gone', async () => {
    const r = await rawRequest(
      egress.port,
      [
        `POST http://127.0.0.1:${origin.port}/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
        '5;a=b\rc\r\nworld\r\n0\r\n\r\n',
      ],
      { gapMs: 200 },
    );
    expect(r.status).toBe(400);
    const id = /x-sluice-error-id: (\w+)/i.exec(r.text)?.[1];
    expect(id).toBeDefined();
    await waitFor(() => capture.lines.length > 0);
    expect(capture.lines).toEqual([
      expect.objectContaining({
        msg: 'egress',
        status: 400,
        error: 'SLUICE_E_CLIENT_BAD_REQUEST',
        error_id: id,
      }),
    ]);
  });

  it('logs a client that ends its side in the middle of its body as gone (499), not as bad framing', async () => {
    const socket = net.connect(egress.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.end(
      `POST http://127.0.0.1:${origin.port}/up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc`,
    );
    await waitFor(() => capture.lines.length > 0);
    expect(capture.lines).toEqual([
      expect.objectContaining({ msg: 'egress', status: 499, error: 'client_gone', level: 'info' }),
    ]);
    socket.destroy();
  });

  it('answers a request head over the size limit 431, as the gateway does (not 400)', async () => {
    const big = await rawRequest(
      egress.port,
      `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(big.status).toBe(431);
    expect(origin.seen).toHaveLength(0);
  });

  it('sees a client that gives up while its tunnel connects: 499 at once, no 504 at the connect timeout', async () => {
    const stuck = await unacceptingPort();
    try {
      const socket = net.connect(egress.port, '127.0.0.1');
      socket.on('error', () => undefined);
      const answer: Buffer[] = [];
      socket.on('data', (d: Buffer) => answer.push(d));
      socket.write(`CONNECT 127.0.0.1:${stuck.port} HTTP/1.1\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 200));
      const endedAt = Date.now();
      socket.end();
      await waitFor(() => capture.lines.some((l) => l.msg === 'egress'), 1500);
      // The proxy's connect timeout here is 2 s: the line came from the client's end, not from it.
      expect(Date.now() - endedAt).toBeLessThan(1500);
      expect(capture.lines.find((l) => l.msg === 'egress')).toMatchObject({
        method: 'CONNECT',
        status: 499,
        error: 'client_gone',
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(Buffer.concat(answer).toString()).toBe('');
    } finally {
      stuck.close();
    }
  });

  it('answers 502 when the origin is down, for both forms', async () => {
    const port = await closedPort();
    const r = await curl(['-x', proxy, '-i', `http://127.0.0.1:${port}/`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 502 /);
    expect(r.stdout).toContain('SLUICE_E_UPSTREAM_CONNECT');
    const raw = await rawRequest(egress.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`);
    expect(raw.status).toBe(502);
    expect(raw.closed).toBe(true);
    const failures = capture.lines.filter((l) => l.msg === 'egress');
    expect(failures.map((l) => [l.level, l.method, l.status, l.error])).toEqual([
      ['warn', 'GET', 502, 'SLUICE_E_UPSTREAM_CONNECT'],
      ['warn', 'CONNECT', 502, 'SLUICE_E_UPSTREAM_CONNECT'],
    ]);
  });

  it('answers 502 to a request with a body when the origin is down', async () => {
    const port = await closedPort();
    const r = await curl(
      [
        '-x',
        proxy,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--data-binary',
        '@-',
        `http://127.0.0.1:${port}/`,
      ],
      Buffer.alloc(20_000, 'b'),
    );
    expect(r.stdout).toBe('502');
  });

  it.each([
    ['304', 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\n\r\n', 304, null],
    ['204', 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n', 204, null],
    // Node refuses to write this reason: the 502 reused it and threw too, and the client hung unanswered.
    [
      'a reason phrase with a control character',
      'HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok',
      502,
      'SLUICE_E_UPSTREAM_INVALID_RESPONSE',
    ],
  ])('relays or refuses an origin answer: %s', async (_name, answer, status, error) => {
    const raw = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(answer));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const port = (raw.address() as AddressInfo).port;
      const r = await curl([
        '-x',
        proxy,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `http://127.0.0.1:${port}/`,
      ]);
      expect(r.stdout).toBe(String(status));
      await waitFor(() => capture.lines.some((l) => l.msg === 'egress'));
      const line = capture.lines.find((l) => l.msg === 'egress');
      expect([line?.status, line?.error]).toEqual([status, error]);
    } finally {
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
  });

  it('answers 504 when the origin does not answer in time', async () => {
    const silent = await startUpstream(() => undefined);
    try {
      const r = await curl(['-x', proxy, '-w', '%{http_code}', `${silent.url}/slow`]);
      expect(r.stdout.endsWith('504')).toBe(true);
      // Egress timeouts are fixed: the answer names them, not the reverse proxy's proxy.timeouts.
      expect(r.stdout).toContain('the egress timeouts');
    } finally {
      await silent.close();
    }
  });

  it('refuses requests that would loop back into the proxy itself', async () => {
    const r = await curl(['-x', proxy, '-i', `http://127.0.0.1:${egress.port}/`]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.stdout).toContain('SLUICE_E_CLIENT_EGRESS_LOOP');
    const raw = await rawRequest(egress.port, `CONNECT 127.0.0.1:${egress.port} HTTP/1.1\r\n\r\n`);
    expect(raw.status).toBe(403);
    expect(raw.text).toContain('SLUICE_E_CLIENT_EGRESS_LOOP');
    expect(capture.lines.filter((l) => l.msg === 'egress denied').map((l) => l.reason)).toEqual([
      'loop',
      'loop',
    ]);
  });

  it('keeps serving after a client resets mid-request', async () => {
    const socket = net.connect(egress.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `POST http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial`,
    );
    await new Promise((r) => setTimeout(r, 50));
    socket.resetAndDestroy();
    const r = await curl(['-x', proxy, '-o', '/dev/null', '-w', '%{http_code}', `${origin.url}/after`]);
    expect(r.stdout).toBe('200');
  });

  it('swaps policies on update()', async () => {
    try {
      egress.update(config(['localhost']));
      const denied = await curl(['-x', proxy, '-o', '/dev/null', '-w', '%{http_code}', `${origin.url}/`]);
      expect(denied.stdout).toBe('403');
    } finally {
      egress.update(config(['127.0.0.1', '*.example.test']));
    }
    const allowed = await curl(['-x', proxy, '-o', '/dev/null', '-w', '%{http_code}', `${origin.url}/`]);
    expect(allowed.stdout).toBe('200');
  });
});

describe('egress lifecycle', () => {
  it('closes: stops accepting, ends open tunnels at the deadline', async () => {
    const echo = await startEcho();
    const { log } = captureLog();
    const egress = new EgressServer(
      {
        listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
        policies: [{ name: 'p', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
      log,
    );
    await egress.listen();
    const port = egress.port;
    const { socket } = await connectTunnel(port, `127.0.0.1:${echo.port}`);
    socket.resume();
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const started = Date.now();
    await egress.close(300);
    expect((await closedAt) - started).toBeGreaterThanOrEqual(250);
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
    await echo.close();
  });

  it('logs a tunnel and a request cut at the deadline as 499 SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT, before close() resolves', async () => {
    const echo = await startEcho();
    // Sends its head and part of the body, then nothing: still in flight at the deadline.
    const stalled = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    const { lines, log } = captureLog();
    const egress = new EgressServer(
      {
        listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
        policies: [{ name: 'p', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
      log,
    );
    await egress.listen();
    const { socket } = await connectTunnel(egress.port, `127.0.0.1:${echo.port}`);
    expect((await echoThrough(socket, Buffer.from('ping'))).toString()).toBe('ping');
    const request = http.get(
      { host: '127.0.0.1', port: egress.port, path: `${stalled.url}/stalled` },
      (res) => {
        res.on('error', () => undefined);
        res.resume();
      },
    );
    request.on('error', () => undefined);
    await waitFor(() => stalled.seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    await egress.close(300);
    // Nothing waited for: a worker flushes its log and exits right after close().
    const cut = lines.filter((l) => l.msg === 'egress');
    expect(cut).toHaveLength(2);
    expect(cut.find((l) => l.method === 'CONNECT')).toMatchObject({
      level: 'warn',
      host: '127.0.0.1',
      port: echo.port,
      policy: 'p',
      status: 499,
      bytes_sent: 4,
      bytes_received: 4,
      error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
      error_id: null,
    });
    // Not the origin's fault: the agent's destruction used to fail it as SLUICE_E_UPSTREAM_RESET.
    expect(cut.find((l) => l.method === 'GET')).toMatchObject({
      level: 'warn',
      status: 499,
      bytes_received: 7,
      error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
      error_id: null,
    });
    // Each is logged once, however its sockets close afterwards.
    await new Promise((r) => setTimeout(r, 100));
    expect(lines.filter((l) => l.msg === 'egress')).toHaveLength(2);
    await echo.close();
    await stalled.close();
  });

  it('lets a request in flight finish while closing', async () => {
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('late'), 200);
    });
    const { log } = captureLog();
    const egress = new EgressServer(
      {
        listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
        policies: [{ name: 'p', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
      log,
    );
    await egress.listen();
    const pending = curl([
      '-x',
      `http://127.0.0.1:${egress.port}`,
      '-w',
      ' %{http_code}',
      `${slow.url}/slow`,
    ]);
    await waitFor(() => slow.seen.length === 1);
    await egress.close(5000);
    expect((await pending).stdout).toBe('late 200');
    await slow.close();
  });

  it('closes a tunnel that stays silent for the idle timeout', async () => {
    const echo = await startEcho();
    const { lines, log } = captureLog();
    const egress = new EgressServer(
      {
        listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
        policies: [{ name: 'p', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
      log,
      { timeouts: { idleMs: 200 } },
    );
    await egress.listen();
    const { socket } = await connectTunnel(egress.port, `127.0.0.1:${echo.port}`);
    const back = await echoThrough(socket, Buffer.from('ping'));
    expect(back.toString()).toBe('ping');
    const started = Date.now();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await waitFor(() => lines.some((l) => l.msg === 'egress'));
    expect(lines.find((l) => l.msg === 'egress')).toMatchObject({
      method: 'CONNECT',
      status: 200,
      bytes_sent: 4,
    });
    await egress.close(0);
    await echo.close();
  });

  it('takes IPv4 and IPv6 clients on [::] (one address, so dual stack)', async () => {
    const capture = captureLog();
    const egress = new EgressServer(
      {
        listen: { host: '::', port: 0, key: '[::]:0' },
        policies: [{ name: 'all', sources: ['127.0.0.1/32', '::1/128'], hosts: ['127.0.0.1'] }],
      },
      capture.log,
    );
    await egress.listen();
    const origin = await startUpstream();
    try {
      for (const proxy of [`http://127.0.0.1:${egress.port}`, `http://[::1]:${egress.port}`]) {
        const r = await curl(['-x', proxy, '-o', '/dev/null', '-w', '%{http_code}', `${origin.url}/`]);
        expect(r.stdout).toBe('200');
      }
      // The IPv4 client is matched (and logged) unmapped, not as ::ffff:127.0.0.1.
      expect(capture.lines.map((l) => l.source)).toEqual(['127.0.0.1', '::1']);
    } finally {
      await egress.close(500);
      await origin.close();
    }
  });

  it('reports a listen failure as SLUICE_E_RUNTIME_LISTEN', async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const egress = new EgressServer(
      { listen: { host: '127.0.0.1', port, key: `127.0.0.1:${port}` }, policies: [] },
      captureLog().log,
    );
    await expect(egress.listen()).rejects.toMatchObject({ code: 'SLUICE_E_RUNTIME_LISTEN' });
    await egress.close(0);
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  });
});

describe('egress: a CONNECT pipelined behind a request', () => {
  let slow: TestUpstream;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let egress: EgressServer;
  let capture: ReturnType<typeof captureLog>;

  beforeAll(async () => {
    // Answers 300 ms late: the CONNECT behind the request arrives long before its answer.
    slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('slow done'), 300);
    });
    echo = await startEcho();
    capture = captureLog();
    egress = new EgressServer(
      {
        listen: { host: '127.0.0.1', port: 0, key: '127.0.0.1:0' },
        policies: [{ name: 'p', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
      capture.log,
    );
    await egress.listen();
  });

  afterAll(async () => {
    await egress.close(500);
    await slow.close();
    await echo.close();
  });

  afterEach(() => {
    capture.lines.length = 0;
  });

  /**
   * Sends each part of `payload` in one write, 100 ms apart; collects the answer until
   * `done(text)` or the socket closes.
   */
  const pipelined = (payload: readonly string[], done: (text: string) => boolean) =>
    new Promise<{ text: string; closed: boolean }>((resolve) => {
      const socket = net.connect(egress.port, '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => finish(false), 3000);
      const finish = (closed: boolean) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ text, closed });
      };
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        text += d;
        if (done(text)) finish(false);
      });
      socket.on('close', () => finish(true));
      socket.on('error', () => undefined);
      socket.on('connect', async () => {
        for (const part of payload) {
          if (socket.destroyed) return;
          socket.write(part);
          await new Promise((r) => setTimeout(r, 100));
        }
      });
    });

  it('answers an allowed CONNECT, and tunnels the bytes after it, only once the request ahead is answered', async () => {
    // `|later` is sent while the CONNECT waits: it follows `hi-there` (the bytes after its head).
    const r = await pipelined(
      [
        `GET ${slow.url}/slow HTTP/1.1\r\nHost: x\r\n\r\nCONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\nhi-there`,
        '|later',
      ],
      (text) => text.endsWith('|later'),
    );
    // RFC 9112 9.3.2: the answers in the order of the requests; the echo sends the bytes back.
    expect(r.text).toMatch(
      /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nslow doneHTTP\/1\.1 200 Connection Established\r\n\r\nhi-there\|later$/,
    );
    await waitFor(() => capture.lines.filter((l) => l.msg === 'egress').length === 2);
    expect(capture.lines.map((l) => [l.method, l.status])).toEqual([
      ['GET', 200],
      ['CONNECT', 200],
    ]);
  });

  it('answers a denied CONNECT with its 403 after the request ahead, which is not cut', async () => {
    const before = echo.connections();
    const r = await pipelined(
      [
        `GET ${slow.url}/slow HTTP/1.1\r\nHost: x\r\n\r\nCONNECT localhost:${echo.port} HTTP/1.1\r\n\r\nhi-there`,
      ],
      () => false,
    );
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nslow doneHTTP\/1\.1 403 Forbidden\r\n/);
    expect(r.text).toContain('SLUICE_E_AUTH_EGRESS_DENIED');
    expect(echo.connections()).toBe(before);
    expect(capture.lines.map((l) => [l.msg, l.method, l.status ?? l.reason])).toEqual([
      ['egress', 'GET', 200],
      ['egress denied', 'CONNECT', 'host'],
    ]);
  });

  // Refused at once, the bad request's 400 went out before the answer ahead of it, which was cut.
  it('answers a malformed request behind one being answered after that answer, with an id and a line', async () => {
    const r = await pipelined(
      [`GET ${slow.url}/slow HTTP/1.1\r\nHost: x\r\n\r\nNOT A REQUEST\r\n\r\n`],
      () => false,
    );
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nslow doneHTTP\/1\.1 400 Bad Request\r\n/);
    const id = /x-sluice-error-id: (\w+)/i.exec(r.text)?.[1];
    expect(id).toBeDefined();
    expect(capture.lines.map((l) => [l.msg, l.method, l.status ?? l.code, l.error_id])).toEqual([
      ['egress', 'GET', 200, null],
      ['egress refused', '-', 'SLUICE_E_CLIENT_BAD_REQUEST', id],
    ]);
  });

  // The 403 closes the connection: the bad framing behind it is not refused (or logged) again.
  it('refuses a denied request with a malformed body once: its 403, one line', async () => {
    const r = await pipelined(
      [`POST http://localhost:${slow.port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`],
      () => false,
    );
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(r.text.match(/HTTP\/1\.1/g)).toHaveLength(1);
    expect(capture.lines.map((l) => [l.msg, l.method])).toEqual([['egress denied', 'POST']]);
  });

  it('drops a waiting CONNECT whose client left: no tunnel opened, nothing held', async () => {
    const before = echo.connections();
    const seen = slow.seen.length;
    const socket = net.connect(egress.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `GET ${slow.url}/slow HTTP/1.1\r\nHost: x\r\n\r\nCONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\nhi`,
    );
    await waitFor(() => slow.seen.length > seen);
    socket.destroy();
    await waitFor(() => capture.lines.some((l) => l.method === 'GET'));
    expect(capture.lines[0]).toMatchObject({ method: 'GET', status: 499, error: 'client_gone' });
    await new Promise((r) => setTimeout(r, 400));
    expect(echo.connections()).toBe(before);
    expect(capture.lines).toHaveLength(1);
    // Nothing of that connection is left for a drain to wait for.
    const started = Date.now();
    await egress.close(2000);
    expect(Date.now() - started).toBeLessThan(500);
  });
});
