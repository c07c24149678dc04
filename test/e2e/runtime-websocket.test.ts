/**
 * A WebSocket through a multi-process `sluice start` survives a rolling reload (contract section
 * 4: a reload takes effect "without dropping a request or a WebSocket"): the old worker drains,
 * the open socket keeps echoing through it until `shutdown_timeout`, and new connections go to
 * the new workers.
 */
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { alive, sleep, status, until } from '../helpers/runtime.js';

const SHUTDOWN_S = 4;

interface Socket {
  readonly ws: WebSocket;
  readonly messages: string[];
  readonly closed: Promise<{ code: number; at: number }>;
  isClosed(): boolean;
  /** Sends `text` and waits for its echo. */
  echo(text: string, timeoutMs?: number): Promise<string>;
}

function open(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    let isClosed = false;
    const closed = new Promise<{ code: number; at: number }>((r) =>
      ws.addEventListener('close', (e) => {
        isClosed = true;
        r({ code: e.code, at: Date.now() });
      }),
    );
    ws.addEventListener('message', (e) => messages.push(String(e.data)));
    ws.addEventListener('error', () => reject(new Error(`websocket ${url} failed`)));
    ws.addEventListener('open', () =>
      resolve({
        ws,
        messages,
        closed,
        isClosed: () => isClosed,
        echo: async (text, timeoutMs = 5000) => {
          ws.send(text);
          return until(
            () => messages.find((m) => m.endsWith(`:${text}`)),
            `the echo of ${text}`,
            timeoutMs,
            10,
          );
        },
      }),
    );
  });
}

describe('a WebSocket open across a rolling reload (workers 2 → 3)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let wss: WebSocketServer;
  let upstreamPort: number;
  let sluice: CliProcess;
  let port: number;
  let admin: number;

  const yaml = (workers: number) => `version: 1
workers: ${workers}
shutdown_timeout: ${SHUTDOWN_S}s
log: { level: info, access: stdout, format: json }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - name: ws
        match: { path_prefix: /ws }
        proxy: { upstream: echo }
upstreams:
  echo:
    targets:
      - url: http://127.0.0.1:${upstreamPort}
`;

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    upstreamPort = (wss.address() as AddressInfo).port;
    let n = 0;
    wss.on('connection', (ws) => {
      const id = ++n;
      ws.on('message', (data) => ws.send(`${id}:${data.toString()}`));
    });
    port = await freePort();
    admin = await freePort();
    await writeFile(join(tmp.path, 'sluice.yaml'), yaml(2));
    sluice = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
    await waitForPort(port, { proc: sluice, timeoutMs: 20_000 });
    await sluice.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
  });

  afterAll(async () => {
    await killAll();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    await tmp?.remove();
  });

  it('keeps echoing through the draining worker until shutdown_timeout; new sockets go to the new workers', async () => {
    const before = await status(admin);
    const oldPids = before.workers.map((w) => w.pid!);
    const first = await open(`ws://127.0.0.1:${port}/ws/first`);
    expect(await first.echo('before')).toMatch(/^\d+:before$/);
    const holder = await until(async () => {
      const s = await status(admin);
      return s.workers.find((w) => (w.connections ?? 0) > 0);
    }, 'the worker holding the WebSocket');
    expect(oldPids).toContain(holder.pid);

    await writeFile(join(tmp.path, 'sluice.yaml'), yaml(3));
    sluice.signal('SIGHUP');
    const [reloaded] = await sluice.waitForJson((l) => l.msg === 'config reloaded', 1, 20_000);
    const reloadedAt = Date.now();
    expect(reloaded).toMatchObject({ how: 'roll' });
    const after = await status(admin);
    expect(after.workers).toHaveLength(3);
    for (const w of after.workers) expect(oldPids).not.toContain(w.pid);
    // The new workers hold no connection yet: the open WebSocket stayed with its old worker.
    expect(after.workers.map((w) => w.connections)).toEqual([0, 0, 0]);

    // Still open, still echoing, through the draining worker, for most of shutdown_timeout.
    for (let i = 0; i < 5; i++) {
      expect(first.isClosed()).toBe(false);
      expect(await first.echo(`after-${i}`)).toMatch(new RegExp(`^\\d+:after-${i}$`));
      expect(alive(holder.pid!)).toBe(true);
      await sleep(400);
    }
    expect(Date.now() - reloadedAt).toBeLessThan(SHUTDOWN_S * 1000);

    // A new WebSocket goes to a new worker.
    const second = await open(`ws://127.0.0.1:${port}/ws/second`);
    expect(await second.echo('new')).toMatch(/^\d+:new$/);
    const now = await status(admin);
    expect(now.workers.reduce((n, w) => n + (w.connections ?? 0), 0)).toBe(1);

    // At shutdown_timeout the old worker closes what is left and exits; the new socket stays.
    const { at } = await first.closed;
    const closedAfter = at - reloadedAt;
    console.log(
      `WebSocket across a rolling reload: closed by the old worker ${closedAfter} ms after the reload (shutdown_timeout ${SHUTDOWN_S} s)`,
    );
    expect(closedAfter).toBeGreaterThanOrEqual(SHUTDOWN_S * 1000 - 500);
    expect(closedAfter).toBeLessThan(SHUTDOWN_S * 1000 + 5000);
    await until(() => (alive(holder.pid!) ? undefined : true), 'the old worker to exit', 10_000);
    // The cut socket's access line, written by the old worker before it exited (there was none):
    // the 101 its client got, the cut, and the time it was open.
    const cut = sluice.jsonLines().filter((l) => l.msg === 'request' && l.path === '/ws/first');
    expect(cut).toMatchObject([
      {
        pid: holder.pid,
        status: 101,
        error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
        bytes_out: expect.any(Number),
      },
    ]);
    expect(cut[0]!.duration_ms).toBeGreaterThanOrEqual(SHUTDOWN_S * 1000 - 500);
    expect(cut[0]!.bytes_out).toBeGreaterThan(0);
    expect(second.isClosed()).toBe(false);
    expect(await second.echo('still')).toMatch(/^\d+:still$/);
    second.ws.close();
    await second.closed;
  }, 40_000);
});
