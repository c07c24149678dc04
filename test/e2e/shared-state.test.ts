/**
 * Two sluice nodes (built CLI; one with 2 workers, one with 1) sharing rate limits and bans
 * through a real redis-server started here on a free port: a client's bucket is one bucket across
 * both nodes, a ban made on one node is enforced by the other and lifted on both; with Redis
 * stopped both nodes keep serving on local state (logged once per process), and when Redis comes
 * back a ban made in the meantime reaches the other node.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { startRedis, stopRedis } from '../helpers/redis.js';
import { until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

const run = promisify(execFile);

const OPS = 'ops-token-for-shared-state';

async function get(port: number, path: string, client: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { 'x-forwarded-for': client } });
  await res.body.dump();
  return res.statusCode;
}

/** Waits until `port` answers `client` 403: a ban on it in force there. */
function enforcing(port: number, client: string, what: string, timeoutMs = 5000): Promise<true> {
  return until(async () => ((await get(port, '/ok', client)) === 403 ? true : undefined), what, timeoutMs);
}

describe('shared state through Redis (two nodes)', () => {
  let up: TestUpstream;
  let redis: ChildProcess;
  let redisPort: number;
  let dir: string;
  const nodes: { proc: CliProcess; port: number; admin: number }[] = [];

  const config = (port: number, admin: number, workers: number) => `workers: ${workers}
log: { access: off }
state: { redis: "redis://127.0.0.1:${redisPort}/0" }
admin:
  listen: "127.0.0.1:${admin}"
  tokens: [{ name: ops, role: operator, token_env: SLUICE_TEST_OPS }]
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    trusted_proxies: [127.0.0.1]
    ban: { statuses: [404], max: 3, window: 1m, duration: 10m }
    routes:
      - name: limited
        match: { path_prefix: /limited/ }
        rate_limit: { rate: 1/m, burst: 4 }
        proxy: { upstream: app }
      - match: { path: /ok }
        proxy: { upstream: app }
upstreams:
  app:
    targets: [{ url: "${up.url}" }]
`;

  const bans = async (admin: number) => {
    const res = await request(`http://127.0.0.1:${admin}/api/bans`, {
      headers: { authorization: `Bearer ${OPS}` },
    });
    return ((await res.body.json()) as { bans: { address: string }[] }).bans.map((b) => b.address);
  };

  const admin = async (port: number, path: string) => {
    const res = await request(`http://127.0.0.1:${port}${path}`, {
      headers: { authorization: `Bearer ${OPS}` },
    });
    return res.body.text();
  };
  const redisState = async (port: number) =>
    (JSON.parse(await admin(port, '/api/status')) as { state: { redis: string } }).state.redis;
  const upGauge = async (port: number) =>
    /^sluice_shared_state_up (\d+)$/m.exec(await admin(port, '/metrics'))?.[1] ?? null;

  beforeAll(async () => {
    up = await startUpstream();
    dir = (await tempDir()).path;
    redisPort = await freePort();
    redis = await startRedis(redisPort, dir);
    for (const workers of [2, 1]) {
      const port = await freePort();
      const admin = await freePort();
      const file = join(dir, `node-${workers}.yaml`);
      await writeFile(file, config(port, admin, workers));
      const proc = spawnCli(['start', '-c', file], { env: { SLUICE_TEST_OPS: OPS } });
      nodes.push({ proc, port, admin });
    }
    for (const n of nodes) {
      await waitForPort(n.port, { proc: n.proc });
      await n.proc.waitForJson((l) => l.msg === 'sluice started');
    }
  });

  afterAll(async () => {
    for (const n of nodes) n.proc.signal('SIGTERM');
    await Promise.all(nodes.map((n) => n.proc.waitForExit(10_000).catch(() => undefined)));
    await killAll();
    if (redis !== undefined) await stopRedis(redis);
    await up?.close();
  });

  it('shares one token bucket per client across both nodes', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const client = '198.51.100.20';
    // burst 4: five requests in all, wherever they land; on one node alone each would allow five.
    const answers = [
      await get(a.port, '/limited/1', client),
      await get(a.port, '/limited/2', client),
      await get(b.port, '/limited/3', client),
      await get(a.port, '/limited/4', client),
      await get(b.port, '/limited/5', client),
      await get(b.port, '/limited/6', client),
      await get(a.port, '/limited/7', client),
    ];
    expect(answers).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(await get(b.port, '/limited/8', '198.51.100.21')).toBe(200);
  });

  it('enforces a ban made on one node on the other, and lifts it on both', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const scanner = '203.0.113.50';
    for (const path of ['/.env', '/.git/config', '/wp-login.php'])
      expect(await get(a.port, path, scanner)).toBe(404);
    await enforcing(b.port, scanner, 'node B enforcing the ban');
    expect(await get(a.port, '/ok', scanner)).toBe(403);
    expect(await bans(b.admin)).toContain(scanner);

    const lifted = await request(`http://127.0.0.1:${b.admin}/api/bans/${scanner}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${OPS}` },
    });
    expect(lifted.statusCode).toBe(200);
    await lifted.body.dump();
    await until(
      async () => ((await get(a.port, '/ok', scanner)) === 200 ? true : undefined),
      'node A lifting the ban',
      5000,
    );
    expect(await get(b.port, '/ok', scanner)).toBe(200);
    expect(await bans(a.admin)).not.toContain(scanner);
  });

  it('says whether Redis is up in /api/status and sluice_shared_state_up', async () => {
    for (const n of nodes) {
      expect(await redisState(n.admin)).toBe('up');
      expect(await upGauge(n.admin)).toBe('1');
      expect(await admin(n.admin, '/metrics')).toMatch(
        /^sluice_shared_state_failures_total\{reason="timeout"\} \d+$/m,
      );
    }
  });

  it('stays up when Redis closes idle clients (its `timeout`), with the workers idle', async () => {
    const redisCli = async (...args: string[]) =>
      (await run('redis-cli', ['-p', String(redisPort), ...args])).stdout.trim();
    const downLines = (n: (typeof nodes)[0]) =>
      n.proc.jsonLines().filter((l) => /Redis (still )?unreachable/.test(String(l.msg))).length;
    const before = nodes.map(downLines);
    // Managed Redis closes idle clients (Azure after about 10 min). Only the primaries wrote to
    // Redis while nothing was served: every idle worker's connection was closed, each close an
    // outage (warned, the gauge at 0, about 3 s on local buckets).
    await redisCli('CONFIG', 'SET', 'timeout', '2');
    try {
      await new Promise((r) => setTimeout(r, 8000));
      for (const [i, n] of nodes.entries()) {
        expect(downLines(n)).toBe(before[i]);
        expect(await redisState(n.admin)).toBe('up');
        expect(await upGauge(n.admin)).toBe('1');
      }
    } finally {
      await redisCli('CONFIG', 'SET', 'timeout', '0');
    }
  }, 20_000);

  it('says Redis is down while it hangs, with no traffic at all, and as soon as a worker finds it read-only', async () => {
    const b = nodes[1]!;
    const redisCli = async (...args: string[]) =>
      (await run('redis-cli', ['-p', String(redisPort), ...args])).stdout.trim();
    const upAgain = async () => {
      for (const n of nodes)
        await until(
          async () => ((await redisState(n.admin)) === 'up' ? true : undefined),
          'Redis up again',
          15_000,
        );
    };

    // Hung, and no request served meanwhile: the primaries sent Redis nothing and said up throughout.
    redis.kill('SIGSTOP');
    try {
      for (const n of nodes) {
        await until(
          async () => ((await redisState(n.admin)) === 'down' ? true : undefined),
          'Redis down while it hangs',
          10_000,
        );
        expect(await upGauge(n.admin)).toBe('0');
      }
    } finally {
      redis.kill('SIGCONT');
    }
    await upAgain();

    // Read-only (a failover): node B's worker finds out from its first rate-limited requests. The
    // primary alone needs 3 heartbeats (2 s at the least); the node says down now, as its worker does.
    await redisCli('REPLICAOF', '127.0.0.1', String(await freePort()));
    try {
      const since = Date.now();
      for (let i = 0; i < 5; i++) expect(await get(b.port, '/limited/ro', `198.51.100.${170 + i}`)).toBe(200);
      expect(await redisState(b.admin)).toBe('down');
      expect(await upGauge(b.admin)).toBe('0');
      expect(Date.now() - since).toBeLessThan(2000);
    } finally {
      await redisCli('REPLICAOF', 'NO', 'ONE');
    }
    await upAgain();
  }, 60_000);

  it('starts a worker with the bans in force: one restarted after a crash, and every one of a node started later', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const scanner = '203.0.113.40';
    for (const path of ['/s1', '/s2', '/s3']) expect(await get(a.port, path, scanner)).toBe(404);
    await enforcing(b.port, scanner, 'node B enforcing the ban');
    // A worker's lines reach the pipe on their own schedule, maybe after the primary's.
    const readyBans = async (proc: CliProcess, pid: number) =>
      (await proc.waitForJson((l) => l.msg === 'worker ready' && l.pid === pid))[0]?.bans;

    // A worker of node A dies: the one started in its place holds the ban from its first request.
    const status = JSON.parse(await admin(a.admin, '/api/status')) as { workers: { pid: number }[] };
    const victim = status.workers[0]!.pid;
    process.kill(victim, 'SIGKILL');
    const [restarted] = await a.proc.waitForJson((l) => l.msg === 'worker restarted', 1, 20_000);
    expect(await readyBans(a.proc, restarted!.worker_pid as number)).toBeGreaterThanOrEqual(1);

    // A third node started now reads the bans Redis holds before its workers serve.
    const port = await freePort();
    const adminPort = await freePort();
    const file = join(dir, 'node-late.yaml');
    await writeFile(file, config(port, adminPort, 2));
    const late = spawnCli(['start', '-c', file], { env: { SLUICE_TEST_OPS: OPS } });
    try {
      await waitForPort(port, { proc: late });
      await late.waitForJson((l) => l.msg === 'sluice started');
      const ready = await late.waitForJson((l) => l.msg === 'worker ready', 2);
      for (const line of ready) expect(line.bans).toBeGreaterThanOrEqual(1);
      expect(await get(port, '/ok', scanner)).toBe(403);
    } finally {
      late.signal('SIGTERM');
      await late.waitForExit(10_000).catch(() => undefined);
    }
  }, 60_000);

  it('keeps serving when Redis stops, and shares a ban made meanwhile once Redis is back', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const downLines = (n: (typeof nodes)[0]) =>
      n.proc.jsonLines().filter((l) => l.msg === 'shared state: Redis unreachable; serving with local state')
        .length;
    // Outages of the tests before this one.
    const before = nodes.map(downLines);
    await stopRedis(redis);
    for (const n of nodes) {
      await until(
        async () => ((await redisState(n.admin)) === 'down' ? true : undefined),
        'Redis down in /api/status',
      );
      expect(await upGauge(n.admin)).toBe('0');
    }
    // Traffic goes on: plain requests, rate-limited ones (local buckets now), and bans counted locally.
    for (let i = 0; i < 20; i++) {
      expect(await get(a.port, '/ok', `198.51.100.${100 + (i % 5)}`)).toBe(200);
      expect(await get(b.port, '/ok', `198.51.100.${100 + (i % 5)}`)).toBe(200);
    }
    expect(await get(a.port, '/limited/x', '198.51.100.30')).toBe(200);
    for (const n of nodes) {
      const [down] = await n.proc.waitForJson(
        (l) => l.msg === 'shared state: Redis unreachable; serving with local state',
      );
      // Why, even when the server went away without an error on the connection.
      expect(down?.err).toEqual(expect.any(String));
    }
    const scanner = '203.0.113.60';
    for (const path of ['/a', '/b', '/c']) expect(await get(a.port, path, scanner)).toBe(404);
    await enforcing(a.port, scanner, 'node A banning locally');
    expect(await get(b.port, '/ok', scanner)).toBe(200);

    // Down once, reported once per process (primary and workers), not once per request.
    expect(downLines(a) - before[0]!).toBeLessThanOrEqual(3);
    expect(downLines(b) - before[1]!).toBeLessThanOrEqual(2);

    redis = await startRedis(redisPort, dir);
    await enforcing(b.port, scanner, 'node B learning the ban', 10_000);
    await a.proc.waitForJson((l) => l.msg === 'shared state: Redis is back; resynchronising');
    await until(
      async () => ((await redisState(a.admin)) === 'up' ? true : undefined),
      'Redis up in /api/status',
    );
    expect(await upGauge(a.admin)).toBe('1');
    const output = nodes.map((n) => n.proc.stdout() + n.proc.stderr()).join('');
    expect(output).not.toContain(OPS);
  });

  const unban = async (admin: number, address: string) => {
    const res = await request(`http://127.0.0.1:${admin}/api/bans/${encodeURIComponent(address)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${OPS}` },
    });
    expect(res.statusCode).toBe(200);
    return (await res.body.json()) as { lifted: number };
  };

  const banOn = async (node: (typeof nodes)[0], other: (typeof nodes)[0], scanner: string) => {
    for (const path of ['/x1', '/x2', '/x3']) expect(await get(node.port, path, scanner)).toBe(404);
    await enforcing(other.port, scanner, 'the other node enforcing the ban');
  };

  it('stops waiting on a Redis that hangs, and an unban made meanwhile reaches Redis and every node', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const scanner = '203.0.113.70';
    // Every process of node B is back from the last outage (up again after 3 probes in a row), so
    // its worker asks Redis, not its local buckets.
    const count = (msg: string) => b.proc.jsonLines().filter((l) => l.msg === msg).length;
    await until(
      () =>
        count('shared state: Redis is back; resynchronising') >=
        count('shared state: Redis unreachable; serving with local state')
          ? true
          : undefined,
      'node B back from the last outage',
      10_000,
    );
    await banOn(a, b, scanner);

    redis.kill('SIGSTOP');
    try {
      // Each rate-limited request asks Redis; the first ones wait for the 250 ms command timeout,
      // then the worker counts Redis as down. 20 requests that all waited would take 5 s.
      const started = Date.now();
      for (let i = 0; i < 20; i++) expect(await get(b.port, '/limited/h', `198.51.100.${150 + i}`)).toBe(200);
      expect(Date.now() - started).toBeLessThan(3000);
      const [down] = await b.proc.waitForJson(
        (l) =>
          l.msg === 'shared state: Redis unreachable; serving with local state' &&
          l.err === '3 commands in a row timed out',
      );
      expect(down).toBeDefined();

      // The unban cannot reach Redis: lifted on this node now, on the others once Redis answers.
      expect((await unban(b.admin, scanner)).lifted).toBe(1);
      expect(await get(b.port, '/ok', scanner)).toBe(200);
      // The retry of the unban (every 10 s) fails too while Redis hangs: the node serves on.
      await new Promise((r) => setTimeout(r, 11_000));
      expect(b.proc.exited()).toBeNull();
      expect(await get(b.port, '/ok', scanner)).toBe(200);
    } finally {
      redis.kill('SIGCONT');
    }
    await until(
      async () => ((await get(a.port, '/ok', scanner)) === 200 ? true : undefined),
      'node A lifting the ban once Redis answers',
      15_000,
    );
    expect(await get(b.port, '/ok', scanner)).toBe(200);
    expect(await bans(a.admin)).not.toContain(scanner);
    expect(await bans(b.admin)).not.toContain(scanner);
  }, 60_000);

  it('does not bring back, after an outage, a ban lifted during it', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const scanner = '203.0.113.80';
    await banOn(a, b, scanner);
    await stopRedis(redis);
    // Node B lifts it; node A cannot hear of it and keeps its own copy of the ban.
    expect((await unban(b.admin, scanner)).lifted).toBe(1);
    expect(await get(b.port, '/ok', scanner)).toBe(200);
    expect(await get(a.port, '/ok', scanner)).toBe(403);

    const back = (n: (typeof nodes)[0]) =>
      n.proc.jsonLines().filter((l) => l.msg === 'shared state: Redis is back; resynchronising').length;
    const before = nodes.map(back);
    redis = await startRedis(redisPort, dir);
    // Node A writes its copy back to Redis when it resynchronises; node B's unban (with its time)
    // lifts it wherever it went, in whichever order the two nodes come back.
    await until(
      async () => ((await get(a.port, '/ok', scanner)) === 200 ? true : undefined),
      'node A lifting the ban after the outage',
      25_000,
    );
    await until(
      () => (nodes.every((n, i) => back(n) > (before[i] ?? 0)) ? true : undefined),
      'both nodes back',
      10_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await get(a.port, '/ok', scanner)).toBe(200);
    expect(await get(b.port, '/ok', scanner)).toBe(200);
    expect(await bans(a.admin)).not.toContain(scanner);
    expect(await bans(b.admin)).not.toContain(scanner);
    // Both nodes reconnect (backing off up to 2 s) and are back after 3 probes in a row before the
    // unban reaches node A: on a loaded machine that took more than 15 s once.
  }, 60_000);

  it('refuses an unban of what is no address, and matches an address exactly', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await banOn(a, b, '203.0.113.91');
    // Neither is an address: refused, and nothing lifted.
    for (const text of ['*', '1']) {
      const res = await request(`http://127.0.0.1:${a.admin}/api/bans/${encodeURIComponent(text)}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${OPS}` },
      });
      expect(res.statusCode).toBe(400);
      expect(((await res.body.json()) as { code: string }).code).toBe('SLUICE_E_ADMIN_BAD_ADDRESS');
    }
    expect(await bans(a.admin)).toContain('203.0.113.91');
    expect(await get(b.port, '/ok', '203.0.113.91')).toBe(403);
    expect((await unban(a.admin, '203.0.113.91')).lifted).toBe(1);
  });
});

describe('a node started while its Redis refuses connections', () => {
  it('starts without waiting for the bans, serves on local state, and says Redis is down', async () => {
    const up = await startUpstream();
    const dir = (await tempDir()).path;
    const [port, admin, closed] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'alone.yaml');
    await writeFile(
      file,
      `workers: 1
log: { access: off }
state: { redis: "redis://127.0.0.1:${closed}/0" }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - match: { path: /ok }
        proxy: { upstream: app }
upstreams:
  app:
    targets: [{ url: "${up.url}" }]
`,
    );
    const proc = spawnCli(['start', '-c', file]);
    try {
      await proc.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
      // Refused at once: the wait for the bans ends then (reason down), not at its 3 s bound (timeout).
      const notRead = proc.jsonLines().filter((l) => String(l.msg).includes('were not read before start'));
      expect(notRead).toMatchObject([{ level: 'warn', reason: 'down' }]);
      expect(await get(port, '/ok', '198.51.100.1')).toBe(200);
      const res = await request(`http://127.0.0.1:${admin}/api/status`);
      expect(((await res.body.json()) as { state: unknown }).state).toEqual({ redis: 'down' });
    } finally {
      proc.signal('SIGTERM');
      await proc.waitForExit(10_000).catch(() => undefined);
      await up.close();
    }
  });
});
