/**
 * The keep-alive race (BEHAVIOUR.md section 6, item 2): an upstream with Node's default 5 s
 * keep-alive timeout closes idle sockets just as a proxy reuses them. Steady load for 30 s, with
 * pauses around 5 s so pooled sockets are reused right as the upstream closes them.
 *
 * Two setups run side by side: a Node upstream behind sluice's defaults (keepalive_timeout 4 s,
 * below the upstream's 5 s; Node also sends a `Keep-Alive: timeout=5` hint), and an upstream that
 * closes idle sockets at 5 s without any hint, behind a 10 s keepalive_timeout: there the race
 * happens, and the attempt on the stale socket is retried on a fresh one without using a try.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startSluice } from '../helpers/sluice.js';
import { makePki } from '../helpers/tls-pki.js';

async function nodeUpstream() {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    res.end('ok');
  });
  // Node's defaults, stated: idle sockets are closed after 5 s.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** An HTTP/1.1 upstream that closes a connection after 5 s idle and says nothing about it. */
async function hintlessUpstream() {
  let requests = 0;
  let staleCloses = 0;
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.setTimeout(5000, () => {
      staleCloses++;
      socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      let end = buffered.indexOf('\r\n\r\n');
      while (end !== -1) {
        requests++;
        buffered = buffered.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        end = buffered.indexOf('\r\n\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    get staleCloses() {
      return staleCloses;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function steadyLoad(url: string, durationMs: number): Promise<number[]> {
  const agent = new Agent({ connections: 20, keepAliveTimeout: 60_000 });
  const statuses: number[] = [];
  const end = Date.now() + durationMs;
  let cycle = 0;
  while (Date.now() < end) {
    const burst = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await request(`${url}/r`, { dispatcher: agent });
        await res.body.dump();
        return res.statusCode;
      }),
    );
    statuses.push(...burst);
    // 4.97 s to 5.03 s: the upstream closes its idle sockets at 5 s.
    await new Promise((r) => setTimeout(r, 4970 + ((cycle++ * 13) % 60)));
  }
  await agent.close();
  return statuses;
}

describe('keep-alive race with a Node upstream', () => {
  it('causes no 502 under steady load for 30 s', { timeout: 60_000 }, async () => {
    const upDefault = await nodeUpstream();
    const upLong = await hintlessUpstream();
    const withDefault = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: { app: { targets: [{ url: upDefault.url }] } },
    });
    const withLong = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: { app: { keepalive_timeout: '10s', targets: [{ url: upLong.url }] } },
    });
    try {
      const [a, b] = await Promise.all([
        steadyLoad(withDefault.url, 30_000),
        steadyLoad(withLong.url, 30_000),
      ]);
      expect(a.length).toBeGreaterThanOrEqual(100);
      expect(a.filter((s) => s !== 200)).toEqual([]);
      expect(b.filter((s) => s !== 200)).toEqual([]);
      // Every request reached the upstream exactly once that it was answered for.
      expect(upDefault.requests).toBe(a.length);
      // The second setup did meet the race: sockets were closed under sluice while pooled.
      expect(upLong.staleCloses).toBeGreaterThan(0);
    } finally {
      await withDefault.close();
      await withLong.close();
      await upDefault.close();
      await upLong.close();
    }
  });
});

/**
 * Answers the first request on each connection (after `delayMs`, so that concurrent requests open
 * connections of their own) and cuts every later one: each idle connection a proxy keeps to it
 * fails the way a connection closed under the proxy does. Counts the requests it cut.
 */
function cutReused(delayMs: number): { listener: http.RequestListener; cut: number } {
  const served = new WeakMap<Socket, number>();
  const out = {
    cut: 0,
    listener: (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      if (n === 1) {
        setTimeout(() => res.end('ok'), delayMs);
        return;
      }
      out.cut++;
      // (A TLS socket cannot be reset: closed.)
      if ('encrypted' in req.socket) req.socket.destroy();
      else req.socket.resetAndDestroy();
    },
  };
  return out;
}

/** Leaves `n` idle connections from sluice to its one target, then sends one more request. */
async function afterIdle(url: string, n: number): Promise<{ status: number; body: string }> {
  const agent = new Agent({ connections: n });
  try {
    await Promise.all(
      Array.from({ length: n }, async () =>
        (await request(`${url}/warm`, { dispatcher: agent })).body.dump(),
      ),
    );
    const res = await request(`${url}/x`, { dispatcher: agent });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await agent.close();
  }
}

describe('the keep-alive race retry', () => {
  it('goes out on a fresh connection, not on another idle one (http target)', async () => {
    const upstream = cutReused(150);
    const server = http.createServer(upstream.listener);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: {
        app: { targets: [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }] },
      },
    });
    try {
      // Four stale idle connections: a retry on the next idle one met three more failures.
      expect(await afterIdle(sluice.url, 4)).toEqual({ status: 200, body: 'ok' });
      expect(upstream.cut).toBe(1);
    } finally {
      await sluice.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('goes out on a fresh connection, not on another idle one (https target)', async () => {
    const pki = makePki();
    const root = pki.ca('root');
    const cert = root.leaf('backend', { dns: ['backend.internal'], usage: 'server' });
    const upstream = cutReused(150);
    const server = https.createServer(
      { cert: readFileSync(cert.cert), key: readFileSync(cert.key) },
      upstream.listener,
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: {
        app: {
          targets: [{ url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` }],
          tls: { ca: root.cert, server_name: 'backend.internal' },
        },
      },
    });
    try {
      expect(await afterIdle(sluice.url, 4)).toEqual({ status: 200, body: 'ok' });
      expect(upstream.cut).toBe(1);
    } finally {
      await sluice.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('a failure on a reused connection that is not re-sent', () => {
  it('counts against the target: a target resetting every POST is taken out after max_fails, not after its pool', async () => {
    // A answers GETs (slowly, so the warm-up opens connections of its own) and resets every POST.
    let aPosts = 0;
    const a = http.createServer((req, res) => {
      req.resume();
      if (req.method === 'POST') {
        aPosts++;
        req.socket.resetAndDestroy();
        return;
      }
      setTimeout(() => res.end('a'), 150);
    });
    const b = http.createServer((req, res) => {
      req.resume();
      setTimeout(() => res.end('b'), req.method === 'POST' ? 0 : 150);
    });
    for (const s of [a, b]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const url = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: {
        app: {
          max_fails: 1,
          fail_timeout: '30s',
          targets: [{ url: url(a) }, { url: url(b) }],
        },
      },
    });
    const agent = new Agent({ connections: 16 });
    try {
      // Pooled connections to both targets: 16 concurrent GETs, half to each.
      await Promise.all(
        Array.from({ length: 16 }, async () =>
          (await request(`${sluice.url}/warm`, { dispatcher: agent })).body.dump(),
        ),
      );
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const res = await request(`${sluice.url}/post`, { method: 'POST', body: 'x', dispatcher: agent });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
      // The first POST to A meets the reset on a pooled connection and is not re-sent (502); it
      // counts, so A rests and every later POST goes to B. Forgiven, every second POST was a 502.
      expect(statuses.filter((s) => s === 502)).toHaveLength(1);
      expect(aPosts).toBe(1);
    } finally {
      await agent.close();
      await sluice.close();
      for (const s of [a, b]) {
        s.closeAllConnections();
        s.close();
      }
    }
  });
});
