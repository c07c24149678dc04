/**
 * The Redis connection behind `state.redis` (ioredis): rate-limit buckets and bans shared by every
 * sluice node. Redis is a helper, never a dependency of serving: commands fail fast (no offline
 * queue, a 250 ms command timeout) so callers fall back to local state at once; losing and
 * regaining the connection is logged once each, and `onReady` listeners resynchronise.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { redactUrl } from '../core/redact.js';

/**
 * ioredis is loaded by the first connection, not with this module: it costs every process about
 * 25 MB of RSS (measured on Node 20), which nodes without `state.redis` should not pay. It ships
 * CommonJS, so a synchronous require keeps the constructor synchronous.
 */
let RedisClass: typeof Redis | null = null;
function redisClass(): typeof Redis {
  RedisClass ??= (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;
  return RedisClass;
}

/** Logs what happens to the connection. */
export interface StateLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** A token-bucket take, atomically in Redis. Returns [allowed (0/1), tokens left as a string]. */
const TAKE = `
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or capacity
local at = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) / 1000 * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return { allowed, tostring(tokens) }
`;

/**
 * Strikes in a sliding window: adds `ARGV[2]` strikes tagged `ARGV[3]` at now, drops those older
 * than the window, returns the count. At `ARGV[4]` (the rule's max) the count is the ban's and the
 * set is deleted, so the strikes after the ban count from 0 as the in-memory manager's do: they
 * stayed, and with a ban shorter than its window the first strike after it banned again at once.
 */
const STRIKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
for i = 1, tonumber(ARGV[2]) do
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3] .. ':' .. i)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], window)
end
return count
`;

type SluiceRedis = Redis & {
  sluiceTake(key: string, rate: number, capacity: number): Promise<[number, string]>;
  sluiceStrike(key: string, windowMs: number, count: number, tag: string, max: number): Promise<number>;
};

/** Key prefix of everything sluice keeps in Redis. */
export const PREFIX = 'sluice:';

/**
 * Command timeouts in a row after which Redis counts as down. A Redis that accepts connections but
 * never answers (stopped, or a partition that drops packets) raises no connection error: without
 * this, every request waited the 250 ms command timeout, for as long as it lasted.
 */
const TIMEOUTS_BEFORE_DOWN = 3;

/** A fail-fast Redis connection with up/down notifications. */
export class SharedState {
  readonly redis: SluiceRedis;
  readonly #ready: (() => void)[] = [];
  #up = false;
  #reportedDown = false;
  #timeouts = 0;
  #closing = false;
  readonly #down: (err?: Error) => void;

  constructor(url: string, log: StateLog) {
    const redis = new (redisClass())(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 250,
      connectTimeout: 2000,
      lazyConnect: false,
      // Keep trying to come back, at most every 2 s.
      retryStrategy: (times) => Math.min(times * 200, 2000),
    }) as SluiceRedis;
    redis.defineCommand('sluiceTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('sluiceStrike', { numberOfKeys: 1, lua: STRIKE });
    redis.on('ready', () => {
      this.#up = true;
      this.#timeouts = 0;
      if (this.#reportedDown)
        log.info({ redis: redactUrl(url) }, 'shared state: Redis is back; resynchronising');
      this.#reportedDown = false;
      for (const f of this.#ready) f();
    });
    const down = (err?: Error) => {
      this.#up = false;
      // A connection closed on purpose (stop, or a reload that replaces it) is no outage.
      if (this.#reportedDown || this.#closing) return;
      this.#reportedDown = true;
      log.warn(
        { redis: redactUrl(url), err: err?.message },
        'shared state: Redis unreachable; serving with local state',
      );
    };
    redis.on('error', down);
    redis.on('end', () => down());
    redis.on('close', () => {
      if (this.#up) down();
    });
    this.#down = down;
    this.redis = redis;
  }

  /** A token-bucket take (see TAKE), counted by the timeout breaker. */
  take(key: string, rate: number, capacity: number): Promise<[number, string]> {
    return this.#watch(this.redis.sluiceTake(key, rate, capacity));
  }

  /** Strikes in a sliding window, deleted at `max` (see STRIKE), counted by the timeout breaker. */
  strike(key: string, windowMs: number, count: number, tag: string, max: number): Promise<number> {
    return this.#watch(this.redis.sluiceStrike(key, windowMs, count, tag, max));
  }

  /**
   * Counts timeouts in a row: at TIMEOUTS_BEFORE_DOWN, Redis is down (callers go local at once) and
   * the connection is made again; it is up when Redis answers ioredis's ready check.
   */
  #watch<T>(command: Promise<T>): Promise<T> {
    return command.then(
      (value) => {
        this.#timeouts = 0;
        return value;
      },
      (err: unknown) => {
        if (
          err instanceof Error &&
          err.message === 'Command timed out' &&
          ++this.#timeouts >= TIMEOUTS_BEFORE_DOWN
        ) {
          this.#timeouts = 0;
          this.#down(new Error(`${TIMEOUTS_BEFORE_DOWN} commands in a row timed out`));
          this.redis.disconnect(true);
        }
        throw err;
      },
    );
  }

  /** Whether commands can be sent now. */
  get up(): boolean {
    return this.#up && this.redis.status === 'ready';
  }

  /** Runs `f` every time the connection becomes ready (and now, if it is). */
  onReady(f: () => void): void {
    this.#ready.push(f);
    if (this.up) f();
  }

  /** Closes the connection, without taking its end for an outage. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
