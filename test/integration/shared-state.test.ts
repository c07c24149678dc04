/**
 * The Redis shared state against a real redis-server started here on a free port: the strike
 * script, the ban manager's writes to Redis, how failures are counted and what is logged.
 */

import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedBan } from '../../src/config/types.js';
import { type BanEvent, BanManager } from '../../src/security/ban-manager.js';
import { SharedState } from '../../src/security/shared-state.js';
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

  const connect = (db = 0) => {
    const log = memoryLog();
    const state = new SharedState(`redis://127.0.0.1:${port}/${db}`, log);
    closing.push(() => state.close());
    return { state, log };
  };

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

  it('logs no "Redis unreachable" when the connection is closed on purpose', async () => {
    const { state, log } = connect();
    await upNow(state);
    closing.pop();
    await state.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });
});
