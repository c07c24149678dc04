/**
 * A client that leaves while its request waits on a guard answered by Redis (a shared rate limit):
 * the request is logged 499 and never forwarded. Acted on after the client had gone, the proxied
 * attempt registered for a 'close' that had already happened and waited for ever on an answer
 * nobody read: no access line, and an upstream connection held.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, tempDir } from '../helpers/cli.js';
import { startRedis, stopRedis } from '../helpers/redis.js';
import { get, sleep, until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);

describe('a client that leaves while a shared rate limit is asked of Redis', () => {
  let redis: ChildProcess;
  let redisPort: number;
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort, (await tempDir('sluice-guard-gone-')).path);
    up = await startUpstream();
    sluice = await startSluice({
      state: { redis: `redis://127.0.0.1:${redisPort}/0` },
      servers: [
        {
          listen: '127.0.0.1:0',
          rate_limit: { rate: '1000/s', burst: 1000 },
          routes: [{ proxy: { url: up.url } }],
        },
      ],
    });
    // Until Redis is connected the limit is local, and answered at once.
    await until(async () => {
      const info = (await run('redis-cli', ['-p', String(redisPort), 'INFO', 'clients'])).stdout;
      return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0) > 1 ? true : undefined;
    }, 'sluice connected to Redis');
    expect((await get(sluice.port, '/ready')).status).toBe(200);
  }, 20_000);

  afterAll(async () => {
    await sluice?.close();
    await up?.close();
    if (redis) await stopRedis(redis);
  });

  it('is logged 499 and never reaches the upstream', async () => {
    up.seen.length = 0;
    // Scripts wait while writes are paused: the limit's answer comes up to 2 s later.
    await run('redis-cli', ['-p', String(redisPort), 'CLIENT', 'PAUSE', '2000', 'WRITE']);
    const socket = net.connect(sluice.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('GET /gone HTTP/1.1\r\nHost: a\r\n\r\n');
    await sleep(200);
    socket.destroy();
    const line = await until(
      () => sluice.accessLines().find((l) => l.path === '/gone'),
      'the access line of /gone',
      5000,
    );
    expect(line.status).toBe(499);
    await sleep(200);
    expect(up.seen.map((s) => s.url)).not.toContain('/gone');
    expect(sluice.instance.handles().inflight).toEqual([]);
  }, 15_000);
});
