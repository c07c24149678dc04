/**
 * WebSockets a Node listener accepts itself (`ws`'s handleUpgrade writes the 101 on the raw
 * socket) are logged and counted as proxied ones are: 101 when they close, or when
 * `shutdown_timeout` cuts them, with their duration and the bytes sent after the 101.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { openWebSocket as open } from '../helpers/websocket-client.js';

const APP = 'test/fixtures/handlers/websocket-listener-app.ts';

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
