/**
 * sluice's own upstream HTTP/1.1 client against a raw TCP server on loopback that answers what
 * each test scripts: connection reuse and its limits, timeouts, failures mid-answer,
 * back-pressure, the request head it writes, and the pool's lifecycle.
 */
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type H1Handler, H1Pool, type H1Request } from '../../src/proxy/h1-client.js';

interface Seen {
  /** Each request head as received, by connection. */
  heads: string[][];
  /** Bodies after heads (raw). */
  raw: string[];
  closed: number;
}

type Answer = (head: string, conn: number, socket: net.Socket) => void;

const servers: net.Server[] = [];
const pools: H1Pool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  for (const s of servers.splice(0)) s.close();
});

/** A server that calls `answer` for each request head it reads. */
async function upstream(answer: Answer): Promise<{ port: number; seen: Seen; sockets: net.Socket[] }> {
  const seen: Seen = { heads: [], raw: [], closed: 0 };
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    const conn = seen.heads.length;
    seen.heads.push([]);
    seen.raw.push('');
    sockets.push(socket);
    let buf = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      seen.raw[conn] += d;
      buf += d;
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        const length = /\r\ncontent-length: (\d+)/i.exec(head);
        const total = end + 4 + (length ? Number(length[1]) : 0);
        if (buf.length < total) return;
        buf = buf.slice(total);
        seen.heads[conn]!.push(head);
        answer(head, conn, socket);
      }
    });
    socket.on('close', () => seen.closed++);
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, sockets };
}

function pool(
  port: number,
  opts: Partial<{ connectTimeoutMs: number; keepaliveTimeoutMs: number; maxIdle: number }> = {},
) {
  const p = new H1Pool(`http://127.0.0.1:${port}`, {
    connectTimeoutMs: 1000,
    keepaliveTimeoutMs: 4000,
    maxIdle: 8,
    ...opts,
  });
  pools.push(p);
  return p;
}

interface Outcome {
  status: number;
  headers: string[];
  body: string;
  reused: boolean;
  error: (Error & { code?: string }) | null;
}

const GET: H1Request = {
  method: 'GET',
  path: '/',
  headers: [],
  body: null,
  readTimeoutMs: 2000,
  reset: false,
};

/** Sends `req` and resolves when the exchange completes or fails. */
function send(p: H1Pool, req: Partial<H1Request> = {}, handler: Partial<H1Handler> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, headers: [], body: '', reused: false, error: null };
    p.request(
      { ...GET, ...req },
      {
        onConnect(abort, reused) {
          out.reused = reused;
          handler.onConnect?.(abort, reused);
        },
        onHeaders(status, headers, resume, statusText) {
          out.status = status;
          out.headers = headers;
          return handler.onHeaders?.(status, headers, resume, statusText) ?? true;
        },
        onData(chunk) {
          out.body += chunk.toString('latin1');
          return handler.onData?.(chunk) ?? true;
        },
        onComplete() {
          resolve(out);
        },
        onError(err) {
          out.error = err;
          resolve(out);
        },
      },
    );
  });
}

const ok = (body = 'ok', extra = '') =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the upstream HTTP/1.1 client', () => {
  it('reuses a keep-alive connection and says so', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port);
    const first = await send(p);
    const second = await send(p);
    expect([first.status, first.body, first.reused]).toEqual([200, 'ok', false]);
    expect([second.status, second.reused]).toEqual([200, true]);
    expect(u.seen.heads.length).toBe(1);
    expect(u.seen.heads[0]).toHaveLength(2);
  });

  it('opens a new connection for a fresh request and keeps the idle one', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port);
    await send(p);
    const fresh = await send(p, { fresh: true });
    expect([fresh.status, fresh.reused]).toEqual([200, false]);
    expect(u.seen.heads.map((h) => h.length)).toEqual([1, 1]);
    expect(p.connections).toBe(2);
  });

  it('does not reuse after Connection: close, HTTP/1.0, extra bytes or keepalive: 0', async () => {
    const answers = [
      ok('a', 'Connection: close\r\n'),
      'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb',
      `${ok('c')}EXTRA`,
      ok('d'),
      ok('e'),
    ];
    const u = await upstream((_h, conn, s) => s.write(answers[conn]!));
    const p = pool(u.port);
    for (const body of ['a', 'b', 'c']) expect((await send(p)).body).toBe(body);
    const reset = await send(p, { reset: true });
    expect(reset.body).toBe('d');
    expect(u.seen.heads[3]![0]).toMatch(/\r\nconnection: close$/);
    expect((await send(p)).reused).toBe(false);
    expect(u.seen.heads.length).toBe(5);
  });

  it('keeps at most maxIdle idle connections', async () => {
    const u = await upstream((_h, _c, s) => setTimeout(() => s.write(ok()), 30));
    const p = pool(u.port, { maxIdle: 1 });
    await Promise.all([send(p), send(p), send(p)]);
    expect(u.seen.heads.length).toBe(3);
    await sleep(50);
    expect(p.connections).toBe(1);
    expect(u.seen.closed).toBe(2);
  });

  it('closes idle connections after keepalive_timeout, or sooner by the Keep-Alive hint less a second', async () => {
    const u = await upstream((h, _c, s) =>
      s.write(ok('ok', h.includes('/hint') ? 'Keep-Alive: timeout=1\r\n' : '')),
    );
    const p = pool(u.port, { keepaliveTimeoutMs: 150 });
    await send(p);
    expect(p.connections).toBe(1);
    await sleep(400);
    expect(p.connections).toBe(0);
    // timeout=1 leaves no time at all: the connection is closed at once.
    await send(p, { path: '/hint' });
    await sleep(20);
    expect(p.connections).toBe(0);
    expect(u.seen.closed).toBe(2);
    // keepalive_timeout 0: nothing is kept idle.
    const none = pool(u.port, { keepaliveTimeoutMs: 0 });
    await send(none);
    await sleep(20);
    expect(none.connections).toBe(0);
  });

  it('does not take an idle connection past keepalive_timeout when the sweep timer has not run yet', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port, { keepaliveTimeoutMs: 100 });
    await send(p);
    // A turn of the event loop that outlasts the deadline: the sweep cannot run before the next request.
    const until = performance.now() + 150;
    while (performance.now() < until);
    const late = await send(p);
    expect([late.status, late.reused]).toEqual([200, false]);
    expect(u.seen.heads.length).toBe(2);
  });

  it('keeps an idle connection past a shorter read timeout, and times reads again on its next request', async () => {
    const u = await upstream((h, _c, s) => {
      if (!h.includes('/silent')) s.write(ok());
    });
    const p = pool(u.port, { keepaliveTimeoutMs: 600 });
    await send(p, { readTimeoutMs: 100 });
    // Idle for three read timeouts: still kept, keepalive_timeout is what closes an idle connection.
    await sleep(300);
    expect(p.connections).toBe(1);
    const started = Date.now();
    const silent = await send(p, { path: '/silent', readTimeoutMs: 100 });
    expect(silent.reused).toBe(true);
    expect(silent.error?.code).toBe('SLUICE_READ_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
    // And an idle connection still goes at keepalive_timeout when reads are timed longer.
    await send(p, { readTimeoutMs: 5000 });
    expect(p.connections).toBe(1);
    await sleep(900);
    expect(p.connections).toBe(0);
  });

  it('does not time out a request taken onto an idle connection before it is written', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port, { keepaliveTimeoutMs: 5000 });
    await send(p, { readTimeoutMs: 200 });
    // A request started from a timer callback in a turn that ran late (a retry after another
    // attempt's timeout): the idle connection's read timer, counting since the last answer, is
    // due in the same timers phase, before the request's write at the end of the turn.
    const second = new Promise<Outcome>((resolve) => {
      setTimeout(() => resolve(send(p, { readTimeoutMs: 200 })), 20);
      const until = Date.now() + 300;
      while (Date.now() < until);
    });
    const out = await second;
    expect(out.error).toBeNull();
    expect(out).toMatchObject({ status: 200, reused: true });
  });

  it('fails with a read timeout when the target says nothing, and with ECONNREFUSED when it is not there', async () => {
    const u = await upstream(() => undefined);
    const started = Date.now();
    const silent = await send(pool(u.port), { readTimeoutMs: 200 });
    expect(silent.error?.code).toBe('SLUICE_READ_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);

    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const refused = await send(pool(port));
    expect(refused.error?.code).toBe('ECONNREFUSED');
  });

  it('fails when the target closes mid-answer, and marks a stale reused connection', async () => {
    const u = await upstream((h, _c, s) => {
      if (h.includes('/cut')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some');
      else if (h.includes('/first')) s.write(ok());
      else s.destroy(); // a kept-alive connection closed just as a request arrives
    });
    const p = pool(u.port);
    const cut = await send(p, { path: '/cut' });
    expect(cut.error?.code).toBe('SLUICE_UPSTREAM_CLOSED');
    expect(cut.body).toBe('only some');
    await send(p, { path: '/first' });
    const stale = await send(p, { path: '/stale' });
    expect(stale.error?.code).toBe('SLUICE_UPSTREAM_CLOSED');
    expect(stale.reused).toBe(true);
  });

  it('answers a malformed response with an invalid-response error', async () => {
    const u = await upstream((_h, _c, s) =>
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
    );
    const bad = await send(pool(u.port));
    expect(bad.error?.code).toBe('SLUICE_INVALID_RESPONSE');
    expect(bad.status).toBe(0);
  });

  it('stops reading while the handler is behind, and goes on when resumed (a slow client is not a read timeout)', async () => {
    const size = 4 * 1024 * 1024;
    const u = await upstream((_h, _c, s) => s.write(ok('x'.repeat(size))));
    const p = pool(u.port);
    let resume: (() => void) | null = null;
    let received = 0;
    const done = send(
      p,
      { readTimeoutMs: 150 },
      {
        onHeaders(_s, _h, r) {
          resume = r;
          return true;
        },
        onData(chunk) {
          received += chunk.length;
          return false;
        },
      },
    );
    await sleep(200);
    const paused = received;
    expect(paused).toBeLessThan(size);
    await sleep(100);
    expect(received).toBe(paused);
    const timer = setInterval(() => resume?.(), 1);
    const out = await done;
    clearInterval(timer);
    expect(out.error).toBeNull();
    expect(out.body.length).toBe(size);
  });

  it('writes a well-formed head: Host added, the body length its own, a CR/LF value refused unsent', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port);
    await send(p, { headers: ['X-A', 'b'] });
    await send(p, {
      method: 'POST',
      headers: ['Host', 'h.example', 'Content-Length', '99'],
      body: Buffer.from('hello'),
    });
    await send(p, { method: 'PUT' });
    const [get, post, put] = u.seen.heads[0]!;
    expect(get).toBe(`GET / HTTP/1.1\r\nX-A: b\r\nhost: 127.0.0.1:${u.port}`);
    expect(post).toBe('POST / HTTP/1.1\r\nHost: h.example\r\ncontent-length: 5');
    expect(u.seen.raw[0]).toContain('content-length: 5\r\n\r\nhello');
    expect(put).toMatch(/\r\ncontent-length: 0$/);
    const injected = await send(p, { headers: ['X-Evil', 'a\r\nX-Injected: 1'] });
    expect(injected.error?.code).toBe('SLUICE_INVALID_REQUEST');
    // U+010A written as latin1 would be an LF.
    const wide = await send(p, { headers: ['X-Evil', 'a\u010aX-Injected: 1'] });
    expect(wide.error?.code).toBe('SLUICE_INVALID_REQUEST');
    const badPath = await send(p, { path: '/a b' });
    expect(badPath.error?.code).toBe('SLUICE_INVALID_REQUEST');
    expect(u.seen.heads[0]).toHaveLength(3);
    // Framing and the connection are the client's own, whatever a header list says.
    await send(p, {
      method: 'POST',
      headers: ['Transfer-Encoding', 'chunked', 'Connection', 'upgrade'],
      body: Buffer.from('abc'),
    });
    expect(u.seen.heads[0]![3]).toBe(`POST / HTTP/1.1\r\nhost: 127.0.0.1:${u.port}\r\ncontent-length: 3`);
  });

  it('writes a streamed body as it comes, with its Content-Length or else chunked, and reuses the connection', async () => {
    // Answers once the body is in (the answer to a body still going out would stop it).
    const u = await upstream((_h, _c, s) => setTimeout(() => s.write(ok()), 50));
    const p = pool(u.port);
    async function* body(...parts: string[]) {
      for (const part of parts) yield Buffer.from(part);
    }
    const sized = await send(p, {
      method: 'PUT',
      headers: ['Content-Length', '6'],
      body: body('abc', 'def'),
    });
    const chunked = await send(p, { method: 'PUT', body: body('abc', '', 'defgh') });
    expect([sized.status, chunked.status, chunked.reused]).toEqual([200, 200, true]);
    expect(u.seen.raw[0]).toBe(
      `PUT / HTTP/1.1\r\nContent-Length: 6\r\nhost: 127.0.0.1:${u.port}\r\n\r\nabcdef` +
        `PUT / HTTP/1.1\r\nhost: 127.0.0.1:${u.port}\r\ntransfer-encoding: chunked\r\n\r\n` +
        '3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n',
    );
  });

  it('refuses a streamed body longer or shorter than its Content-Length, and closes the connection', async () => {
    const u = await upstream((_h, _c, s) => s.write(ok()));
    const p = pool(u.port);
    async function* body(...parts: string[]) {
      for (const part of parts) yield Buffer.from(part);
    }
    const longer = await send(p, {
      method: 'PUT',
      headers: ['Content-Length', '4'],
      body: body('abc', 'def'),
    });
    const shorter = await send(p, { method: 'PUT', headers: ['Content-Length', '10'], body: body('abc') });
    expect([longer.error?.code, shorter.error?.code]).toEqual([
      'SLUICE_INVALID_REQUEST',
      'SLUICE_INVALID_REQUEST',
    ]);
    await sleep(20);
    expect(u.seen.closed).toBe(2);
    // Nothing past the announced length went out.
    expect(u.seen.raw[0]!.endsWith('\r\n\r\nabc')).toBe(true);
  });

  it('abandons an exchange on abort and closes its connection', async () => {
    const u = await upstream((_h, _c, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const p = pool(u.port);
    const reason = new Error('client gone');
    const out = await send(
      p,
      {},
      {
        onData: () => true,
        onHeaders: () => true,
        onConnect: (abort) => setTimeout(() => abort(reason), 50),
      },
    );
    expect(out.error).toBe(reason);
    await sleep(20);
    expect(u.seen.closed).toBe(1);
    expect(p.connections).toBe(0);
  });

  it('close() waits for the exchange in flight; destroy() fails it', async () => {
    const u = await upstream((_h, _c, s) => setTimeout(() => s.write(ok()), 100));
    const gentle = pool(u.port);
    const inFlight = send(gentle);
    await sleep(20);
    let closed = false;
    const closing = gentle.close().then(() => {
      closed = true;
    });
    expect(closed).toBe(false);
    expect((await inFlight).status).toBe(200);
    await closing;
    expect(gentle.connections).toBe(0);
    expect((await send(gentle)).error?.code).toBe('SLUICE_POOL_CLOSED');

    const hard = pool(u.port);
    const failing = send(hard);
    await sleep(20);
    await hard.destroy();
    expect((await failing).error?.code).toBe('SLUICE_POOL_CLOSED');
  });
});
