/**
 * Requests still in flight when `shutdown_timeout` runs out are cut by sluice, not by their
 * targets: the cut counts against no target (passive health), is retried nowhere, and the access
 * line says what the client got: 499, `error: SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT`, nothing sent.
 * A handler that never answers is logged the same way, at the deadline, and so is an egress
 * tunnel, under the same deadline. An open WebSocket tunnel is logged at the deadline too, with
 * the 101 its client got and the same error.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** Sends a request and settles with what came back before the connection ended. */
function send(
  port: number,
  o: { method?: string; path: string; body?: Buffer },
): Promise<{ status: number | null; error: string | null }> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, error: null }));
        res.on('error', (err) => resolve({ status: res.statusCode ?? 0, error: err.message }));
      },
    );
    req.on('error', (err) => resolve({ status: null, error: err.message }));
    req.end(o.body);
  });
}

describe('requests in flight at shutdown_timeout', () => {
  let slowA: TestUpstream;
  let slowB: TestUpstream;
  let handlers: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    // Both targets answer after 5 s: well after the 300 ms deadline below.
    const slow = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      const timer = setTimeout(() => res.end('late\n'), 5000);
      res.on('close', () => clearTimeout(timer));
    };
    slowA = await startUpstream(slow);
    slowB = await startUpstream(slow);
    handlers = await tempDir();
  });
  afterAll(async () => {
    await slowA?.close();
    await slowB?.close();
    await handlers?.remove();
  });

  const upstream = () => ({ targets: [{ url: slowA.url }, { url: slowB.url }] });

  it('a proxied request is cut, not failed: no target disabled, no retry, logged 499', async () => {
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'be' } }] }],
      upstreams: { be: upstream() },
    });
    const answer = send(sluice.port, { path: '/slow' });
    await until(() => slowA.seen.length + slowB.seen.length === 1);
    await sluice.instance.close(300);
    const got = await answer;
    expect(got.status).toBeNull(); // nothing reached the client: the connection was closed
    const [line] = await sluice.waitForAccessLines(1);
    expect(line).toMatchObject({
      path: '/slow',
      status: 499,
      attempts: 1,
      bytes_out: 0,
      error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
    });
    expect(sluice.accessLines()).toHaveLength(1);
    // Neither target was blamed, and the request went to one of them only.
    expect(sluice.logs.filter((l) => l.msg === 'upstream target temporarily disabled')).toEqual([]);
    expect(slowA.seen.length + slowB.seen.length).toBe(1);
  });

  // A body over 64 KiB is streamed as it arrives, not read whole first.
  it('the same for a streamed request body', async () => {
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'be' } }] }],
      upstreams: { be: upstream() },
    });
    const before = slowA.seen.length + slowB.seen.length;
    const answer = send(sluice.port, { method: 'PUT', path: '/upload', body: Buffer.alloc(100 * 1024, 'x') });
    await until(() => slowA.seen.length + slowB.seen.length === before + 1);
    await sluice.instance.close(300);
    expect((await answer).status).toBeNull();
    const [line] = await sluice.waitForAccessLines(1);
    expect(line).toMatchObject({
      path: '/upload',
      status: 499,
      attempts: 1,
      error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
    });
    expect(sluice.logs.filter((l) => l.msg === 'upstream target temporarily disabled')).toEqual([]);
  });

  // It wrote no access line at all: the cut came after the instance had stopped logging.
  it('a handler that never answers is logged at the deadline', async () => {
    const module = join(handlers.path, 'hang.mjs');
    await writeFile(module, 'export default () => {};\n');
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ handler: module }] }],
    });
    const answer = send(sluice.port, { path: '/hang' });
    await until(() => sluice.instance.connections() === 1);
    await sluice.instance.close(300);
    expect((await answer).status).toBeNull();
    const [line] = await sluice.waitForAccessLines(1);
    expect(line).toMatchObject({ path: '/hang', status: 499, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' });
  });

  // Its sockets were only destroyed: the line came from their 'close' events, after the deadline
  // had run (101 with no error), or not at all when the worker exited first.
  it('an open WebSocket tunnel is logged when it is cut: 101, the error, its duration and bytes, once', async () => {
    // A target that answers 101 and echoes what the tunnel carries.
    const target = net.createServer((s) => {
      s.on('error', () => s.destroy());
      s.once('data', () => {
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        s.pipe(s);
      });
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [{ proxy: { url: `http://127.0.0.1:${(target.address() as AddressInfo).port}` } }],
        },
      ],
    });
    const client = net.connect(sluice.port, '127.0.0.1');
    client.on('error', () => undefined);
    let text = '';
    client.setEncoding('latin1');
    client.on('data', (d: string) => {
      text += d;
    });
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    const opened = Date.now();
    client.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await until(() => text.includes('101 Switching Protocols'));
    client.write('ping-0123456789');
    await until(() => text.endsWith('ping-0123456789'));
    await new Promise((r) => setTimeout(r, 200));
    await sluice.instance.close(300);
    await clientClosed;
    const lived = Date.now() - opened;
    // Written as the deadline cut it, before close() returned: a worker exits right after.
    expect(sluice.accessLines()).toMatchObject([
      { path: '/ws', status: 101, bytes_out: 15, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' },
    ]);
    const duration = sluice.accessLines()[0]!.duration_ms as number;
    expect(duration).toBeGreaterThanOrEqual(400); // 200 ms open, then the 300 ms deadline
    expect(duration).toBeLessThanOrEqual(lived + 50);
    // Once: the tunnel's own close, which follows, writes nothing more.
    await new Promise((r) => setTimeout(r, 200));
    expect(sluice.accessLines()).toHaveLength(1);
    await new Promise<void>((r) => target.close(() => r()));
  });

  // The egress listener drained after the servers, under a deadline of its own: 2 x
  // shutdown_timeout in all, past the primary's kill at shutdown_timeout + 5 s for 5 s or more,
  // so a worker died before logging its cut tunnels.
  it('a server request and an egress tunnel share one deadline, and both are logged', async () => {
    const echo = net.createServer((s) => {
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as AddressInfo).port;
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'be' } }] }],
      upstreams: { be: upstream() },
      egress: {
        listen: '127.0.0.1:0',
        policies: [{ name: 'local', sources: ['127.0.0.1/32'], hosts: ['127.0.0.1'] }],
      },
    });
    const before = slowA.seen.length + slowB.seen.length;
    const answer = send(sluice.port, { path: '/slow' });
    const tunnel = net.connect(sluice.instance.addresses().egress!.port, '127.0.0.1');
    tunnel.on('error', () => undefined);
    tunnel.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
    let head = '';
    tunnel.on('data', (d: Buffer) => {
      head += d.toString('latin1');
    });
    await until(() => slowA.seen.length + slowB.seen.length === before + 1 && head.includes('200'));
    const started = Date.now();
    // One after the other, the two took twice the deadline (2000 ms); side by side about 1000.
    await sluice.instance.close(1000);
    expect(Date.now() - started).toBeLessThan(1800);
    expect((await answer).status).toBeNull();
    expect(sluice.logs.filter((l) => l.msg === 'egress')).toMatchObject([
      { method: 'CONNECT', port: echoPort, status: 499, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' },
    ]);
    const [line] = await sluice.waitForAccessLines(1);
    expect(line).toMatchObject({ path: '/slow', status: 499, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' });
    await new Promise<void>((r) => echo.close(() => r()));
  });
});

describe('handler close() hooks at a stop', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir?.remove();
  });

  // Closed one after the other, the hook that never settled held the stop until the primary's
  // kill (deadline + 5 s), with nothing logged, and the hooks after it were never called.
  it('runs side by side within shutdown_timeout: one that hangs is logged and left, one that throws is logged, the rest run', async () => {
    const hang = join(dir.path, 'hang-close.mjs');
    const fail = join(dir.path, 'throw-close.mjs');
    const last = join(dir.path, 'last-close.mjs');
    await writeFile(
      hang,
      'export default () => {};\nexport function close() { return new Promise(() => {}); }\n',
    );
    await writeFile(
      fail,
      "export default () => {};\nexport function close() { throw new Error('close exploded'); }\n",
    );
    await writeFile(
      last,
      'export default () => {};\nexport function close() { globalThis.__lastClosed = (globalThis.__lastClosed ?? 0) + 1; }\n',
    );
    const g = globalThis as { __lastClosed?: number };
    g.__lastClosed = 0;
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { match: { path_prefix: '/a/' }, handler: hang },
            { match: { path_prefix: '/b/' }, handler: fail },
            { handler: last },
          ],
        },
      ],
    });
    const started = Date.now();
    const closed = await Promise.race([
      sluice.instance.close(1500).then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 6000)),
    ]);
    // Generous: the deadline is 1.5 s, and a stop that waited for the hook would never end.
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(g.__lastClosed).toBe(1);
    expect(sluice.logs.filter((l) => l.msg === 'handler close() failed')).toMatchObject([
      { level: 'error', module: fail, err: { message: 'close exploded' } },
    ]);
    expect(sluice.logs.filter((l) => /close\(\) did not settle/.test(String(l.msg)))).toMatchObject([
      { level: 'warn', module: hang, waited_ms: expect.any(Number) },
    ]);
  });
});

/** Polls `check` every 10 ms, for at most 5 s. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
