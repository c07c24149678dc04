/**
 * Open connections when what a TLS address asks of client certificates changes: a reload that
 * requires a certificate, or a `client_ca` bundle replaced on disk, ends the connections made under
 * the old policy as nginx's retiring workers do (an idle HTTP/1.1 connection at once, a busy one
 * after its answer, HTTP/2 by GOAWAY), so a client that would now be refused is not served on a
 * keep-alive connection. Addresses whose policy did not change, plain ones, and a rotation of the
 * server's own certificate keep their connections.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { freePort } from '../helpers/cli.js';
import { resolve, startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, replaceFile, type TestCa, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

let pki: TestPki;
let root: TestCa;
let otherRoot: TestCa;
let ca: Buffer;
let server: CertFiles;
let clientCert: { cert: Buffer; key: Buffer };
let up: TestUpstream;
/** Answers to /slow wait here until a test lets them go. */
const held: (() => void)[] = [];

beforeAll(async () => {
  pki = makePki();
  root = pki.ca('root');
  otherRoot = pki.ca('other-root');
  ca = readFileSync(root.cert);
  server = root.leaf('server', { dns: ['a.test', 'b.test'], usage: 'server' });
  const client = root.leaf('client', { uri: ['spiffe://example.org/client'], usage: 'client' });
  clientCert = { cert: readFileSync(client.cert), key: readFileSync(client.key) };
  up = await startUpstream((req, res) => {
    const answer = () => {
      const doc = JSON.stringify({ clientId: req.headers['x-client-id'] ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc) });
      res.end(doc);
    };
    if (req.url === '/slow') held.push(answer);
    else answer();
  });
});

afterAll(async () => {
  await up?.close();
  pki?.remove();
});

const routes = (url = up.url) => [{ proxy: { url, set_headers: { 'X-Client-Id': '$client_spiffe_id' } } }];

type Answer = { status: number; clientId: string | null; close: boolean } | 'closed';

/** A keep-alive HTTP/1.1 connection, one request at a time; 'closed' when it ends unanswered. */
class KeepAlive {
  readonly socket: Socket;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  #buffer = '';
  #pending: ((a: Answer) => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buffer += d;
      this.#parse();
    });
    socket.on('error', () => {});
    socket.once('close', () => this.#settle('closed'));
  }

  /** GET `path`; the answer, or 'closed' when the connection ends first. */
  get(path = '/', host = 'a.test'): Promise<Answer> {
    if (this.socket.destroyed) return Promise.resolve('closed');
    return new Promise((r) => {
      this.#pending = r;
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    });
  }

  /** Whether the connection is still open after the server had `ms` to close it. */
  async openAfter(ms: number): Promise<boolean> {
    return (await within(this.closed, ms)) === 'timeout';
  }

  #parse(): void {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buffer.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.#buffer.length < end + 4 + length) return;
    const body = this.#buffer.slice(end + 4, end + 4 + length);
    this.#buffer = this.#buffer.slice(end + 4 + length);
    const status = Number(head.slice(9, 12));
    this.#settle({
      status,
      clientId: status === 200 ? (JSON.parse(body) as { clientId: string | null }).clientId : null,
      close: /\r\nconnection: *close/i.test(head),
    });
  }

  #settle(a: Answer): void {
    const pending = this.#pending;
    this.#pending = null;
    pending?.(a);
  }
}

/** A TLS connection to `port` (SNI `name`), once its handshake is done or has failed. */
function openTls(
  port: number,
  name: string,
  cert?: { cert: Buffer; key: Buffer },
  socket?: Socket,
): Promise<KeepAlive> {
  return new Promise((done) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: name,
      ca,
      ...cert,
      ...(socket && { socket }),
    });
    s.once('secureConnect', () => done(new KeepAlive(s)));
    s.once('error', () => done(new KeepAlive(s)));
  });
}

/** A plain HTTP connection to `port`. */
function openPlain(port: number): Promise<KeepAlive> {
  return new Promise((done) => {
    const s = netConnect(port, '127.0.0.1', () => done(new KeepAlive(s)));
  });
}

/** `p`, or 'timeout' after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

/** Waits until `check` holds (files are polled once a second), at most 6 s. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 6000;
  while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

type Options = { http2?: boolean; url?: string };

describe('a reload that requires a client certificate', () => {
  let otherTls: number;
  let plain: number;
  /**
   * a.test on the first address, without or with require_client_cert, proxying to `opts.url`
   * (the test upstream by default); b.test and plain HTTP beside it.
   */
  const config = (require: boolean, opts: Options = {}): SluiceConfigInput =>
    ({
      shutdown_timeout: '1s',
      servers: [
        {
          name: 'a',
          listen: '127.0.0.1:0',
          server_name: ['a.test'],
          http2: opts.http2 ?? false,
          tls: { cert: server.cert, key: server.key, client_ca: root.cert, require_client_cert: require },
          routes: routes(opts.url),
        },
        {
          name: 'b',
          listen: `127.0.0.1:${otherTls}`,
          server_name: ['b.test'],
          tls: { cert: server.cert, key: server.key, client_ca: root.cert },
          routes: routes(),
        },
        { name: 'plain', listen: `127.0.0.1:${plain}`, server_name: ['a.test'], routes: routes() },
      ],
    }) as SluiceConfigInput;

  beforeAll(async () => {
    otherTls = await freePort();
    plain = await freePort();
  });

  /** Starts sluice with `config(false, opts)`, runs `run`, and closes it whatever happens. */
  async function withSluice(opts: Options, run: (sluice: TestSluice) => Promise<void>): Promise<void> {
    const sluice = await startSluice(config(false, opts));
    try {
      await run(sluice);
    } finally {
      for (const release of held.splice(0)) release();
      await sluice.close();
    }
  }

  it('closes an idle keep-alive connection without a certificate, and refuses it a new one', () =>
    withSluice({}, async (sluice) => {
      const conn = await openTls(sluice.port, 'a.test');
      expect(await conn.get()).toEqual({ status: 200, clientId: null, close: false });
      const withCert = await openTls(sluice.port, 'a.test', clientCert);
      expect(await withCert.get()).toMatchObject({ status: 200, clientId: 'spiffe://example.org/client' });
      // Beside it: another TLS address whose policy stays, and a plain one.
      const other = await openTls(otherTls, 'b.test');
      expect(await other.get('/', 'b.test')).toMatchObject({ status: 200 });
      const plainConn = await openPlain(plain);
      expect(await plainConn.get()).toMatchObject({ status: 200 });
      const seen = up.seen.length;

      await sluice.instance.reload(resolve(config(true)));

      // Not served: closed by the reload (or reset when the request meets the closing connection).
      expect(await conn.get()).toBe('closed');
      // A verified client was checked under the old policy too: it makes a new connection.
      expect(await withCert.get()).toBe('closed');
      expect(up.seen.length).toBe(seen);
      const fresh = await openTls(sluice.port, 'a.test');
      expect(await fresh.get()).toBe('closed');
      const again = await openTls(sluice.port, 'a.test', clientCert);
      expect(await again.get()).toMatchObject({ status: 200, clientId: 'spiffe://example.org/client' });
      // Said once, with how many connections it ended.
      expect(
        sluice.logs.filter((l) => String(l.msg).startsWith('TLS client-certificate policy changed')),
      ).toMatchObject([{ connections: 2, grace_ms: 1000 }]);
      // The other addresses keep their connections.
      expect(await other.get('/', 'b.test')).toMatchObject({ status: 200, close: false });
      expect(await plainConn.get()).toMatchObject({ status: 200, close: false });
      for (const c of [again, other, plainConn]) c.socket.destroy();
    }));

  it('lets a request in flight finish, then closes its connection', () =>
    withSluice({}, async (sluice) => {
      const conn = await openTls(sluice.port, 'a.test');
      const answer = conn.get('/slow');
      await until(() => held.length === 1);
      await sluice.instance.reload(resolve(config(true)));
      held.shift()!();
      expect(await answer).toEqual({ status: 200, clientId: null, close: true });
      expect(await conn.openAfter(5000)).toBe(false);
    }));

  // An answer that never ends (server-sent events, a long poll) kept its connection for good.
  it('cuts an answer still in progress at shutdown_timeout', () =>
    withSluice({}, async (sluice) => {
      const conn = await openTls(sluice.port, 'a.test');
      const answer = conn.get('/slow');
      await until(() => held.length === 1);
      await sluice.instance.reload(resolve(config(true)));
      expect(await within(answer, 5000)).toBe('closed');
      const line = () => sluice.logs.find((l) => l.msg === 'request' && l.path === '/slow');
      await until(() => line() !== undefined);
      expect(line()).toMatchObject({ error: 'SLUICE_E_AUTH_CLIENT_CERT_CHANGED' });
    }));

  it('refuses a connection whose handshake was under way during the reload', () =>
    withSluice({}, async (sluice) => {
      // Accepted before the reload (the TLS socket takes its settings then), handshake after it.
      const tcp = netConnect(sluice.port, '127.0.0.1');
      await until(() => sluice.instance.connections() === 1);
      await sluice.instance.reload(resolve(config(true)));
      const conn = await openTls(sluice.port, 'a.test', undefined, tcp);
      expect(await conn.get()).toBe('closed');
    }));

  it('sends an HTTP/2 connection GOAWAY: its stream in flight finishes, no new one starts', () =>
    withSluice({ http2: true }, async (sluice) => {
      const client = http2.connect(`https://127.0.0.1:${sluice.port}`, { ca, servername: 'a.test' });
      client.on('error', () => {});
      const goaway = new Promise<void>((r) => client.once('goaway', () => r()));
      const closed = new Promise<void>((r) => client.once('close', () => r()));
      const stream = client.request({ ':path': '/slow', ':authority': 'a.test' });
      const status = new Promise<number>((r) => stream.once('response', (h) => r(Number(h[':status']))));
      stream.resume();
      await until(() => held.length === 1);
      await sluice.instance.reload(resolve(config(true, { http2: true })));
      expect(await within(goaway, 5000)).not.toBe('timeout');
      // No new stream: Node 20 throws at once, Node 24 fails the stream.
      const next = await new Promise<string>((r) => {
        try {
          const s = client.request({ ':path': '/', ':authority': 'a.test' });
          s.once('response', () => r('answered'));
          s.once('error', () => r('refused'));
          s.once('close', () => r('refused'));
        } catch {
          r('refused');
        }
      });
      expect(next).toBe('refused');
      held.shift()!();
      expect(await status).toBe(200);
      expect(await within(closed, 5000)).not.toBe('timeout');
      client.destroy();
    }));

  it('closes a WebSocket opened without a certificate', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const url = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    try {
      await withSluice({ url }, async (sluice) => {
        const options = { ca, servername: 'a.test', headers: { host: 'a.test' } } as WebSocket.ClientOptions;
        const ws = new WebSocket(`wss://127.0.0.1:${sluice.port}/ws`, options);
        ws.on('error', () => {});
        await new Promise<void>((r) => ws.once('open', () => r()));
        const closed = new Promise<void>((r) => ws.once('close', () => r()));
        await sluice.instance.reload(resolve(config(true, { url })));
        expect(await within(closed, 5000)).not.toBe('timeout');
      });
    } finally {
      await new Promise((r) => wss.close(r));
    }
  });
});

describe('a client_ca bundle replaced on disk', () => {
  let sluice: TestSluice;
  let live: CertFiles;
  let liveCa: string;

  beforeAll(async () => {
    live = { cert: join(pki.dir, 'live.pem'), key: join(pki.dir, 'live.key') };
    liveCa = join(pki.dir, 'live-ca.pem');
    replaceFile(live.cert, server.cert);
    replaceFile(live.key, server.key);
    replaceFile(liveCa, root.cert);
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          server_name: ['a.test'],
          tls: { cert: live.cert, key: live.key, client_ca: liveCa, require_client_cert: true },
          routes: routes(),
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
  });

  it('keeps a verified connection across a rotation of the server certificate only', async () => {
    const conn = await openTls(sluice.port, 'a.test', clientCert);
    expect(await conn.get()).toMatchObject({ status: 200, clientId: 'spiffe://example.org/client' });
    const second = root.leaf('server-2', { dns: ['a.test'], usage: 'server' });
    replaceFile(live.cert, second.cert);
    replaceFile(live.key, second.key);
    await until(async () => {
      const probe = await openTls(sluice.port, 'a.test', clientCert);
      const cn = (probe.socket as tls.TLSSocket).getPeerCertificate().subject?.CN;
      probe.socket.destroy();
      return cn === 'server-2';
    });
    expect(await conn.get()).toEqual({ status: 200, clientId: 'spiffe://example.org/client', close: false });
    conn.socket.destroy();
  });

  it('ends a connection verified by a CA taken out of the bundle', async () => {
    const conn = await openTls(sluice.port, 'a.test', clientCert);
    expect(await conn.get()).toMatchObject({ status: 200, clientId: 'spiffe://example.org/client' });
    replaceFile(liveCa, otherRoot.cert);
    expect(await conn.openAfter(6000)).toBe(false);
    expect(await conn.get()).toBe('closed');
    // The same certificate no longer makes a connection.
    const fresh = await openTls(sluice.port, 'a.test', clientCert);
    expect(await fresh.get()).toBe('closed');
  });
});
