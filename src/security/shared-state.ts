/**
 * The Redis connection behind `state.redis` (ioredis): rate-limit buckets and bans shared by every
 * sluice node. Redis is a helper, never a dependency of serving: commands fail fast (no offline
 * queue, a 250 ms command timeout) so callers fall back to local state at once; losing and
 * regaining the connection is logged once each (and a new reason while it stays lost), and
 * `onReady` listeners resynchronise.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { redactUrl } from '../core/redact.js';
import { type RedisDatabase, redisDatabase } from '../core/redis-database.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';

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
  error(obj: object, msg: string): void;
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

/** Why a command failed, as `sluice_shared_state_failures_total{reason}` counts it. */
export type FailureReason = 'timeout' | 'error' | 'connection';

/** What the owner of the connection is told besides the log, and what it asks of it. */
export interface StateHooks {
  /** A command failed. */
  failure?(reason: FailureReason): void;
  /**
   * Write to Redis every PROBE_MS while it is up, counted like any command (see #beat): for the
   * process that reports Redis's state, the primary or a lone process.
   */
  heartbeat?: boolean;
}

/**
 * Failures in a row after which Redis counts as down: timeouts, error replies (`-READONLY` from a
 * master turned replica, `-OOM`, a key of the wrong type) and lost connections alike. A Redis that
 * accepts connections but never answers (stopped, or a partition that drops packets) raises no
 * connection error: without this, every request waited the 250 ms command timeout, for as long as
 * it lasted; one that answers every write with an error was never down at all.
 */
const FAILURES_BEFORE_DOWN = 3;

/** How long a command waits for its answer before the caller goes local. */
const COMMAND_TIMEOUT_MS = 250;

/**
 * Probes in a row that must succeed before Redis counts as up again after being down, one every
 * PROBE_MS: a connection that drops every second or two (seen with a flapping link or a Redis that
 * restarts in a loop) stays down, with one log line, instead of a pair of lines and a resync per
 * flap. The first connection after start needs one probe only.
 */
const SUCCESSES_BEFORE_UP = 3;
const PROBE_MS = 1000;

/**
 * A connection without a heartbeat (a worker's) that has sent nothing for this long gets a PING at
 * the next tick of PROBE_MS: at most about 1.5 s without a command, so Redis's idle-client
 * `timeout` (from 2 s; managed Redis such as Azure's closes idle clients after about 10 min) never
 * closes it. Each close of an idle worker's connection was an outage: the warning, the gauge at 0,
 * and about 3 s on local buckets during which the shared limit let more through. A busy connection
 * sends no PING; an idle one sends 1 a second.
 */
const IDLE_MS = 500;

/**
 * How late the command timer may fire before a timeout can be this process's own lateness rather
 * than Redis's (see #unlessOwnLateness): a fifth of the 250 ms timeout.
 */
const LATE_MS = 50;

/**
 * A new reason while Redis stays down is logged at once up to this many times per outage; past
 * that, or for a reason already logged in it, at most once a minute (RELOG_MS).
 */
const REASONS_PER_OUTAGE = 5;
const RELOG_MS = 60_000;

/** The key a probe writes: a write, so a read-only or full Redis does not pass for up. */
const PROBE_KEY = `${PREFIX}probe`;

/**
 * The keys a probe runs the two scripts on, named like the keys they serve (`sluice:rl:<scope>:<key>`,
 * `sluice:strikes:<scope>:<address>`) but with one `:` less, so no scope's key is ever one of them.
 * The take leaves a hash for 2 s (a bucket of 1 at 1/s); the strike, at its max of 1, deletes its set.
 */
const PROBE_BUCKET = `${PREFIX}rl:probe`;
const PROBE_STRIKES = `${PREFIX}strikes:probe`;

/** Bans and unbans are announced on `sluice:bans` (`SharedState.channel` adds the database). */
export const BANS_CHANNEL = 'bans';

/**
 * What a probe publishes on the bans channel: a message every subscriber ignores (it is no ban and
 * no unban), sent on the channel itself because an ACL may grant exactly that channel.
 */
const PROBE_MESSAGE = '{"type":"probe"}';

/** What the Redis user lacks, as the log line says it: what was refused and what to grant. */
export interface MissingPermission {
  readonly what: string;
  readonly grant: string;
}

/**
 * The permission an error reply says the Redis user lacks, or null when it is no such refusal.
 * Redis 7.0 words them `NOPERM this user has no permissions to run the 'evalsha' command`, `... to
 * access one of the channels used as arguments` or `... keys ...`, 7.2 `NOPERM User sl has no
 * permissions to run the 'hset' command`; a command a script calls was refused by 7.0 as `ERR The
 * user executing the script can't run this command or subcommand`.
 */
export function missingPermission(err: unknown): MissingPermission | null {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return null;
  const text = err.message;
  const command = /^NOPERM\b.*'([^']+)' command/.exec(text)?.[1]?.toLowerCase();
  // ioredis sends a script with EVAL or EVALSHA as it sees fit: one permission, said once.
  if (command === 'eval' || command === 'evalsha')
    return { what: 'the script commands EVALSHA and EVAL', grant: '+evalsha +eval' };
  if (command !== undefined) return { what: `the ${command.toUpperCase()} command`, grant: `+${command}` };
  if (/^NOPERM\b.*\bchannel/.test(text)) return { what: 'the pub/sub channels sluice:*', grant: '&sluice:*' };
  if (/^NOPERM\b.*\bkey/.test(text)) return { what: 'the keys sluice:*', grant: '~sluice:*' };
  if (/^NOPERM\b/.test(text) || /can't run this command or subcommand/.test(text))
    return {
      what: "a command of sluice's scripts",
      grant: '+time +hmget +hset +pexpire +zadd +zremrangebyscore +zcard +del',
    };
  return null;
}

/** How a failed command failed. */
function failureReason(err: unknown): FailureReason {
  if (err instanceof Error && err.message === 'Command timed out') return 'timeout';
  if (err instanceof Error && err.name === 'ReplyError') return 'error';
  return 'connection';
}

/**
 * Whether an error is a timeout (no answer to a command in 250 ms, or to the connect in 2 s): no
 * verdict on Redis yet, unlike a refusal (a refused connection, an error reply).
 */
function timedOut(err: unknown): boolean {
  return failureReason(err) === 'timeout' || (err as NodeJS.ErrnoException | null)?.code === 'ETIMEDOUT';
}

/**
 * A fail-fast Redis connection with up/down notifications.
 *
 *   connect ─▶ probe (SELECT db, SET, both scripts, PUBLISH, the owners' checks) ─▶ up
 *   up ─▶ 3 failures in a row, a refused permission, or the connection lost ─▶ down
 *   down ─▶ probe every 1 s while connected ─▶ 3 in a row succeed ─▶ up (onReady listeners resynchronise)
 */
export class SharedState {
  readonly redis: SluiceRedis;
  readonly #ready: (() => void)[] = [];
  readonly #log: StateLog;
  readonly #url: string;
  readonly #db: RedisDatabase;
  readonly #hooks: StateHooks;
  readonly #prober: NodeJS.Timeout;
  #up = false;
  #wasUp = false;
  #reportedDown = false;
  #reportedDb = false;
  /** The permission last reported missing (SLUICE_E_RUNTIME_REDIS_PERMISSION), until a probe passes. */
  #reportedPermission: string | null = null;
  readonly #checks: (() => Promise<unknown>)[] = [];
  #failures = 0;
  #probes = 0;
  #probing = false;
  /** Whether the last heartbeat or keep-alive PING still waits for its answer. */
  #beating = false;
  /** When the last command was sent through `watch` (performance.now()), for the keep-alive PING. */
  #lastSent = 0;
  /** The reason last logged in this outage, those logged in it, and when (Date.now()). */
  #reason: string | null = null;
  readonly #reasons = new Set<string>();
  #reasonAt = 0;
  /** Whether the connection's last error was a timeout: the close that follows it is the timeout's. */
  #timedOut = false;
  /**
   * The error that made ioredis close the connection, if any: the close is reported with it. A
   * refused login (`WRONGPASS`, `NOAUTH`) is an error reply, which ioredis follows with a close:
   * it was logged as "the connection was closed", never saying why.
   */
  #closedBy: string | null = null;
  #closing = false;

  constructor(url: string, log: StateLog, hooks: StateHooks = {}) {
    this.#log = log;
    this.#url = url;
    this.#hooks = hooks;
    // The database is read here, as `sluice check` reads it, and given to ioredis as a number: from
    // the URL ioredis took `/abc` for NaN, and its SELECT NaN was an unhandled rejection that ended
    // the process. One that is no number (a config that skipped the check) gets database 0, which
    // is never used: the probe reports it and Redis stays down.
    const target = new URL(url);
    this.#db = redisDatabase(target);
    target.pathname = '';
    target.searchParams.delete('db');
    const redis = new (redisClass())(target.toString(), {
      db: this.#db.ok ? this.#db.db : 0,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      lazyConnect: false,
      // Keep trying to come back, at most every 2 s.
      retryStrategy: (times) => Math.min(times * 200, 2000),
    }) as SluiceRedis;
    redis.defineCommand('sluiceTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('sluiceStrike', { numberOfKeys: 1, lua: STRIKE });
    redis.on('ready', () => {
      this.#closedBy = null;
      void this.#probe();
    });
    redis.on('connect', () => {
      this.#timedOut = false;
      this.#closedBy = null;
    });
    redis.on('error', (err: Error) => {
      this.#timedOut = timedOut(err);
      this.#closedBy = err.message;
      // The connection checks ioredis makes before it is ready fail here, not in a command of ours:
      // a refused login (`WRONGPASS`, `NOAUTH`) is an error reply, a connect not accepted in 2 s or
      // an INFO not answered in 250 ms a timeout. Neither was counted: against an endpoint that
      // takes connections and never answers, the log said `Command timed out` and every reason
      // stayed at 0. ioredis's own SELECT at connect fails here too, on a connection that stays:
      // the probe counts and reports it (SLUICE_E_RUNTIME_REDIS_DB) and keeps Redis down.
      if (err.name === 'ReplyError') {
        if ((err as Error & { command?: { name?: string } }).command?.name !== 'select')
          this.#hooks.failure?.('error');
        return;
      }
      if (this.#timedOut) this.#hooks.failure?.('timeout');
      this.#lost(whyFailed(err), this.#timedOut);
    });
    // A server that stops (or a proxy that drops the connection) closes it without an error event.
    const closed = () => this.#lost(this.#closedBy ?? 'the connection was closed', this.#timedOut);
    redis.on('end', closed);
    redis.on('close', closed);
    this.redis = redis;
    this.#prober = setInterval(() => {
      if (!this.#up) {
        if (redis.status === 'ready') void this.#probe();
      } else if (hooks.heartbeat === true) this.#beat(() => redis.set(PROBE_KEY, '1', 'PX', 10_000));
      else if (performance.now() - this.#lastSent >= IDLE_MS) this.#beat(() => redis.ping());
    }, PROBE_MS);
    this.#prober.unref();
  }

  /** The connection is gone: down now (nothing can be sent), counted once; `wait` after a timeout. */
  #lost(why: string, wait: boolean): void {
    if (this.#closing) return;
    this.#probes = 0;
    if (this.#up) this.#hooks.failure?.('connection');
    this.#down(why, true, !wait);
  }

  /**
   * Down, reported once per outage: with the warning, or (`warn` false) with what the caller logged.
   * `verdict` false for a timeout: `first` stays open, so a start waits its bound for a Redis that
   * takes connections but does not answer yet (stopped, or still loading its data); one timeout
   * after 250 ms ended the wait as if Redis had refused.
   */
  #down(why: string | undefined, warn = true, verdict = true): void {
    this.#up = false;
    if (this.#closing) return;
    if (verdict) this.#settle(false);
    if (this.#reportedDown) {
      this.#stillDown(why, warn);
      return;
    }
    this.#reportedDown = true;
    this.#noted(why);
    if (warn)
      this.#log.warn(
        { redis: redactUrl(this.#url), err: why },
        'shared state: Redis unreachable; serving with local state',
      );
  }

  /**
   * Down already, and maybe for another reason: logged again when it changes, at once for a reason
   * new to this outage (up to REASONS_PER_OUTAGE of them), else at most once per RELOG_MS. The
   * first line said why Redis went, and nothing said why it stayed: a password changed on the
   * server showed as `the connection was closed`, never as the `NOAUTH` that refused every
   * reconnect after it.
   */
  #stillDown(why: string | undefined, warn: boolean): void {
    if (why === undefined || why === this.#reason) return;
    // The caller logged it (a refused permission or database).
    if (!warn) {
      this.#noted(why);
      return;
    }
    const fresh = !this.#reasons.has(why) && this.#reasons.size < REASONS_PER_OUTAGE;
    if (!fresh && Date.now() - this.#reasonAt < RELOG_MS) return;
    this.#noted(why);
    this.#log.warn(
      { redis: redactUrl(this.#url), err: why },
      'shared state: Redis still unreachable; serving with local state',
    );
  }

  /** `why` is the reason last logged in this outage. */
  #noted(why: string | undefined): void {
    if (why === undefined) return;
    this.#reason = why;
    this.#reasons.add(why);
    this.#reasonAt = Date.now();
  }

  /**
   * Checks that Redis takes writes in the configured database, and everything else sluice sends
   * (see #verify); up after SUCCESSES_BEFORE_UP in a row (one at the first connection). ioredis
   * selects the database itself, but when that fails (`/99` on a server with 16) it only emits an
   * error and sends every command to database 0.
   */
  async #probe(): Promise<void> {
    if (this.#probing || this.#up || this.#closing) return;
    this.#probing = true;
    try {
      const refused = await this.#select();
      if (refused !== null) {
        this.#probes = 0;
        this.#refusedDb(refused);
        return;
      }
      await this.#verify();
      this.#reportedDb = false;
      this.#reportedPermission = null;
      this.#probes++;
      if (this.#probes >= (this.#wasUp ? SUCCESSES_BEFORE_UP : 1)) this.#upNow();
    } catch (err) {
      this.#probes = 0;
      // Counted like any command: the failures go on climbing for as long as Redis stays broken.
      this.#hooks.failure?.(failureReason(err));
      const missing = missingPermission(err);
      if (missing !== null) this.#refusedPermission(missing, err);
      else this.#down(whyFailed(err), true, !timedOut(err));
    } finally {
      this.#probing = false;
    }
  }

  /**
   * Sends one of each kind of command sluice sends, in the order that names the first thing a user
   * may lack: a write, the rate-limit and strike scripts (EVALSHA, EVAL when Redis has not cached
   * them), a PUBLISH on the bans channel, then the owners' checks (the ban manager's SUBSCRIBE). A
   * SET alone passed a user without the channels (Redis 7 gives a new user none): bans were written
   * but never heard by the other nodes, with Redis said up and nothing in the log. And one who may
   * not run scripts: Redis was up until the first EVALSHA failed, down, up again at the next probes,
   * a pair of log lines and a ban resync every 3 s per worker under traffic. Five round trips, sent
   * once a second only while Redis is down.
   */
  async #verify(): Promise<void> {
    await this.redis.set(PROBE_KEY, '1', 'PX', 10_000);
    await this.redis.sluiceTake(PROBE_BUCKET, 1, 1);
    await this.redis.sluiceStrike(PROBE_STRIKES, 1000, 1, 'probe', 1);
    await this.redis.publish(this.channel(BANS_CHANNEL), PROBE_MESSAGE);
    for (const check of this.#checks) await check();
  }

  /**
   * Redis refuses something sluice needs: reported once per missing permission (until a probe
   * passes), as an error with the grant that fixes it, and Redis stays down: retrying would only
   * fail again, and counting it as up meant a flap every few seconds, or bans nobody heard.
   */
  #refusedPermission(missing: MissingPermission, err: unknown): void {
    if (this.#closing) return;
    this.#probes = 0;
    this.#failures = 0;
    const why = err instanceof Error ? err.message : String(err);
    if (this.#reportedPermission !== missing.grant) {
      this.#reportedPermission = missing.grant;
      this.#log.error(
        {
          code: 'SLUICE_E_RUNTIME_REDIS_PERMISSION' satisfies ErrorCode,
          redis: redactUrl(this.#url),
          err: why,
          permission: missing.grant,
          hint: ERROR_CATALOGUE.SLUICE_E_RUNTIME_REDIS_PERMISSION.hint,
        },
        `shared state: the Redis user may not use ${missing.what} (grant ${missing.grant} to it); serving with local state`,
      );
    }
    this.#down(why, false);
  }

  /**
   * Another check the probe makes before Redis counts as up, after its own: for what an owner sends
   * on a connection of its own (the ban manager's SUBSCRIBE). A rejection fails the probe.
   */
  addCheck(check: () => Promise<unknown>): void {
    this.#checks.push(check);
  }

  /**
   * A command sent on another connection to this Redis failed (the ban manager's SUBSCRIBE): a
   * refused permission takes Redis down as one refused here does. Anything else is that
   * connection's own (a lost connection, reported by this one's own).
   */
  report(err: unknown): void {
    const missing = missingPermission(err);
    if (missing === null || this.#closing) return;
    this.#hooks.failure?.('error');
    this.#refusedPermission(missing, err);
  }

  /**
   * Selects the URL's database: null once done, or why it cannot be. Any error reply to SELECT is
   * the database's fault, whatever its words (`DB index is out of range` for `/99`, `value is out of
   * range` past 32 bits); a timeout or a lost connection is not, and throws.
   */
  async #select(): Promise<string | null> {
    if (!this.#db.ok) return `${JSON.stringify(this.#db.text)} is not a database number`;
    if (this.#db.db === 0) return null;
    try {
      await this.redis.select(this.#db.db);
      return null;
    } catch (err) {
      if (failureReason(err) !== 'error') throw err;
      this.#hooks.failure?.('error');
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** The database cannot be selected: reported once (until it could be), and Redis stays down. */
  #refusedDb(why: string): void {
    if (!this.#reportedDb) {
      this.#reportedDb = true;
      const db = this.#db.ok ? String(this.#db.db) : JSON.stringify(this.#db.text);
      this.#log.error(
        {
          code: 'SLUICE_E_RUNTIME_REDIS_DB' satisfies ErrorCode,
          redis: redactUrl(this.#url),
          err: why,
          hint: ERROR_CATALOGUE.SLUICE_E_RUNTIME_REDIS_DB.hint,
        },
        `shared state: Redis cannot select database ${db}; serving with local state`,
      );
    }
    // Never taken for the database asked for: the probe goes on, in case Redis is fixed.
    this.#down(why, false);
  }

  /**
   * One heartbeat (the primary's write) or keep-alive PING (a worker's, see IDLE_MS), unless the
   * last is still waiting for its answer; counted like any command. The primary sends commands
   * only for strikes and bans: a Redis that hung or turned read-only went on counting as up in
   * `/api/status` and `sluice_shared_state_up` for as long as nobody was banned, while the workers
   * that served rate-limited requests had gone local. With a write every PROBE_MS, such a Redis is
   * down for the primary after 3 beats (2 to 3 s), whatever the traffic; 1 write a second per node.
   */
  #beat(send: () => Promise<unknown>): void {
    if (this.#beating || this.redis.status !== 'ready') return;
    this.#beating = true;
    const done = (): void => {
      this.#beating = false;
    };
    this.watch(send()).then(done, done);
  }

  #upNow(): void {
    if (this.#closing) return;
    this.#up = true;
    this.#wasUp = true;
    this.#failures = 0;
    this.#probes = 0;
    if (this.#reportedDown)
      this.#log.info({ redis: redactUrl(this.#url) }, 'shared state: Redis is back; resynchronising');
    this.#reportedDown = false;
    this.#reason = null;
    this.#reasons.clear();
    this.#settle(true);
    for (const f of this.#ready) f();
  }

  /** Resolves `first` with the first verdict: up, or down (refused, an error reply, no such database). */
  #settle: (up: boolean) => void = () => undefined;
  /**
   * Whether Redis came up (true) or refused (false) first, after the connection was opened; open
   * while it only times out.
   */
  readonly first: Promise<boolean> = new Promise((resolve) => {
    this.#settle = resolve;
  });

  /** A token-bucket take (see TAKE), counted by the failure breaker. */
  take(key: string, rate: number, capacity: number): Promise<[number, string]> {
    return this.watch(this.redis.sluiceTake(key, rate, capacity));
  }

  /** Strikes in a sliding window, deleted at `max` (see STRIKE), counted by the failure breaker. */
  strike(key: string, windowMs: number, count: number, tag: string, max: number): Promise<number> {
    return this.watch(this.redis.sluiceStrike(key, windowMs, count, tag, max));
  }

  /**
   * Counts failures in a row: at FAILURES_BEFORE_DOWN, Redis is down (callers go local at once) and,
   * after timeouts, the connection is made again; it is up again once probes pass (see #probe). A
   * timeout that was this process's own lateness (see #unlessOwnLateness) still fails the command, so
   * the caller goes local for it, but counts for nothing.
   */
  watch<T>(command: Promise<T>): Promise<T> {
    const sent = performance.now();
    this.#lastSent = sent;
    return command.then(
      (value) => {
        this.#failures = 0;
        return value;
      },
      (err: unknown) => {
        const reason = failureReason(err);
        if (reason === 'timeout') this.#unlessOwnLateness(sent, () => this.#failed(err, reason));
        else this.#failed(err, reason);
        throw err;
      },
    );
  }

  /**
   * Runs `count` for a command sent at `sent` that timed out, unless the timeout was this process's
   * own lateness rather than Redis's: its timer fired LATE_MS or more after it was due, and Redis
   * had sent something that was still waiting to be read. Timers run before the sockets are read,
   * so when the event loop is busy (a worker under more load than its core serves) a reply that came
   * in time is found late. Under `wrk -c150` on 2 cores a worker counted 3 such timeouts in a row,
   * said Redis unreachable and served about 2 s on local buckets, letting the shared limit leak. A
   * Redis that hangs sends nothing, and one that is slow on its own is found by timers that fire on
   * time: their timeouts still count. Checked in a setImmediate, which runs after the poll phase.
   */
  #unlessOwnLateness(sent: number, count: () => void): void {
    if (performance.now() - sent - COMMAND_TIMEOUT_MS < LATE_MS) {
      count();
      return;
    }
    const stream = this.redis.stream;
    const read = stream?.bytesRead ?? 0;
    setImmediate(() => {
      if (this.redis.stream !== stream || (stream?.bytesRead ?? 0) <= read) count();
    });
  }

  /** A failed command, counted: failures in a row take Redis down. */
  #failed(err: unknown, reason: FailureReason): void {
    if (this.#closing) return;
    this.#hooks.failure?.(reason);
    // A refusal is no passing fault: down at once, with what to grant (3 tries gave 3 failures).
    const missing = missingPermission(err);
    if (missing !== null) {
      if (this.#up) this.#refusedPermission(missing, err);
      return;
    }
    if (this.#up && ++this.#failures >= FAILURES_BEFORE_DOWN) {
      this.#failures = 0;
      this.#probes = 0;
      this.#down(
        reason === 'timeout'
          ? `${FAILURES_BEFORE_DOWN} commands in a row timed out`
          : `${FAILURES_BEFORE_DOWN} commands in a row failed; the last: ${whyFailed(err)}`,
      );
      // A Redis that does not answer may be behind a dead connection; one that answers errors is not.
      if (reason === 'timeout') this.redis.disconnect(true);
    }
  }

  /**
   * The name of a pub/sub channel (`sluice:bans`) for this URL's database. Redis delivers a
   * message to every subscriber of the channel whatever database either side selected: two fleets
   * kept apart by database number on one server (`/1`, `/2`) received each other's bans. Database 0
   * keeps the plain name, so nodes of earlier versions on it still hear and are heard; on another
   * database they do not until all are upgraded (docs/security.md).
   */
  channel(name: string): string {
    // A database that is no number gets a channel no fleet uses (`:dbabc`), not database 0's.
    const db = this.#db.ok ? this.#db.db : this.#db.text;
    return db === 0 ? `${PREFIX}${name}` : `${PREFIX}${name}:db${db}`;
  }

  /** Whether commands can be sent now. */
  get up(): boolean {
    return this.#up && this.redis.status === 'ready';
  }

  /** As `/api/status` and `sluice_shared_state_up` say it. */
  get health(): 'up' | 'down' {
    return this.up ? 'up' : 'down';
  }

  /** Runs `f` every time Redis becomes up (and now, if it is). */
  onReady(f: () => void): void {
    this.#ready.push(f);
    if (this.up) f();
  }

  /** Closes the connection, without taking its end for an outage. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#prober);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** ioredis's words for a command sent while its connection is down (enableOfflineQueue: false). */
const OFFLINE = "Stream isn't writeable and enableOfflineQueue options is false";

/**
 * Why a command or the connection failed, for the log: Redis's reply or the system's error as it
 * came, except ioredis's own wording for "not connected", which named an option of the library
 * rather than what happened.
 */
export function whyFailed(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message === OFFLINE ? 'not connected (reconnecting)' : message;
}
