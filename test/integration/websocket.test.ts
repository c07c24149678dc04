/** WebSockets through sluice: a real `ws` echo server behind, undici's WebSocket client in front. */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { openWebSocket as open } from '../helpers/websocket-client.js';

async function echoServer(name: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const events: string[] = [];
  wss.on('connection', (ws, req) => {
    events.push(`open ${req.url} ${req.headers['x-forwarded-for']}`);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === 'server-close') ws.close(4000, 'bye');
      else ws.send(`${name}:${text}`);
    });
    ws.on('close', (code) => events.push(`close ${code}`));
  });
  return {
    port: (wss.address() as AddressInfo).port,
    events,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

describe('WebSocket proxying', () => {
  let a: Awaited<ReturnType<typeof echoServer>>;
  let b: Awaited<ReturnType<typeof echoServer>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    a = await echoServer('a');
    b = await echoServer('b');
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { name: 'plain', match: { path: '/plain' }, respond: { body: 'not a websocket\n' } },
            {
              name: 'idle',
              match: { path: '/idle' },
              proxy: { upstream: 'ws', timeouts: { read: '300ms' } },
            },
            {
              name: 'idiom',
              match: { path: '/idiom' },
              // nginx's WebSocket idiom, copied over: sluice leaves both headers out (a warning).
              proxy: { upstream: 'ws', set_headers: { Upgrade: '$http_upgrade', Connection: 'upgrade' } },
            },
            { name: 'ws', proxy: { upstream: 'ws' } },
          ],
        },
      ],
      upstreams: {
        ws: { targets: [{ url: `http://127.0.0.1:${a.port}` }, { url: `http://127.0.0.1:${b.port}` }] },
      },
    });
  });

  afterAll(async () => {
    await sluice.close();
    await a.close();
    await b.close();
  });

  it('tunnels messages both ways and balances connections across targets', async () => {
    const c1 = await open(`ws://127.0.0.1:${sluice.port}/chat`);
    const c2 = await open(`ws://127.0.0.1:${sluice.port}/chat`);
    c1.ws.send('hello');
    c2.ws.send('hello');
    c1.ws.send('x'.repeat(100_000));
    expect(await until(() => c1.messages.length === 2 && c2.messages.length === 1)).toBe(true);
    expect(new Set([c1.messages[0], c2.messages[0]])).toEqual(new Set(['a:hello', 'b:hello']));
    expect(c1.messages[1]!.length).toBe(100_002);
    expect(a.events.concat(b.events).filter((e) => e.startsWith('open /chat 127.0.0.1'))).toHaveLength(2);
    c1.ws.close(1000);
    c2.ws.close(1000);
    expect(await c1.closed).toBe(1000);
    expect(await until(() => a.events.includes('close 1000') && b.events.includes('close 1000'))).toBe(true);
  });

  // Sent as set, the two made undici refuse the upgrade: a 502, counted as a failure of every
  // target, so the whole upstream answered 502 for fail_timeout.
  it("proxies the upgrade when the route sets nginx's Upgrade and Connection headers", async () => {
    for (let i = 0; i < 2; i++) {
      const c = await open(`ws://127.0.0.1:${sluice.port}/idiom`);
      c.ws.send('hi');
      expect(await until(() => c.messages.length === 1)).toBe(true);
      c.ws.close(1000);
      expect(await c.closed).toBe(1000);
    }
    expect(sluice.logs.some((l) => l.msg === 'upstream target temporarily disabled')).toBe(false);
  });

  it('closes the client side cleanly when the target closes', async () => {
    const c = await open(`ws://127.0.0.1:${sluice.port}/chat`);
    c.ws.send('server-close');
    expect(await c.closed).toBe(4000);
  });

  it('closes a tunnel silent for timeouts.read', async () => {
    const c = await open(`ws://127.0.0.1:${sluice.port}/idle`);
    const started = Date.now();
    const code = await c.closed;
    expect(code).toBe(1006);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('logs the tunnel with status 101 when it closes, and counts it in flight while open', async () => {
    const c = await open(`ws://127.0.0.1:${sluice.port}/count`);
    const view = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { inflight: number }[] }).targets;
    expect(view().reduce((n, t) => n + t.inflight, 0)).toBe(1);
    c.ws.close();
    await c.closed;
    expect(await until(() => sluice.accessLines().some((l) => l.path === '/count'))).toBe(true);
    expect(sluice.accessLines().find((l) => l.path === '/count')).toMatchObject({ status: 101, route: 'ws' });
    expect(await until(() => view().reduce((n, t) => n + t.inflight, 0) === 0)).toBe(true);
  });

  it('answers an Upgrade request on a non-proxy route like any request, then closes', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(r.status).toBe(200);
    expect(r.text).toContain('not a websocket');
    expect(r.closed).toBe(true);
  });

  it('relays a target that refuses the upgrade', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    // The ws server refuses a handshake without a key with 400.
    expect(r.status).toBe(400);
    expect(r.closed).toBe(true);
  });
});

describe('a client that leaves during the upgrade handshake', () => {
  it('ends the attempt when the client leaves, logged 499, not 101 when the target answers later', async () => {
    // A target that takes the upgrade request and answers 101 only after 3 s.
    const accepted: net.Socket[] = [];
    const slow = net.createServer((socket) => {
      accepted.push(socket);
      socket.on('error', () => undefined);
      setTimeout(() => {
        if (!socket.destroyed)
          socket.write(
            'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
          );
      }, 3000);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [{ proxy: { url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}` } }],
        },
      ],
    });
    try {
      const client = net.connect(sluice.port, '127.0.0.1');
      client.on('error', () => undefined);
      client.write('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      expect(await until(() => accepted.length === 1)).toBe(true);
      client.end();
      // Logged 499 when the client left, not 101 when the target answered (3 s later); the attempt
      // no longer counts in flight for least_conn and max_conns.
      const lines = await sluice.waitForAccessLines(1, 2000);
      expect(lines.at(-1)).toMatchObject({ path: '/chat', status: 499 });
      expect(lines.at(-1)?.duration_ms).toBeLessThan(2000);
      expect(sluice.instance.handles().inflight).toEqual([]);
    } finally {
      for (const socket of accepted) socket.destroy();
      await sluice.close();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });
});

/** The fields of a head (lower-case names), each name's values in order. */
function fieldsOf(head: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return fields;
}

describe('the hop-by-hop headers of an upgrade', () => {
  it("drops the headers each side's Connection names, in both directions (RFC 9110 7.6.1)", async () => {
    // A real `ws` server whose 101 names X-Hop in its Connection, and which records the handshake.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const received: Record<string, string | string[] | undefined>[] = [];
    wss.on('headers', (headers, req) => {
      received.push(req.headers);
      const i = headers.findIndex((h) => /^connection:/i.test(h));
      headers[i] = 'Connection: Upgrade, X-Hop';
      headers.push('X-Hop: v', 'X-Kept: k');
    });
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [{ proxy: { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}` } }],
        },
      ],
    });
    const client = net.connect(sluice.port, '127.0.0.1');
    try {
      client.on('error', () => undefined);
      let text = '';
      client.setEncoding('latin1');
      client.on('data', (d: string) => {
        text += d;
      });
      client.write(
        'GET /hop HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Secret-Hop\r\nUpgrade: websocket\r\n' +
          'X-Secret-Hop: 1\r\nX-Kept: 1\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      expect(await until(() => text.includes('\r\n\r\n'))).toBe(true);
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      const fields = fieldsOf(head);
      expect(fields.get('connection')).toEqual(['Upgrade']);
      expect(fields.get('upgrade')).toEqual(['websocket']);
      expect(fields.get('sec-websocket-accept')).toEqual(['s3pPLMBiTxaQ9kYGzzhZRbK+xOo=']);
      expect(fields.get('x-kept')).toEqual(['k']);
      expect(fields.has('x-hop')).toBe(false);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ connection: 'upgrade', upgrade: 'websocket', 'x-kept': '1' });
      expect(received[0]).not.toHaveProperty('x-secret-hop');
    } finally {
      client.destroy();
      await sluice.close();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});

describe('a WebSocket upgrade pipelined behind many requests', () => {
  // An upstream answering GETs with "ok", and an Upgrade with a 101 after which it echoes.
  let up: net.Server;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = net.createServer((socket) => {
      let buf = '';
      let tunnel = false;
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => {
        if (tunnel) {
          socket.write(d);
          return;
        }
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end !== -1 && !tunnel; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          if (/\r\nupgrade:/i.test(head)) {
            tunnel = true;
            socket.write(
              'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
            );
            if (buf !== '') socket.write(buf, 'latin1');
          } else {
            socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          }
        }
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const port = (up.address() as AddressInfo).port;
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: `http://127.0.0.1:${port}` } }] }],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await new Promise<void>((r) => up.close(() => r()));
  });

  // Past 32 waiting the connection is no longer read (http-listener.ts): the upgrade's tunnel must
  // read it again. Behind 33 or more, the client's tunnel bytes never reached the target.
  it.each([1, 40])('carries tunnel bytes both ways behind %i pipelined GETs', async (n) => {
    const client = net.connect(sluice.port, '127.0.0.1');
    client.on('error', () => undefined);
    let text = '';
    client.setEncoding('latin1');
    client.on('data', (d: string) => {
      text += d;
    });
    await new Promise((r) => client.once('connect', r));
    const gets = 'GET /g HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n);
    client.write(
      `${gets}GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    await until(() => text.includes('101 Switching Protocols'));
    client.write('ping-through-the-tunnel');
    const echoed = await until(() => text.includes('ping-through-the-tunnel'));
    client.destroy();
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(n);
    expect(echoed).toBe(true);
  });
});

/**
 * A target that answers the upgrade with 101 and never closes its side on its own: a FIN from
 * sluice leaves it half-open (allowHalfOpen), as some WebSocket servers do. Once its peer has sent
 * FIN it writes a byte every 50 ms, so it notices (a reset, then 'close') when sluice has closed
 * the connection, not just half-closed it.
 */
async function halfOpenTarget() {
  const sockets: net.Socket[] = [];
  const conns: { received: string; endedAt: number; closedAt: number; socket: net.Socket }[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const conn = { received: '', endedAt: 0, closedAt: 0, socket };
    conns.push(conn);
    let upgraded = false;
    let timer: NodeJS.Timeout | undefined;
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      conn.received += d;
      if (upgraded || !conn.received.includes('\r\n\r\n')) return;
      upgraded = true;
      conn.received = conn.received.slice(conn.received.indexOf('\r\n\r\n') + 4);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    socket.on('end', () => {
      conn.endedAt = Date.now();
      timer = setInterval(() => socket.write('.'), 50);
    });
    socket.on('close', () => {
      conn.closedAt = Date.now();
      clearInterval(timer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    conns,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('a tunnel one side closes', () => {
  let target: Awaited<ReturnType<typeof halfOpenTarget>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    target = await halfOpenTarget();
    // timeouts.read is the default 60 s: a half-closed tunnel stayed that long.
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: `http://127.0.0.1:${target.port}` } }] }],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await target?.close();
  });

  /** Opens a tunnel through sluice on a raw socket; resolves once the 101 came back. */
  async function tunnel(path: string, allowHalfOpen: boolean) {
    const openedAt = Date.now();
    const client = net.connect({ port: sluice.port, host: '127.0.0.1', allowHalfOpen });
    client.on('error', () => undefined);
    let text = '';
    let endedAt = 0;
    let closedAt = 0;
    client.setEncoding('latin1');
    client.on('data', (d: string) => {
      text += d;
    });
    client.on('end', () => {
      endedAt = Date.now();
    });
    client.on('close', () => {
      closedAt = Date.now();
    });
    client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(await until(() => text.includes('\r\n\r\n'))).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 101 /);
    return {
      client,
      openedAt,
      text: () => text,
      endedAt: () => endedAt,
      closedAt: () => closedAt,
    };
  }

  // The client's FIN was passed on as a half-close: the target kept its side open, and so did
  // sluice, both connections held until timeouts.read (60 s), and the line came only then.
  it("closes both sides when the client ends: the client's last bytes reach the target first", async () => {
    const t = await tunnel('/client-ends', false);
    const conn = target.conns.at(-1)!;
    conn.socket.write('from-target');
    expect(await until(() => t.text().endsWith('from-target'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    t.client.end('last-from-client');
    const endedAt = Date.now();
    try {
      // Generous: the close takes a few ms.
      expect(await until(() => conn.closedAt > 0 && t.closedAt() > 0, 2000)).toBe(true);
      expect(conn.received).toBe('last-from-client');
      expect(conn.endedAt).toBeGreaterThan(0);
      expect(conn.closedAt - endedAt).toBeLessThan(2000);
      const lines = await sluice.waitForAccessLines(1, 2000);
      const line = lines.find((l) => l.path === '/client-ends');
      expect(line).toMatchObject({ status: 101, bytes_out: 'from-target'.length });
      expect(lines.filter((l) => l.path === '/client-ends')).toHaveLength(1);
      // About the client's lifetime: open 300 ms past the 101, closed at once after its FIN.
      const lived = t.closedAt() - t.openedAt;
      expect(line!.duration_ms as number).toBeGreaterThanOrEqual(endedAt - t.openedAt - 100);
      expect(line!.duration_ms as number).toBeLessThanOrEqual(lived + 50);
    } finally {
      t.client.destroy();
    }
  });

  // The flush before the close is bounded (5 s): a client that reads nothing more does not hold
  // its tunnel, nor the target's connection, which closes at once.
  it('closes a tunnel whose client ended and reads nothing more, at most 5 s later', async () => {
    const t = await tunnel('/never-reads', false);
    const conn = target.conns.at(-1)!;
    t.client.pause();
    // More than the kernel buffers on the way hold: sluice is left with bytes the client never takes.
    conn.socket.write(Buffer.alloc(64 * 1024 * 1024, 'x'));
    await new Promise((r) => setTimeout(r, 300));
    t.client.end();
    const endedAt = Date.now();
    try {
      expect(await until(() => conn.closedAt > 0, 2000)).toBe(true);
      expect(await until(() => sluice.accessLines().some((l) => l.path === '/never-reads'), 8000)).toBe(true);
      const loggedAfter = Date.now() - endedAt;
      expect(loggedAfter).toBeGreaterThanOrEqual(4500);
      expect(loggedAfter).toBeLessThan(7500);
      expect(sluice.accessLines().find((l) => l.path === '/never-reads')).toMatchObject({ status: 101 });
    } finally {
      t.client.destroy();
    }
  }, 20_000);

  it("closes both sides when the target ends: the target's last bytes reach the client first", async () => {
    const t = await tunnel('/target-ends', true);
    const conn = target.conns.at(-1)!;
    t.client.write('from-client');
    expect(await until(() => conn.received === 'from-client')).toBe(true);
    conn.socket.end('last-from-target');
    const endedAt = Date.now();
    // Half-open, the client writes on after sluice's FIN; it is reset once sluice has closed.
    const ping = setInterval(() => t.client.write('.'), 50);
    try {
      expect(await until(() => t.closedAt() > 0, 2000)).toBe(true);
      expect(t.text().endsWith('last-from-target')).toBe(true);
      expect(t.endedAt()).toBeGreaterThan(0);
      expect(t.closedAt() - endedAt).toBeLessThan(2000);
      const lines = await sluice.waitForAccessLines(1, 2000);
      const mine = lines.filter((l) => l.path === '/target-ends');
      expect(mine).toMatchObject([{ status: 101, bytes_out: 'last-from-target'.length }]);
      expect(mine[0]!.duration_ms as number).toBeLessThanOrEqual(t.closedAt() - t.openedAt + 50);
    } finally {
      clearInterval(ping);
      t.client.destroy();
    }
  });
});

// nginx times an upgraded connection's writes: send_timeout towards the client, proxy_send_timeout
// towards the target. A side that read nothing, its peer's pings keeping the tunnel busy, held the
// tunnel (and what the other side sent, queued) for good: timeouts.read never fired.
describe('a tunnel one side stops reading', () => {
  let target: Awaited<ReturnType<typeof halfOpenTarget>>;
  let sluice: TestSluice;

  beforeAll(async () => {
    target = await halfOpenTarget();
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { send_timeout: '1s' },
          routes: [{ proxy: { url: `http://127.0.0.1:${target.port}`, timeouts: { send: '1s' } } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await target?.close();
  });

  async function tunnel(path: string) {
    const client = net.connect({ port: sluice.port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    let head = '';
    let closedAt = 0;
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
    };
    client.on('data', onData);
    client.on('close', () => {
      closedAt = Date.now();
    });
    client.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(await until(() => head.includes('\r\n\r\n'))).toBe(true);
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    return { client, conn: target.conns.at(-1)!, closedAt: () => closedAt };
  }

  it('closes it when its client takes nothing for send_timeout, though the client sends', async () => {
    const t = await tunnel('/client-reads-nothing');
    t.client.pause();
    // More than the kernel buffers on the way hold.
    t.conn.socket.write(Buffer.alloc(64 * 1024 * 1024, 'x'));
    const ping = setInterval(() => t.client.write('.'), 100);
    const started = Date.now();
    try {
      expect(await until(() => t.conn.closedAt > 0, 6000)).toBe(true);
      // send_timeout (1 s), checked every second.
      expect(t.conn.closedAt - started).toBeGreaterThanOrEqual(900);
      expect(t.conn.received.length).toBeGreaterThan(0);
      expect(
        await until(() => sluice.accessLines().some((l) => l.path === '/client-reads-nothing'), 2000),
      ).toBe(true);
      expect(sluice.accessLines().find((l) => l.path === '/client-reads-nothing')).toMatchObject({
        status: 101,
        error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
      });
    } finally {
      clearInterval(ping);
      t.client.destroy();
    }
  }, 15_000);

  it('closes it when its target takes nothing for timeouts.send, though the target sends', async () => {
    const t = await tunnel('/target-reads-nothing');
    t.conn.socket.pause();
    t.client.write(Buffer.alloc(64 * 1024 * 1024, 'x'));
    const ping = setInterval(() => t.conn.socket.write('.'), 100);
    const started = Date.now();
    try {
      expect(await until(() => t.closedAt() > 0 && t.conn.closedAt > 0, 6000)).toBe(true);
      expect(t.closedAt() - started).toBeGreaterThanOrEqual(900);
      expect(
        await until(() => sluice.accessLines().some((l) => l.path === '/target-reads-nothing'), 2000),
      ).toBe(true);
      expect(sluice.accessLines().find((l) => l.path === '/target-reads-nothing')).toMatchObject({
        status: 101,
        error: 'SLUICE_E_UPSTREAM_TIMEOUT',
      });
    } finally {
      clearInterval(ping);
      t.client.destroy();
    }
  }, 15_000);

  it('keeps a tunnel both sides read, past both timeouts', async () => {
    const t = await tunnel('/both-read');
    let got = 0;
    t.client.on('data', (d: Buffer) => {
      got += d.length;
    });
    const ping = setInterval(() => {
      t.client.write('.');
      t.conn.socket.write('.');
    }, 100);
    try {
      await new Promise((r) => setTimeout(r, 2500));
      expect(t.closedAt()).toBe(0);
      expect(t.conn.closedAt).toBe(0);
      expect(got).toBeGreaterThan(10);
    } finally {
      clearInterval(ping);
      t.client.destroy();
    }
  });
});

// An echoing target behind a client that reads nothing stops reading in turn (its writes back are
// held): the stall is the client's, and it was logged as the target's (SLUICE_E_UPSTREAM_TIMEOUT).
describe('an echoing tunnel whose client reads nothing', () => {
  it('is cut as the client not reading, not the target', async () => {
    const sockets = new Set<net.Socket>();
    const echo = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      let head = Buffer.alloc(0);
      const onHead = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHead);
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) socket.write(rest);
        socket.pipe(socket);
      };
      socket.on('data', onHead);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { send_timeout: '1s' },
          routes: [
            {
              proxy: {
                url: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`,
                timeouts: { send: '1s' },
              },
            },
          ],
        },
      ],
    });
    const client = net.connect({ port: sluice.port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    try {
      await new Promise<void>((resolve) => {
        client.once('data', () => resolve());
        client.write('GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      });
      client.pause();
      client.write(Buffer.alloc(64 * 1024 * 1024, 'x'));
      expect(await until(() => sluice.accessLines().some((l) => l.path === '/echo'), 8000)).toBe(true);
      expect(sluice.accessLines().find((l) => l.path === '/echo')).toMatchObject({
        status: 101,
        error: 'SLUICE_E_CLIENT_SEND_TIMEOUT',
      });
    } finally {
      client.destroy();
      await sluice.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => echo.close(() => r()));
    }
  }, 20_000);
});
