/**
 * WebSockets a Node listener accepts itself (`ws`'s handleUpgrade writes the 101 on the raw
 * socket) are logged and counted as proxied ones are: 101 when they close, or when
 * `shutdown_timeout` cuts them, with their duration and the bytes sent after the 101.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { openWebSocket as open } from '../helpers/websocket-client.js';

const APP = 'test/fixtures/handlers/websocket-listener-app.ts';
const RAW_APP = 'test/fixtures/handlers/raw-answer-app.ts';

/** A WebSocket handshake for `path`, with `key` as its Sec-WebSocket-Key. */
const handshake = (path: string, key = 'dGhlIHNhbXBsZSBub25jZQ==') =>
  `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;

const accessLine = (sluice: TestSluice, path: string) =>
  until(() => sluice.accessLines().find((l) => l.path === path), `the access line of ${path}`);

describe('a WebSocket a Node listener accepts', () => {
  let sluice: TestSluice;

  beforeAll(async () => {
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', handler: APP }] }],
    });
  });

  afterAll(async () => {
    await sluice?.close();
  });

  it('is logged and counted 101 when it closes, with the bytes sent after its head', async () => {
    const c = await open(`ws://127.0.0.1:${sluice.port}/chat`);
    // More than the 64 KB an upgrading client may send before its answer: the listener still
    // reads what follows (it stalled there).
    c.ws.send('x'.repeat(100_000));
    c.ws.send('hello');
    await until(() => (c.messages.length === 2 ? true : undefined), 'both echoes');
    expect(c.messages.map((m) => m.length)).toEqual([100_005, 10]);
    c.ws.close(1000);
    expect(await c.closed).toBe(1000);
    const line = await accessLine(sluice, '/chat');
    expect(line).toMatchObject({ status: 101, route: 'app' });
    expect(line.error).toBeUndefined();
    // The echo frames (10 + 100,005 and 2 + 10 bytes) and the close frame (2 + 2): not the head.
    expect(line.bytes_out).toBe(100_015 + 12 + 4);
    const counts = (await sluice.instance.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith('sluice_http_requests_total{'));
    expect(counts).toEqual([expect.stringMatching(/code="101"\} 1$/)]);
  }, 10_000);
});

describe('a WebSocket a Node listener accepted, at shutdown_timeout', () => {
  it('is logged 101 when it is cut, with the error, its duration and bytes', async () => {
    const sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', handler: APP }] }],
    });
    const opened = Date.now();
    const c = await open(`ws://127.0.0.1:${sluice.port}/held`);
    c.ws.send('ping');
    await until(() => (c.messages.length === 1 ? true : undefined), 'the echo');
    await sluice.instance.close(300);
    expect(await c.closed).toBe(1006);
    const lived = Date.now() - opened;
    expect(sluice.accessLines()).toMatchObject([
      { path: '/held', status: 101, bytes_out: 11, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' },
    ]);
    const duration = sluice.accessLines()[0]!.duration_ms as number;
    expect(duration).toBeGreaterThanOrEqual(300);
    expect(duration).toBeLessThanOrEqual(lived + 50);
  });
});

// nginx's send_timeout, as for a proxied tunnel: a client that sent but read nothing held the
// WebSocket, and all the app sent it queued in the worker, for good.
describe('a WebSocket a Node listener accepted, whose client reads nothing', () => {
  it('is closed after send_timeout and logged 101 with the error', async () => {
    const sluice = await startSluice({
      servers: [
        { listen: '127.0.0.1:0', limits: { send_timeout: '1s' }, routes: [{ name: 'app', handler: APP }] },
      ],
    });
    const client = net.connect({ port: sluice.port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    let closed = false;
    client.on('close', () => {
      closed = true;
    });
    try {
      await new Promise<void>((resolve) => {
        client.once('data', () => resolve());
        client.write(handshake('/reads-nothing'));
      });
      client.pause();
      // Binary frames of 1 MiB, masked with a zero key (so the payload is sent as is); each is
      // echoed, 32 MiB in all, more than the kernel buffers on the way hold.
      const frame = Buffer.concat([
        Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]),
        Buffer.alloc(1 << 20),
      ]);
      for (let i = 0; i < 32; i++) client.write(frame);
      const line = await until(
        () => sluice.accessLines().find((l) => l.path === '/reads-nothing'),
        'the access line',
        8000,
      );
      expect(line).toMatchObject({ status: 101, error: 'SLUICE_E_CLIENT_SEND_TIMEOUT' });
      // Read again, the client finds its connection closed (a paused socket sees no close).
      client.resume();
      await until(() => (closed ? true : undefined), 'the close', 8000);
    } finally {
      client.destroy();
      await sluice.close();
    }
  }, 20_000);
});

describe('an Upgrade request a Node listener answers on the raw socket', () => {
  let sluice: TestSluice;

  beforeAll(async () => {
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { name: 'raw', match: { path_prefix: '/raw/' }, handler: RAW_APP },
            { name: 'ws', handler: APP },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
  });

  it("is logged with the status of ws's refusal, which it ends the socket with", async () => {
    const answer = await rawRequest(sluice.port, handshake('/refused-by-ws', 'not a key'));
    expect(answer.status).toBe(400);
    const line = await accessLine(sluice, '/refused-by-ws');
    expect(line).toMatchObject({ status: 400, route: 'ws' });
    // As any answer of a Node listener on HTTP/1.1: every byte written for it, head included.
    expect(line.bytes_out).toBe(answer.text.length);
  });

  it('is logged with the status of a refusal written with socket.end()', async () => {
    const answer = await rawRequest(sluice.port, handshake('/raw/refused-with-end'));
    expect(answer.status).toBe(426);
    const line = await accessLine(sluice, '/raw/refused-with-end');
    expect(line).toMatchObject({ status: 426, bytes_out: answer.text.length });
  });

  it('counts the body of a refusal written in the same write as its head', async () => {
    const answer = await rawRequest(sluice.port, handshake('/raw/refused-with-body'));
    expect(answer.text).toMatch(/^HTTP\/1\.1 426 .*\r\n\r\nwhat\?\n$/s);
    const line = await accessLine(sluice, '/raw/refused-with-body');
    expect(line).toMatchObject({ status: 426, bytes_out: answer.text.length });
  });

  it('is logged 101 when the head of its 101 comes in pieces, with the bytes after that head', async () => {
    const answer = await rawRequest(sluice.port, handshake('/raw/head-in-pieces'));
    expect(answer.status).toBe(101);
    expect(answer.text.endsWith('\r\n\r\n\x81\x02hi')).toBe(true);
    const line = await accessLine(sluice, '/raw/head-in-pieces');
    expect(line).toMatchObject({ status: 101, bytes_out: 4 });
    expect(line.error).toBeUndefined();
  });

  it("keeps the listener's own wrapper of socket.write for every write", async () => {
    const answer = await rawRequest(sluice.port, handshake('/raw/wrapped-write'));
    expect(answer.status).toBe(101);
    expect(answer.text.endsWith('\r\n\r\nabcalls=3')).toBe(true);
    const line = await accessLine(sluice, '/raw/wrapped-write');
    expect(line).toMatchObject({ status: 101, bytes_out: 'abcalls=3'.length });
  });

  it('writes no 500 into the stream of a listener that throws after its 101, and closes it', async () => {
    const answer = await rawRequest(sluice.port, handshake('/throws'));
    expect(answer.closed).toBe(true);
    expect(answer.text).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(answer.text.endsWith('\r\n\r\n')).toBe(true);
    expect(answer.text).not.toContain('500');
    const line = await accessLine(sluice, '/throws');
    expect(line).toMatchObject({ status: 101, bytes_out: 0, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(sluice.logs.find((l) => l.request_id === line.request_id && l.msg !== 'request')).toMatchObject({
      level: 'error',
      err: { message: 'the listener failed after its 101' },
    });
  });
});
