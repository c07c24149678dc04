/**
 * fail2ban for HTTP: counts, per (scope, client), the answers a `ban:` rule lists, in a sliding
 * window; at `max` the client is banned from that scope for `duration`. Runs once per node (in
 * the primary; in a lone instance, in it): workers report strikes in batches and receive bans.
 *
 * With `state.redis`, strikes are counted in Redis (a sorted set per client, one atomic script)
 * and bans are written there and announced on a channel, so every node bans together; when Redis
 * is unreachable counting goes on locally, and when it returns the bans of both sides are merged.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ResolvedBan } from '../config/types.js';
import { clientNetwork } from '../core/client-network.js';
import { LruMap } from '../core/lru-map.js';
import { type Ban, BanList } from './ban-list.js';
import { BANS_CHANNEL, missingPermission, PREFIX, type SharedState, type StateLog } from './shared-state.js';

/** What the manager tells the rest of the node. */
export type BanEvent =
  | { readonly type: 'ban'; readonly ban: Ban }
  | { readonly type: 'unban'; readonly address: string }
  /** Every ban of a scope lifted: a reload removed its rule. */
  | { readonly type: 'unban-scope'; readonly scope: string };

/**
 * Clients whose strikes a node keeps, the least recently struck going first: 68 MB measured at
 * this bound with IPv6 addresses of 19 strikes each (`max: 20`).
 */
const MAX_STRIKE_KEYS = 100_000;

/**
 * The tag of this process's strikes in Redis: a strike is a member of a sorted set, so two with the
 * same tag are one. The tag was the pid and the millisecond, which two strikes of the same client in
 * one millisecond share (the primary gets a batch from each of its workers within a millisecond),
 * and so do two nodes in containers (both pid 1): strikes were lost, 3 of 20 counted in a test.
 * 48 random bits per process and a sequence number make every tag unique.
 */
const NODE_ID = randomBytes(6).toString('hex');
let strikeSequence = 0;

/**
 * The latest time a Date holds, either side of 1970 (ECMAScript: 8.64e15 ms). A ban announced or
 * stored with a later end (`until: 99999999999999999`) was enforced, and made `GET /api/bans` a 500
 * until it was lifted: its end has no ISO form.
 */
const MAX_TIME_MS = 8.64e15;

/** Whether `until` is a time a ban can end at: a finite number within a Date's range. */
function banTime(until: unknown): until is number {
  return typeof until === 'number' && Number.isFinite(until) && Math.abs(until) <= MAX_TIME_MS;
}

/**
 * A ban or unban announced on the channel, or null for anything else: a malformed message, or
 * another program's on the same channel. Redis is outside the node: what it hands over is checked.
 */
function remoteEvent(text: string): BanEvent | null {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof e !== 'object' || e === null) return null;
  const { type, ban, address } = e as Record<string, unknown>;
  if (type === 'unban') return typeof address === 'string' ? { type, address } : null;
  if (type !== 'ban' || typeof ban !== 'object' || ban === null) return null;
  const fields = ban as Record<string, unknown>;
  if (typeof fields.scope !== 'string' || typeof fields.address !== 'string' || !banTime(fields.until))
    return null;
  return { type, ban: { scope: fields.scope, address: fields.address, until: fields.until } };
}

/** The key of a client's strikes and of its pending ban: a scope and an address. */
function entryId(scope: string, address: string): string {
  return `${scope}\n${address}`;
}

/**
 * `pass` run one at a time: a call while one runs gets that one (the 10 s sweep and a resync
 * may both ask for the same pass).
 */
function oneAtATime(pass: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  return () => {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };
}

/** A tag no other strike of any node has. */
function strikeTag(): string {
  strikeSequence = (strikeSequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${NODE_ID}-${strikeSequence}`;
}

/** The node's bans and strike counts. */
export class BanManager {
  readonly #list = new BanList();
  /**
   * Recent strikes by scope and client, at most MAX_STRIKE_KEYS clients: a client with a new
   * address per request (an IPv6 /64) grew this without bound for as long as `window` (up to 365 d).
   */
  readonly #strikes = new LruMap<string, number[]>(MAX_STRIKE_KEYS);
  #rules = new Map<string, ResolvedBan>();
  readonly #state: SharedState | null;
  /** The channel of this Redis database that bans and unbans are announced on. */
  readonly #channel: string;
  readonly #log: StateLog;
  readonly #onChange: (e: BanEvent) => void;
  #subscriber: Redis | null = null;
  #sweeper: NodeJS.Timeout;
  /**
   * Addresses unbanned while Redis could not be told, with when. Lifted there when it is back
   * (before its bans are read, or by the sweep when the connection never dropped): otherwise the
   * resync brought back the very bans an operator had just lifted.
   */
  readonly #pendingUnbans = new Map<string, number>();
  /**
   * Bans made here whose write to Redis failed, by scope and address. Written and announced at the
   * next sweep or resync: a write that timed out or got an error reply while Redis stayed up (a
   * stall shorter than 3 timeouts, a moment of -READONLY during a failover) was dropped, and the
   * other nodes never heard of the ban.
   */
  readonly #pendingBans = new Map<string, Ban>();

  constructor(state: SharedState | null, log: StateLog, onChange: (e: BanEvent) => void) {
    this.#state = state;
    this.#channel = state?.channel(BANS_CHANNEL) ?? '';
    this.#log = log;
    this.#onChange = onChange;
    this.#sweeper = setInterval(() => {
      this.#sweep();
      if (this.#pendingUnbans.size > 0 && this.#state?.up) {
        // Still failing (a Redis that hangs counts as up here): tried again at the next sweep.
        this.#liftPending().catch((err: unknown) => this.#state?.report(err));
      }
      if (this.#pendingBans.size > 0 && this.#state?.up) this.#announcePending().catch(() => undefined);
    }, 10_000);
    this.#sweeper.unref();
    if (state !== null) {
      // Its own connection (a subscribed one takes no other commands), which may queue the
      // SUBSCRIBE until it connects; ioredis subscribes again after every reconnect.
      const sub = state.redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
      // Connection errors: the main connection, to the same Redis, reports its own.
      sub.on('error', () => undefined);
      sub.on('message', (_channel: string, text: string) => this.#remote(text));
      let subscribed = false;
      const subscribe = async (): Promise<void> => {
        await sub.subscribe(this.#channel);
        subscribed = true;
      };
      sub.on('close', () => {
        subscribed = false;
      });
      // Each time the subscription is (re)confirmed, read the bans Redis holds: a ban another node
      // announced while this connection was still reconnecting is then stored and found. Reading
      // only when the main connection came back missed it whenever that one won the race.
      // (When the main connection is still away, its own return reads them instead.) A refused
      // SUBSCRIBE (an ACL without the channel) takes Redis down with the grant it needs: it was
      // dropped unsaid, and this node never heard another's ban.
      sub.on('ready', () => {
        subscribe().then(
          () => (state.up ? this.#resync() : undefined),
          (err: unknown) => state.report(err),
        );
      });
      // Until the subscription is confirmed, Redis is not up for this node: subscribed again at
      // each probe, so it comes back once the ACL allows it. A connection not ready yet subscribes
      // when it is (above).
      state.addCheck(async () => {
        if (!subscribed && sub.status === 'ready') await subscribe();
      });
      this.#subscriber = sub;
      state.onReady(() => {
        const done = this.#resync();
        this.#firstResync ??= done;
      });
    }
  }

  /** The first resync's, once Redis is first up. */
  #firstResync: Promise<void> | null = null;

  /**
   * Resolves once the bans Redis held at start are loaded (at once without Redis): `loaded`; `down`
   * when Redis refused first (see SharedState.first), `timeout` when `timeoutMs` passed: the caller
   * serves either way.
   */
  async loaded(timeoutMs: number): Promise<'loaded' | 'down' | 'timeout'> {
    const state = this.#state;
    if (state === null) return 'loaded';
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const read = state.first.then(async (up) => {
      if (!up) return 'down' as const;
      await (this.#firstResync ?? this.#resync());
      return 'loaded' as const;
    });
    try {
      return await Promise.race([read, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The ban rules of the current config, by scope. A scope whose rule is gone has its bans and
   * strikes lifted here, as fail2ban unbans a stopped jail's: they were no longer enforced, yet
   * listed by `/api/bans`, counted by `sluice_bans_active`, and (strikes, and bans in the workers)
   * back in force when a later reload brought the rule back. Redis keeps them: other nodes may
   * still have the rule. A scope given a rule reads the bans Redis holds for it.
   */
  setRules(rules: ReadonlyMap<string, ResolvedBan>): void {
    const previous = this.#rules;
    this.#rules = new Map(rules);
    for (const scope of previous.keys()) if (!rules.has(scope)) this.#liftScope(scope);
    const added = [...rules.keys()].some((scope) => !previous.has(scope));
    if (added && this.#state?.up) void this.#resync();
  }

  /** Lifts every ban and strike of `scope` on this node. */
  #liftScope(scope: string): void {
    const lifted = this.#list.removeScope(scope);
    for (const id of this.#strikes.keys()) if (id.startsWith(`${scope}\n`)) this.#strikes.delete(id);
    for (const [id, ban] of this.#pendingBans) if (ban.scope === scope) this.#pendingBans.delete(id);
    this.#onChange({ type: 'unban-scope', scope });
    if (lifted > 0)
      this.#log.info({ audit: true, scope, lifted }, 'bans lifted: the reload removed their rule');
  }

  /** Counts `count` listed answers for `address` in `scope`. */
  strike(scope: string, address: string, count = 1, now = Date.now()): void {
    const rule = this.#rules.get(scope);
    if (rule === undefined || this.#list.banned(scope, address, now)) return;
    if (this.#state?.up) {
      void this.#state.strike(strikeKey(scope, address), rule.windowMs, count, strikeTag(), rule.max).then(
        (n) => {
          if (n >= rule.max) this.#ban(scope, address, rule, n, Date.now());
        },
        () => this.#strikeLocally(scope, address, count, rule, now),
      );
      return;
    }
    this.#strikeLocally(scope, address, count, rule, now);
  }

  #strikeLocally(scope: string, address: string, count: number, rule: ResolvedBan, now: number): void {
    const id = entryId(scope, address);
    const times = (this.#strikes.get(id) ?? []).filter((t) => now - t < rule.windowMs);
    for (let i = 0; i < count; i++) times.push(now);
    // Only the newest `max` strikes can ever matter.
    if (times.length > rule.max) times.splice(0, times.length - rule.max);
    this.#strikes.set(id, times);
    if (times.length >= rule.max) this.#ban(scope, address, rule, times.length, now);
  }

  #ban(scope: string, address: string, rule: ResolvedBan, strikes: number, now: number): void {
    // A strike counted in Redis before a reload removed its rule, answered after it, bans nothing.
    if (!this.#rules.has(scope) || this.#list.banned(scope, address, now)) return;
    const ban: Ban = { scope, address, until: now + rule.durationMs };
    this.#apply(ban);
    this.#strikes.delete(entryId(scope, address));
    this.#log.warn(
      {
        audit: true,
        scope,
        client: address,
        strikes,
        window_ms: rule.windowMs,
        until: new Date(ban.until).toISOString(),
      },
      'client banned',
    );
    if (this.#state === null) return;
    const id = entryId(scope, address);
    // While Redis is down the resync that ends the outage writes it; until then it is pending too.
    this.#pendingBans.set(id, ban);
    if (this.#state.up) {
      this.#announce(this.#state, ban).then(
        () => this.#pendingBans.delete(id),
        () => undefined,
      );
    }
  }

  /** Writes a ban to Redis and tells the other nodes; a failure counts towards Redis being down. */
  async #announce(state: SharedState, ban: Ban): Promise<void> {
    const left = ban.until - Date.now();
    if (left <= 0) return;
    await state.watch(state.redis.set(banKey(ban.scope, ban.address), String(ban.until), 'PX', left));
    await state.watch(state.redis.publish(this.#channel, JSON.stringify({ type: 'ban', ban })));
  }

  /** Writes and announces the bans whose first write failed; one pass at a time. */
  readonly #announcePending = oneAtATime(() => this.#announceAll());

  async #announceAll(): Promise<void> {
    const state = this.#state;
    if (state === null) return;
    for (const [id, ban] of this.#pendingBans) {
      // Lifted or run out meanwhile: nothing to tell.
      if (!this.#list.banned(ban.scope, ban.address)) {
        this.#pendingBans.delete(id);
        continue;
      }
      // Lifted on another node since it was made (see #unbanInRedis): lifted here too.
      if (await this.#liftedSince(state.redis, ban)) {
        this.#pendingBans.delete(id);
        if (this.#list.remove(ban.address) > 0) this.#onChange({ type: 'unban', address: ban.address });
        continue;
      }
      await this.#announce(state, ban);
      this.#pendingBans.delete(id);
    }
  }

  #apply(ban: Ban): void {
    this.#list.add(ban);
    this.#onChange({ type: 'ban', ban });
  }

  /**
   * Lifts every ban of `address` here and, with Redis, on every node; how many were in force. An IPv6
   * address also lifts the ban of its /64 (`per: network` rules ban the network); the network itself
   * (`2001:db8:1:2::/64`) can be given too.
   */
  async unban(address: string): Promise<number> {
    const network = clientNetwork(address);
    if (network === address) return this.#unbanOne(address);
    const [one, other] = await Promise.all([this.#unbanOne(address), this.#unbanOne(network)]);
    return one + other;
  }

  async #unbanOne(address: string): Promise<number> {
    const n = this.#list.remove(address);
    for (const id of this.#strikes.keys()) if (id.endsWith(`\n${address}`)) this.#strikes.delete(id);
    this.#onChange({ type: 'unban', address });
    if (this.#state === null) return n;
    const at = Date.now();
    if (this.#state.up) {
      try {
        return Math.max(n, await this.#unbanInRedis(this.#state.redis, address, at));
      } catch (err) {
        // Told when Redis is back; a refused permission takes it down, and says so.
        this.#state.report(err);
      }
    }
    this.#pendingUnbans.set(address, at);
    return n;
  }

  /**
   * Deletes the bans and strikes of `address` in Redis, leaves a tombstone with the time of the
   * unban (for nodes that still hold the ban from before: see #resync), and tells the other nodes.
   * How many bans there were.
   */
  async #unbanInRedis(redis: Redis, address: string, at: number): Promise<number> {
    // Keys are matched exactly, not by a SCAN pattern: an address is no pattern (`*` matched every
    // ban) and a scope wildcard could also take the end of an IPv6 address (`1` matched `::1`).
    const bans = (await scanKeys(redis, `${PREFIX}ban:*`)).filter(
      (k) => keyParts(k, 'ban:')?.address === address,
    );
    const strikes = [...this.#rules.keys()].map((scope) => strikeKey(scope, address));
    if (bans.length + strikes.length > 0) await redis.del(...bans, ...strikes);
    // No ban made before the unban outlives the longest ban duration.
    const keep = Math.max(60_000, ...[...this.#rules.values()].map((r) => r.durationMs));
    await redis.set(`${PREFIX}unban:${address}`, String(at), 'PX', keep);
    await redis.publish(this.#channel, JSON.stringify({ type: 'unban', address }));
    return bans.length;
  }

  /** Tells Redis of the unbans made while it could not be told; one pass at a time. */
  readonly #liftPending = oneAtATime(() => this.#liftAll());

  async #liftAll(): Promise<void> {
    const redis = this.#state?.redis;
    if (redis === undefined) return;
    for (const [address, at] of this.#pendingUnbans) {
      await this.#unbanInRedis(redis, address, at);
      this.#pendingUnbans.delete(address);
    }
  }

  /** Whether an unban of the ban's address came after the ban was made (found in Redis). */
  async #liftedSince(redis: Redis, ban: Ban): Promise<boolean> {
    const at = Number(await redis.get(`${PREFIX}unban:${ban.address}`));
    // Without the scope's rule (a config since changed) when the ban was made is unknown: the
    // unban is taken to be later.
    const rule = this.#rules.get(ban.scope);
    const made = rule === undefined ? 0 : ban.until - rule.durationMs;
    return at > 0 && at >= made;
  }

  /**
   * Takes over the bans of a manager being replaced (state.redis changed), those of scopes with a
   * rule (set first); written to Redis on resync.
   */
  adopt(bans: readonly Ban[]): void {
    for (const ban of bans) if (this.#rules.has(ban.scope)) this.#list.add(ban);
  }

  /** Every active ban. */
  all(now = Date.now()): Ban[] {
    return this.#list.all(now);
  }

  /**
   * A ban announced by another node: taken only for a scope this node has a rule for, as only those
   * are enforced (a ban of another scope was listed and counted here, never enforced).
   */
  #remote(text: string): void {
    const e = remoteEvent(text);
    if (e?.type === 'ban' && this.#rules.has(e.ban.scope) && !this.#list.banned(e.ban.scope, e.ban.address))
      this.#apply(e.ban);
    else if (e?.type === 'unban' && this.#list.remove(e.address) > 0) this.#onChange(e);
  }

  /** Redis is (back) up: take the bans it holds, give it the ones made while it was away. */
  async #resync(): Promise<void> {
    const redis = this.#state?.redis;
    if (redis === undefined) return;
    try {
      await this.#liftPending();
      const now = Date.now();
      for (const key of await scanKeys(redis, `${PREFIX}ban:*`)) {
        const until = Number(await redis.get(key));
        const parts = keyParts(key, 'ban:');
        if (
          parts === null ||
          !this.#rules.has(parts.scope) ||
          !banTime(until) ||
          until <= now ||
          this.#list.banned(parts.scope, parts.address, now)
        )
          continue;
        const ban = { scope: parts.scope, address: parts.address, until };
        // Written back by a node that had not heard of a later unban.
        if (await this.#liftedSince(redis, ban)) await redis.del(key);
        else this.#apply(ban);
      }
      // Bans made here while Redis was away: stored, and announced to the nodes that resynchronised
      // first; a ban lifted elsewhere meanwhile is lifted here instead. The pending ones are among them.
      for (const ban of this.#list.all(now)) {
        if (await this.#liftedSince(redis, ban)) {
          if (this.#list.remove(ban.address) > 0) this.#onChange({ type: 'unban', address: ban.address });
        } else {
          const key = banKey(ban.scope, ban.address);
          if ((await redis.set(key, String(ban.until), 'PX', ban.until - now, 'NX')) === 'OK') {
            await redis.publish(this.#channel, JSON.stringify({ type: 'ban', ban }));
          }
        }
        this.#pendingBans.delete(entryId(ban.scope, ban.address));
      }
    } catch (err) {
      // A refused permission is reported (once) by the state, which goes down: read again when back.
      if (missingPermission(err) !== null) this.#state?.report(err);
      else this.#log.warn({ err }, 'shared state: could not resynchronise bans');
    }
  }

  #sweep(now = Date.now()): void {
    // Whatever Redis's state: during a long outage (or with a database it cannot select) every
    // ban made stayed here, expired ones included; only the live ones are still worth writing.
    for (const [id, ban] of this.#pendingBans) if (ban.until <= now) this.#pendingBans.delete(id);
    for (const [id, times] of this.#strikes) {
      const scope = id.slice(0, id.indexOf('\n'));
      const window = this.#rules.get(scope)?.windowMs ?? 0;
      if (times.every((t) => now - t >= window)) this.#strikes.delete(id);
    }
  }

  /** Stops timers and the subscription. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#list.close();
    this.#subscriber?.disconnect();
  }
}

function banKey(scope: string, address: string): string {
  return `${PREFIX}ban:${encodeURIComponent(scope)}:${address}`;
}

function strikeKey(scope: string, address: string): string {
  return `${PREFIX}strikes:${encodeURIComponent(scope)}:${address}`;
}

/** The scope and address of `sluice:<kind><scope, URI-encoded so it has no ':'>:<address, which may (IPv6)>`. */
function keyParts(key: string, kind: string): { scope: string; address: string } | null {
  const rest = key.slice(PREFIX.length + kind.length);
  const cut = rest.indexOf(':');
  if (cut <= 0) return null;
  try {
    return { scope: decodeURIComponent(rest.slice(0, cut)), address: rest.slice(cut + 1) };
  } catch {
    return null;
  }
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
