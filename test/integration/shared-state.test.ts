/**
 * The Redis shared state against a real redis-server started here on a free port: the strike
 * script, the ban manager's writes to Redis, how failures are counted and what is logged.
 */

import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedBan, ResolvedRateLimit } from '../../src/config/types.js';
import { type BanEvent, BanManager } from '../../src/security/ban-manager.js';
import { SharedRateLimiter } from '../../src/security/rate-limiter.js';
import { SharedState, whyFailed } from '../../src/security/shared-state.js';
import { freePort, tempDir } from '../helpers/cli.js';
import { startRedis, stopRedis } from '../helpers/redis.js';
import { until } from '../helpers/runtime.js';

const run = promisify(execFile);

/** A log that keeps its lines. */
function memoryLog() {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  return {
    lines,
    warn: (obj: object, msg: string) => void lines.push({ level: 'warn', msg, obj: obj as never }),
    info: (obj: object, msg: string) => void lines.push({ level: 'info', msg, obj: obj as never }),
    error: (obj: object, msg: string) => void lines.push({ level: 'error', msg, obj: obj as never }),
  };
}

const RULE: ResolvedBan = {
  statuses: [404],
  max: 3,
  windowMs: 60_000,
  durationMs: 600_000,
  per: 'address',
  level: 'server',
} as ResolvedBan;

describe('shared state in Redis', () => {
  let redis: ChildProcess;
  let port: number;
  const closing: (() => unknown)[] = [];

  const redisCli = async (...args: string[]) =>
    (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();

  /** A connection to database `db`, named in the URL's path (`/2`) or its query (`?db=2`). */
  const connect = (db = 0, form: 'path' | 'query' = 'path') => {
    const log = memoryLog();
    const failures: string[] = [];
    const url = form === 'path' ? `redis://127.0.0.1:${port}/${db}` : `redis://127.0.0.1:${port}?db=${db}`;
    const state = new SharedState(url, log, {
      failure: (reason) => failures.push(reason),
    });
    closing.push(() => state.close());
    return { state, log, failures };
  };
  const lines = (log: ReturnType<typeof memoryLog>, msg: string) => log.lines.filter((l) => l.msg === msg);
  const DOWN = 'shared state: Redis unreachable; serving with local state';
  const BACK = 'shared state: Redis is back; resynchronising';

  const manager = (state: SharedState, log = memoryLog(), rule = RULE) => {
    const events: BanEvent[] = [];
    const m = new BanManager(state, log, (e) => events.push(e));
    m.setRules(new Map([['web', rule]]));
    closing.push(() => m.close());
    return { m, events, log };
  };

  const upNow = (state: SharedState) => until(() => (state.up ? true : undefined), 'Redis up', 10_000);

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port, (await tempDir()).path);
  });

  afterEach(async () => {
    for (const f of closing.splice(0).reverse()) await f();
    await redisCli('FLUSHALL');
  });

  afterAll(async () => {
    if (redis !== undefined) await stopRedis(redis);
  });

  it('starts the strike count again from 0 once a ban is issued', async () => {
    const { state } = connect();
    await upNow(state);
    const { m, events } = manager(state);
    for (let i = 0; i < 3; i++) m.strike('web', '203.0.113.1');
    await until(() => (events.length > 0 ? true : undefined), 'the ban');
    expect(events[0]?.type).toBe('ban');
    // The sorted set of strikes is gone with the ban: the next strikes count from 0, as locally.
    expect(await redisCli('EXISTS', 'sluice:strikes:web:203.0.113.1')).toBe('0');
  });

  it('counts every strike sent in the same millisecond, from one node or two', async () => {
    const { state } = connect();
    await upNow(state);
    const other = connect();
    await upNow(other.state);
    const rule = { ...RULE, max: 1000 };
    const a = manager(state, memoryLog(), rule).m;
    const b = manager(other.state, memoryLog(), rule).m;
    const now = Date.now();
    // One process's pid and clock were the only tag: strikes of the same millisecond were one.
    for (let i = 0; i < 10; i++) {
      a.strike('web', '203.0.113.2', 1, now);
      b.strike('web', '203.0.113.2', 1, now);
    }
    await until(
      async () => ((await redisCli('ZCARD', 'sluice:strikes:web:203.0.113.2')) === '20' ? true : undefined),
      '20 strikes counted',
      5000,
    ).catch(async () => expect(await redisCli('ZCARD', 'sluice:strikes:web:203.0.113.2')).toBe('20'));
  });

  it("says a command sent while the connection is down is not connected, not ioredis's option name", async () => {
    const { state } = connect();
    await upNow(state);
    state.redis.disconnect();
    const err = await state.redis.get('x').then(
      () => null,
      (e: unknown) => e,
    );
    // The log said "Stream isn't writeable and enableOfflineQueue options is false".
    expect(whyFailed(err)).toBe('not connected (reconnecting)');
    expect(whyFailed(new Error('NOAUTH Authentication required.'))).toBe('NOAUTH Authentication required.');
  });

  it('logs no "Redis unreachable" when the connection is closed on purpose', async () => {
    const { state, log } = connect();
    await upNow(state);
    closing.pop();
    await state.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('counts error replies (a read-only replica) as failures: down after 3, up once writes work again', async () => {
    const { state, log, failures } = connect();
    await upNow(state);
    // A master turned replica (a failover) answers every write -READONLY while the connection stays.
    await redisCli('REPLICAOF', '127.0.0.1', String(await freePort()));
    try {
      for (let i = 0; i < 3; i++)
        await expect(state.take('sluice:rl:web:x', 1, 5)).rejects.toThrow(/READONLY/);
      expect(failures).toEqual(['error', 'error', 'error']);
      expect(state.up).toBe(false);
      expect(lines(log, DOWN)).toHaveLength(1);
      expect(lines(log, DOWN)[0]?.obj.err).toMatch(/3 commands in a row failed.*READONLY/);
    } finally {
      await redisCli('REPLICAOF', 'NO', 'ONE');
    }
    await upNow(state);
    expect(lines(log, BACK)).toHaveLength(1);
    // The probes that found Redis still read-only count too.
    expect(failures.slice(3).every((r) => r === 'error')).toBe(true);
    expect(await state.take('sluice:rl:web:x', 1, 5)).toEqual([1, expect.any(String)]);
  });

  it('finds a read-only Redis with a heartbeat when asked for one, without any command from its owner', async () => {
    const log = memoryLog();
    const failures: string[] = [];
    const state = new SharedState(`redis://127.0.0.1:${port}/0`, log, {
      failure: (reason) => failures.push(reason),
      heartbeat: true,
    });
    closing.push(() => state.close());
    // Without one (the workers), an idle connection sends only PINGs, which a read-only Redis
    // answers: it stays up.
    const quiet = connect();
    await upNow(state);
    await upNow(quiet.state);
    await redisCli('REPLICAOF', '127.0.0.1', String(await freePort()));
    try {
      // 3 beats, one a second.
      await until(() => (state.up ? undefined : true), 'down from its heartbeat', 5000);
      expect(lines(log, DOWN)[0]?.obj.err).toMatch(/3 commands in a row failed.*READONLY/);
      expect(failures.slice(0, 3)).toEqual(['error', 'error', 'error']);
      expect(quiet.state.up).toBe(true);
    } finally {
      await redisCli('REPLICAOF', 'NO', 'ONE');
    }
    await upNow(state);
  });

  it('waits at start up to its bound for a Redis that takes connections but does not answer, and reads its bans once it does', async () => {
    const until_ = Date.now() + 600_000;
    await redisCli('SET', 'sluice:ban:web:203.0.113.11', String(until_), 'PX', '600000');
    // Stopped: the kernel still takes connections, nothing answers; one 250 ms timeout ended the
    // wait after about 0.9 s as if Redis had refused, and the node started without the ban.
    redis.kill('SIGSTOP');
    const resume = setTimeout(() => redis.kill('SIGCONT'), 1600);
    try {
      const { state } = connect();
      const { m } = manager(state);
      const started = Date.now();
      expect(await m.loaded(3000)).toBe('loaded');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      expect(m.all().map((b) => b.address)).toContain('203.0.113.11');
    } finally {
      clearTimeout(resume);
      redis.kill('SIGCONT');
    }

    // Stopped for longer than the bound: the wait ends at it, as a timeout.
    redis.kill('SIGSTOP');
    try {
      const { state } = connect();
      const { m } = manager(state);
      const started = Date.now();
      expect(await m.loaded(3000)).toBe('timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    } finally {
      redis.kill('SIGCONT');
    }
  });

  it('ends the wait at start at once when Redis refuses connections', async () => {
    const log = memoryLog();
    const state = new SharedState(`redis://127.0.0.1:${await freePort()}/0`, log);
    closing.push(() => state.close());
    const { m } = manager(state);
    const started = Date.now();
    expect(await m.loaded(3000)).toBe('down');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('says why Redis refused the login: a wrong password, or none where one is needed', async () => {
    const reason = async (url: string) => {
      const log = memoryLog();
      const state = new SharedState(url, log);
      closing.push(() => state.close());
      expect(await state.first).toBe(false);
      const [line] = lines(log, DOWN);
      // It said "the connection was closed": ioredis closes it after the error reply.
      return String(line?.obj.err);
    };
    await redisCli('ACL', 'SETUSER', 'sluice-test', 'on', '>right-pw-7c1d', '~*', '&*', '+@all');
    try {
      expect(await reason(`redis://sluice-test:wrong-pw-7c1d@127.0.0.1:${port}/0`)).toMatch(/^WRONGPASS/);
    } finally {
      await redisCli('ACL', 'DELUSER', 'sluice-test');
    }
    await redisCli('CONFIG', 'SET', 'requirepass', 'needed-pw-7c1d');
    try {
      expect(await reason(`redis://127.0.0.1:${port}/0`)).toMatch(/^NOAUTH/);
    } finally {
      await redisCli('-a', 'needed-pw-7c1d', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
    }
  });

  it('ignores a ban announced or stored with an end no date can hold, and takes the valid ones', async () => {
    // Past the ±8.64e15 ms a Date holds: enforced, it made GET /api/bans a 500 (toISOString threw).
    await redisCli('SET', 'sluice:ban:web:203.0.113.21', '99999999999999999', 'PX', '600000');
    await redisCli('SET', 'sluice:ban:web:203.0.113.22', String(Date.now() + 600_000), 'PX', '600000');
    const { state } = connect();
    await upNow(state);
    const { m, events } = manager(state);
    const banned = (address: string) =>
      until(
        () => (events.some((e) => e.type === 'ban' && e.ban.address === address) ? true : undefined),
        `the ban of ${address}`,
      );
    await banned('203.0.113.22');
    await until(
      async () => ((await redisCli('PUBSUB', 'NUMSUB', 'sluice:bans')).endsWith('1') ? true : undefined),
      'subscribed',
    );
    const announce = (text: string) => redisCli('PUBLISH', 'sluice:bans', text);
    await announce('{"type":"ban","ban":{"scope":"web","address":"203.0.113.23","until":99999999999999999}}');
    // JSON.parse reads 1e999 as Infinity.
    await announce('{"type":"ban","ban":{"scope":"web","address":"203.0.113.24","until":1e999}}');
    await announce('{"type":"ban","ban":{"scope":"web","address":"203.0.113.25","until":"soon"}}');
    // Delivered in order: once this one is in, the others were read.
    await announce(
      JSON.stringify({
        type: 'ban',
        ban: { scope: 'web', address: '203.0.113.26', until: Date.now() + 600_000 },
      }),
    );
    await banned('203.0.113.26');
    expect(
      m
        .all()
        .map((b) => b.address)
        .sort(),
    ).toEqual(['203.0.113.22', '203.0.113.26']);
    for (const ban of m.all()) expect(new Date(ban.until).toISOString()).toEqual(expect.any(String));
  });

  it("keeps an idle connection open past Redis's idle-client timeout, with no outage", async () => {
    // Managed Redis closes idle clients (Azure after about 10 min); `timeout 2` here. A worker that
    // served nothing for that long sent nothing, and each close was an outage: warned, the gauge at
    // 0, and about 3 s on local buckets that let the shared limit leak.
    await redisCli('CONFIG', 'SET', 'timeout', '2');
    try {
      const { state, log, failures } = connect();
      await upNow(state);
      await new Promise((r) => setTimeout(r, 5500));
      expect(lines(log, DOWN)).toEqual([]);
      expect(failures).toEqual([]);
      expect(state.up).toBe(true);
    } finally {
      await redisCli('CONFIG', 'SET', 'timeout', '0');
    }
  }, 15_000);

  it('says why Redis stays down when the reason changes: a password set after the connection was lost', async () => {
    const { state, log, failures } = connect();
    await upNow(state);
    await redisCli('CONFIG', 'SET', 'requirepass', 'changed-pw-5e2a');
    try {
      await redisCli('-a', 'changed-pw-5e2a', '--no-auth-warning', 'CLIENT', 'KILL', 'TYPE', 'normal');
      // The loss first, then every reconnect refused: once it said only "the connection was closed".
      const refused = () => log.lines.find((l) => l.level === 'warn' && /^NOAUTH/.test(String(l.obj.err)));
      await until(() => refused(), 'the refused login logged', 5000);
      expect(refused()?.msg).toMatch(/Redis (still )?unreachable/);
      expect(lines(log, DOWN)).toHaveLength(1);
      // Each refused login is counted, as the error reply it is.
      await until(
        () => (failures.filter((r) => r === 'error').length >= 2 ? true : undefined),
        'refusals counted',
      );
      // One line per reason, not one per reconnect.
      await new Promise((r) => setTimeout(r, 2500));
      expect(log.lines.filter((l) => /^NOAUTH/.test(String(l.obj.err)))).toHaveLength(1);
    } finally {
      await redisCli('-a', 'changed-pw-5e2a', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
    }
    await upNow(state);
  }, 20_000);

  it('counts connection checks that time out against an endpoint that never answers', async () => {
    // It takes connections and says nothing (a proxy with no Redis behind it): every connection
    // check timed out, as the log said, while the failures counted none.
    const held = new Set<Socket>();
    const silent = createServer((socket) => void held.add(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closing.push(
      () =>
        new Promise((r) => {
          for (const socket of held) socket.destroy();
          silent.close(r);
        }),
    );
    const log = memoryLog();
    const failures: string[] = [];
    const state = new SharedState(`redis://127.0.0.1:${(silent.address() as AddressInfo).port}/0`, log, {
      failure: (reason) => failures.push(reason),
    });
    closing.push(() => state.close());
    await until(() => (failures.length >= 2 ? true : undefined), 'failures counted', 8000);
    expect(new Set(failures)).toEqual(new Set(['timeout']));
    expect(state.up).toBe(false);
  }, 15_000);

  it("does not count a timeout that is this process's own lateness (a stalled event loop) as Redis's failure", async () => {
    const { state, log, failures } = connect();
    await upNow(state);
    const stalledTakes = async (n: number) => {
      for (let i = 0; i < n; i++) {
        // From a callback of the loop's check phase: the timers run before sockets are read again.
        await new Promise((r) => setImmediate(r));
        const take = state.take(`sluice:rl:web:stall${i}`, 1, 5).catch((err: unknown) => err);
        // Busy for longer than the 250 ms command timeout, as a worker under a load it cannot keep
        // up with: the reply is in the socket, unread, when the timer fires.
        const busyUntil = Date.now() + 400;
        while (Date.now() < busyUntil);
        await take;
      }
      await new Promise((r) => setTimeout(r, 100));
    };
    await stalledTakes(4);
    expect(lines(log, DOWN)).toEqual([]);
    expect(state.up).toBe(true);
    expect(failures).toEqual([]);

    // A Redis that hangs sends nothing: late or not, its timeouts count.
    redis.kill('SIGSTOP');
    try {
      await stalledTakes(3);
      expect(failures).toEqual(['timeout', 'timeout', 'timeout']);
      expect(state.up).toBe(false);
      expect(lines(log, DOWN)[0]?.obj.err).toBe('3 commands in a row timed out');
    } finally {
      redis.kill('SIGCONT');
    }
    await upNow(state);
  }, 20_000);

  it('logs one line per transition while the connection flaps, and comes back only once it holds', async () => {
    const { state, log } = connect();
    await upNow(state);
    // Five connection losses, each after the client has connected again.
    for (let i = 0; i < 5; i++) {
      await until(() => (state.redis.status === 'ready' ? true : undefined), 'connected again');
      await redisCli('CLIENT', 'KILL', 'TYPE', 'normal');
      await until(() => (state.redis.status !== 'ready' ? true : undefined), 'the connection lost');
    }
    await upNow(state);
    expect(lines(log, DOWN)).toHaveLength(1);
    expect(lines(log, BACK)).toHaveLength(1);
  });

  it('puts keys in the database of the URL, and reports one it cannot select instead of using db 0', async () => {
    const three = connect(3);
    await upNow(three.state);
    await three.state.take('sluice:rl:web:db', 1, 5);
    expect(await redisCli('-n', '3', 'EXISTS', 'sluice:rl:web:db')).toBe('1');
    expect(await redisCli('-n', '0', 'EXISTS', 'sluice:rl:web:db')).toBe('0');

    // redis-server has 16 databases by default: 99 cannot be selected.
    const bad = connect(99);
    const [line] = await until(() => {
      const found = bad.log.lines.filter((l) => l.obj.code === 'SLUICE_E_RUNTIME_REDIS_DB');
      return found.length > 0 ? found : undefined;
    }, 'the SELECT failure reported');
    expect(line).toMatchObject({ level: 'error' });
    expect(String(line?.obj.err)).toMatch(/DB index is out of range/);
    expect(bad.state.up).toBe(false);
    expect(bad.state.health).toBe('down');
    expect(await redisCli('-n', '0', 'DBSIZE')).toBe('0');
  });

  it('reports a database that is no number, or a SELECT refused for any reason, as SLUICE_E_RUNTIME_REDIS_DB, and stays down', async () => {
    const dbLine = async (log: ReturnType<typeof memoryLog>) =>
      (
        await until(() => {
          const found = log.lines.filter((l) => l.obj.code === 'SLUICE_E_RUNTIME_REDIS_DB');
          return found.length > 0 ? found : undefined;
        }, 'the SELECT failure reported')
      )[0];
    // Past `sluice check` (which refuses them): ioredis read both as NaN, and its SELECT NaN was an
    // unhandled rejection, which ends a process (and fails this file).
    for (const url of [`redis://127.0.0.1:${port}/abc`, `redis://127.0.0.1:${port}?db=x`]) {
      const log = memoryLog();
      const state = new SharedState(url, log);
      closing.push(() => state.close());
      expect(await state.first).toBe(false);
      const line = await dbLine(log);
      expect(line).toMatchObject({ level: 'error' });
      expect(String(line?.obj.err)).toMatch(/is not a database number/);
      // A second's probe later: still down, and reported once.
      await new Promise((r) => setTimeout(r, 1200));
      expect(state.health).toBe('down');
      expect(log.lines.filter((l) => l.obj.code === 'SLUICE_E_RUNTIME_REDIS_DB')).toHaveLength(1);
    }
    // A user who may not SELECT gets NOPERM, not "DB index is out of range": the database is
    // refused all the same, and writing to database 0 instead is no answer.
    await redisCli('ACL', 'SETUSER', 'noselect', 'on', 'nopass', '~*', '&*', '+@all', '-select');
    try {
      const log = memoryLog();
      const state = new SharedState(`redis://noselect:any@127.0.0.1:${port}/3`, log);
      closing.push(() => state.close());
      const line = await dbLine(log);
      expect(String(line?.obj.err)).toMatch(/NOPERM/);
      expect(state.health).toBe('down');
      expect(await redisCli('-n', '0', 'DBSIZE')).toBe('0');
    } finally {
      await redisCli('ACL', 'DELUSER', 'noselect');
    }
  });

  it('announces bans only to the nodes of the same database: fleets on /1, ?db=2 and /0 of one server stay apart', async () => {
    const one = connect(1);
    const oneMore = connect(1);
    const two = connect(2, 'query');
    const zero = connect(0);
    const states = [one, oneMore, two, zero].map((c) => c.state);
    for (const state of states) await upNow(state);
    const rule = { ...RULE, max: 1 };
    const [a, b, c, d] = states.map((state) => manager(state, memoryLog(), rule));
    // Every subscription confirmed, or an announcement could beat it.
    const want = new Map<string, number>();
    for (const state of states) want.set(state.channel('bans'), (want.get(state.channel('bans')) ?? 0) + 1);
    expect(want.size).toBe(3);
    const subscribed = async () => {
      const counts = (await redisCli('PUBSUB', 'NUMSUB', ...want.keys())).split('\n');
      return [...want.values()].every((n, i) => Number(counts[2 * i + 1]) === n);
    };
    await until(async () => ((await subscribed()) ? true : undefined), 'the four subscriptions');
    // Redis sends a message to every subscriber within the one PUBLISH: a node that heard it would
    // have been told by the time another node was, and 200 ms later at the most.
    const settle = () => new Promise((r) => setTimeout(r, 200));

    a!.m.strike('web', '203.0.113.7');
    await until(() => (b!.events.some((e) => e.type === 'ban') ? true : undefined), 'the node on /1 told');
    await settle();
    expect(c!.events).toEqual([]);
    expect(d!.events).toEqual([]);
    expect(await redisCli('-n', '2', 'EXISTS', 'sluice:ban:web:203.0.113.7')).toBe('0');

    await a!.m.unban('203.0.113.7');
    await until(() => (b!.events.some((e) => e.type === 'unban') ? true : undefined), 'the unban on /1');
    await settle();
    expect(c!.events).toEqual([]);
    expect(d!.events).toEqual([]);

    // The database given as ?db=2 is the fleet's for its keys and its announcements alike.
    c!.m.strike('web', '198.51.100.9');
    await until(() => (c!.events.length > 0 ? true : undefined), 'the ban on ?db=2');
    await until(
      async () =>
        (await redisCli('-n', '2', 'EXISTS', 'sluice:ban:web:198.51.100.9')) === '1' ? true : undefined,
      'the ban written to database 2',
    );
    await settle();
    expect(d!.events).toEqual([]);
    expect(b!.events.filter((e) => e.type === 'ban')).toHaveLength(1);
  });

  /** A SharedState (and a ban manager on it) logging in as `user`, whose password is `pw`. */
  const connectAs = (user: string, pw: string) => {
    const log = memoryLog();
    const failures: string[] = [];
    const state = new SharedState(`redis://${user}:${pw}@127.0.0.1:${port}/0`, log, {
      failure: (reason) => failures.push(reason),
    });
    closing.push(() => state.close());
    return { state, log, failures };
  };
  const PERMISSION = 'SLUICE_E_RUNTIME_REDIS_PERMISSION';
  const permissionLines = (log: ReturnType<typeof memoryLog>) =>
    log.lines.filter((l) => l.obj.code === PERMISSION);

  it('reports a user without the pub/sub channels as SLUICE_E_RUNTIME_REDIS_PERMISSION, once, and stays down until they are granted', async () => {
    // Redis 7 gives a new user no channels: its bans were written, never heard by the other nodes,
    // and Redis said up all the while, with nothing in the log.
    await redisCli('ACL', 'SETUSER', 'nochan', 'on', '>nochan-pw-41', '~sluice:*', '+@all');
    try {
      const { state, log, failures } = connectAs('nochan', 'nochan-pw-41');
      manager(state, log);
      expect(await state.first).toBe(false);
      const [line] = await until(
        () => (permissionLines(log).length > 0 ? permissionLines(log) : undefined),
        'the refusal reported',
      );
      expect(line).toMatchObject({ level: 'error' });
      expect(line?.obj.permission).toBe('&sluice:*');
      expect(line?.msg).toMatch(/grant &sluice:\* to it/);
      expect(String(line?.obj.err)).toMatch(/^NOPERM/);
      expect(String(line?.obj.hint)).toMatch(/&sluice:\*/);
      // Probes a second apart: still down, said once, and no "unreachable" besides.
      await new Promise((r) => setTimeout(r, 2500));
      expect(state.health).toBe('down');
      expect(permissionLines(log)).toHaveLength(1);
      expect(lines(log, DOWN)).toEqual([]);
      expect(failures.length).toBeGreaterThanOrEqual(3);

      await redisCli('ACL', 'SETUSER', 'nochan', '&sluice:*');
      await upNow(state);
      expect(lines(log, BACK)).toHaveLength(1);
      await until(
        async () => ((await redisCli('PUBSUB', 'NUMSUB', 'sluice:bans')).endsWith('1') ? true : undefined),
        'subscribed once the channels are granted',
      );
    } finally {
      await redisCli('ACL', 'DELUSER', 'nochan');
    }
  });

  it('reports a refused SUBSCRIBE of the ban manager as SLUICE_E_RUNTIME_REDIS_PERMISSION, and a channel taken away while up at once', async () => {
    // May publish, may not subscribe: the refusal of the ban manager's own connection was dropped.
    await redisCli(
      'ACL',
      'SETUSER',
      'nosub',
      'on',
      '>nosub-pw-41',
      '~sluice:*',
      '&sluice:*',
      '+@all',
      '-subscribe',
    );
    try {
      const { state, log } = connectAs('nosub', 'nosub-pw-41');
      manager(state, log);
      const [line] = await until(
        () => (permissionLines(log).length > 0 ? permissionLines(log) : undefined),
        'the refused SUBSCRIBE reported',
      );
      expect(line?.obj.permission).toBe('+subscribe');
      await new Promise((r) => setTimeout(r, 2500));
      expect(state.health).toBe('down');
      expect(permissionLines(log)).toHaveLength(1);
      await redisCli('ACL', 'SETUSER', 'nosub', '+subscribe');
      await upNow(state);

      // The channels taken away while up: the next ban's PUBLISH is refused, and Redis is down at
      // once (3 failures took 3 sweeps, 30 s, and said only "3 commands in a row failed").
      const { m } = manager(state, log, { ...RULE, max: 1 });
      await redisCli('ACL', 'SETUSER', 'nosub', 'resetchannels');
      m.strike('web', '203.0.113.31');
      await until(() => (state.up ? undefined : true), 'down at the refused PUBLISH');
      expect(permissionLines(log)).toHaveLength(2);
      expect(permissionLines(log)[1]?.obj.permission).toBe('&sluice:*');
      expect(lines(log, DOWN)).toEqual([]);
    } finally {
      await redisCli('ACL', 'DELUSER', 'nosub');
    }
  });

  it('keeps a Redis whose user may not run scripts down, said once, while rate limits are taken on local buckets', async () => {
    // The probe was a SET: Redis came up, the first takes failed (NOPERM evalsha), it went down,
    // came up 3 probes later, and so on: a pair of lines and a resync every 3 s under traffic.
    await redisCli(
      'ACL',
      'SETUSER',
      'noscript',
      'on',
      '>noscript-pw-41',
      '~sluice:*',
      '&sluice:*',
      '+@all',
      '-@scripting',
    );
    try {
      const { state, log } = connectAs('noscript', 'noscript-pw-41');
      const limiter = new SharedRateLimiter(state, 1);
      closing.push(() => limiter.close());
      const rule = { perSecond: 1000, burst: 10 } as ResolvedRateLimit;
      const ups: boolean[] = [];
      const stop = Date.now() + 5000;
      while (Date.now() < stop) {
        ups.push(state.up);
        expect((await limiter.take('web', '203.0.113.41', rule)).allowed).toBe(true);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(ups.every((up) => !up)).toBe(true);
      expect(permissionLines(log)).toHaveLength(1);
      expect(permissionLines(log)[0]?.obj.permission).toBe('+evalsha +eval');
      expect(lines(log, BACK)).toEqual([]);
      expect(lines(log, DOWN)).toEqual([]);
      expect(await redisCli('KEYS', 'sluice:rl:web:*')).toBe('');
    } finally {
      await redisCli('ACL', 'DELUSER', 'noscript');
    }
  });

  it('works with a user granted just what SLUICE_E_RUNTIME_REDIS_PERMISSION lists', async () => {
    // The hint's list, and nothing else: if sluice sends one more command, this test says so.
    await redisCli(
      'ACL',
      'SETUSER',
      'least',
      'on',
      '>least-pw-41',
      '~sluice:*',
      '&sluice:*',
      '-@all',
      ...'+info +select +set +get +del +scan +evalsha +eval +publish +subscribe +time +hmget +hset +pexpire +zadd +zremrangebyscore +zcard'.split(
        ' ',
      ),
    );
    try {
      const a = connectAs('least', 'least-pw-41');
      const b = connectAs('least', 'least-pw-41');
      await upNow(a.state);
      await upNow(b.state);
      const rule = { ...RULE, max: 1 };
      const one = manager(a.state, a.log, rule);
      const other = manager(b.state, b.log, rule);
      await until(
        async () => ((await redisCli('PUBSUB', 'NUMSUB', 'sluice:bans')).endsWith('2') ? true : undefined),
        'both subscribed',
      );
      expect(await a.state.take('sluice:rl:web:least', 1, 5)).toEqual([1, expect.any(String)]);
      one.m.strike('web', '203.0.113.42');
      await until(
        () => (other.events.some((e) => e.type === 'ban') ? true : undefined),
        'the other node told',
      );
      expect(await one.m.unban('203.0.113.42')).toBe(1);
      await until(() => (other.events.some((e) => e.type === 'unban') ? true : undefined), 'the unban heard');
      expect(
        [...a.log.lines, ...b.log.lines].filter((l) => l.level !== 'info' && l.msg !== 'client banned'),
      ).toEqual([]);
      expect(a.state.up && b.state.up).toBe(true);
    } finally {
      await redisCli('ACL', 'DELUSER', 'least');
    }
  });

  it('lifts the bans of a removed rule here only: Redis keeps them for other nodes, and the rule back reads them', async () => {
    const { state } = connect();
    const other = connect();
    await upNow(state);
    await upNow(other.state);
    const rule = { ...RULE, max: 1 };
    const a = manager(state, memoryLog(), rule);
    const b = manager(other.state, memoryLog(), rule);
    await until(
      async () => ((await redisCli('PUBSUB', 'NUMSUB', 'sluice:bans')).endsWith('2') ? true : undefined),
      'both subscribed',
    );
    a.m.strike('web', '203.0.113.61');
    await until(() => (b.events.some((e) => e.type === 'ban') ? true : undefined), 'the other node told');

    // A reload on node b drops the rule: its ban is lifted there, not in Redis nor on node a.
    b.m.setRules(new Map());
    expect(b.m.all()).toEqual([]);
    expect(b.events.at(-1)).toEqual({ type: 'unban-scope', scope: 'web' });
    expect(await redisCli('EXISTS', 'sluice:ban:web:203.0.113.61')).toBe('1');
    expect(a.m.all().map((ban) => ban.address)).toEqual(['203.0.113.61']);
    // Bans of a scope without a rule are neither taken from the channel nor from Redis.
    a.m.strike('web', '203.0.113.62');
    await until(
      () => (a.events.filter((e) => e.type === 'ban').length === 2 ? true : undefined),
      'a second ban',
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(b.m.all()).toEqual([]);

    // The rule back: node b reads the bans Redis holds for it.
    b.m.setRules(new Map([['web', rule]]));
    await until(() => (b.m.all().length === 2 ? true : undefined), 'the bans read again');
  });

  it('announces a ban whose write to Redis failed once Redis takes writes again, without an outage in between', async () => {
    const { state } = connect();
    const other = connect();
    await upNow(state);
    await upNow(other.state);
    const rule = { ...RULE, max: 1 };
    const a = manager(state, memoryLog(), rule);
    const b = manager(other.state, memoryLog(), rule);
    // Read-only for a moment (a failover): the strike and the ban's write fail, 2 failures, not 3.
    await redisCli('REPLICAOF', '127.0.0.1', String(await freePort()));
    try {
      a.m.strike('web', '203.0.113.9');
      await until(() => (a.events.length > 0 ? true : undefined), 'the local ban');
      // Its write is sent with the ban, long before redis-cli below has started.
      expect(state.up).toBe(true);
    } finally {
      await redisCli('REPLICAOF', 'NO', 'ONE');
    }
    await until(
      async () => ((await redisCli('EXISTS', 'sluice:ban:web:203.0.113.9')) === '1' ? true : undefined),
      'the ban written to Redis',
      25_000,
    );
    await until(() => (b.events.some((e) => e.type === 'ban') ? true : undefined), 'the other node told');
  }, 40_000);
});
