/** Pure security decisions: the admin role matrix, token identification, buckets, allow/deny, bans. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isCrossSite } from '../../src/admin/cross-site.js';
import { authorize, type Caller, type Endpoint, MATRIX } from '../../src/admin/rbac.js';
import { identify } from '../../src/admin/tokens.js';
import type { AdminRole, ResolvedToken } from '../../src/config/types.js';
import { AccessControl } from '../../src/security/access-control.js';
import { BanList } from '../../src/security/ban-list.js';
import { BanManager } from '../../src/security/ban-manager.js';
import { LocalRateLimiter, workerBurst } from '../../src/security/rate-limiter.js';
import { fullBucket, take } from '../../src/security/token-bucket.js';
import { resolve } from '../helpers/sluice.js';

const ROLES: AdminRole[] = ['viewer', 'developer', 'operator'];

/** CONTRACT section 6, written out independently of MATRIX: endpoint → roles allowed. */
const EXPECTED: Record<Endpoint, AdminRole[] | 'public'> = {
  dashboard: 'public',
  status: ['viewer', 'developer', 'operator'],
  upstreams: ['viewer', 'developer', 'operator'],
  bans: ['viewer', 'developer', 'operator'],
  stats: ['viewer', 'developer', 'operator'],
  metrics: ['viewer', 'developer', 'operator'],
  config: ['developer', 'operator'],
  pprof: ['developer'],
  handles: ['developer'],
  reload: ['operator'],
  target: ['operator'],
  unban: ['operator'],
};

describe('admin role matrix', () => {
  const endpoints = Object.keys(MATRIX) as Endpoint[];
  const withTokens = { tokensConfigured: true, metricsAuth: true };

  it('lists every endpoint of CONTRACT section 6', () => {
    expect(endpoints.sort()).toEqual((Object.keys(EXPECTED) as Endpoint[]).sort());
  });

  for (const endpoint of Object.keys(EXPECTED) as Endpoint[]) {
    const allowed = EXPECTED[endpoint];
    for (const role of ROLES) {
      const want = allowed === 'public' || allowed.includes(role) ? 'allow' : 'forbidden';
      it(`${endpoint} × ${role}: ${want}`, () => {
        expect(authorize(endpoint, { role }, withTokens)).toBe(want);
      });
    }
    for (const caller of ['no-token', 'unknown-token'] as Caller[]) {
      const want = allowed === 'public' ? 'allow' : 'unauthenticated';
      it(`${endpoint} × ${String(caller)}: ${want}`, () => {
        expect(authorize(endpoint, caller, withTokens)).toBe(want);
      });
    }
    const readOnly = !['reload', 'target', 'unban'].includes(endpoint);
    it(`${endpoint} without configured tokens: ${readOnly ? 'allow' : 'forbidden'}`, () => {
      expect(authorize(endpoint, 'no-token', { tokensConfigured: false, metricsAuth: false })).toBe(
        readOnly ? 'allow' : 'forbidden',
      );
    });
  }

  it('/metrics needs no token unless metrics_auth is true', () => {
    expect(authorize('metrics', 'no-token', { tokensConfigured: true, metricsAuth: false })).toBe('allow');
    expect(authorize('metrics', 'no-token', { tokensConfigured: true, metricsAuth: true })).toBe(
      'unauthenticated',
    );
  });
});

describe('admin token identification', () => {
  const sha = (t: string) => createHash('sha256').update(t).digest('hex');
  const tokens: ResolvedToken[] = [
    { name: 'grafana', role: 'viewer', sha256: sha('view-secret'), file: null },
    { name: 'ops', role: 'operator', sha256: sha('ops-secret'), file: null },
  ];

  it('finds the token by its hash, with any case of "Bearer"', () => {
    expect(identify('Bearer ops-secret', tokens)).toEqual({ caller: { role: 'operator' }, token: tokens[1] });
    expect(identify('bearer view-secret', tokens).token?.name).toBe('grafana');
  });

  it('tells no token from an unknown or malformed one', () => {
    expect(identify(undefined, tokens).caller).toBe('no-token');
    expect(identify('Bearer nope', tokens).caller).toBe('unknown-token');
    expect(identify('Basic b3BzLXNlY3JldA==', tokens).caller).toBe('unknown-token');
    expect(identify('Bearer ', tokens).caller).toBe('unknown-token');
  });
});

describe('admin requests from pages of other origins (tokenless listener)', () => {
  const host = '127.0.0.1:9090';

  it.each([
    [{}, false],
    [{ 'sec-fetch-site': 'same-origin' }, false],
    [{ 'sec-fetch-site': 'Same-Origin', origin: 'http://127.0.0.1:9090' }, false],
    [{ 'sec-fetch-site': 'none' }, false],
    [{ origin: 'HTTP://127.0.0.1:9090' }, false],
    [{ 'sec-fetch-site': 'cross-site' }, true],
    [{ 'sec-fetch-site': 'same-site' }, true],
    [{ 'sec-fetch-site': 'something-new' }, true],
    [{ 'sec-fetch-site': 'same-origin', origin: 'http://127.0.0.1:8080' }, true],
    [{ origin: 'http://localhost:9090' }, true],
    [{ origin: 'https://127.0.0.1:9090' }, true],
    [{ origin: 'null' }, true],
    [{ origin: '' }, true],
  ])('%j → %s', (headers, refused) => {
    expect(isCrossSite(headers, host)).toBe(refused);
  });

  it('compares the origin with the Host the request was sent to, default port and case aside', () => {
    expect(isCrossSite({ origin: 'http://localhost' }, 'LOCALHOST:80')).toBe(false);
    expect(isCrossSite({ origin: 'http://[::1]:9090' }, '[::1]:9090')).toBe(false);
    expect(isCrossSite({ origin: 'http://[::1]:9090' }, '[::1]:9091')).toBe(true);
  });
});

describe('token bucket', () => {
  it('lets burst + 1 through at once, then one per 1/rate seconds', () => {
    const b = fullBucket(2, 0);
    const at0 = [take(b, 10, 2, 0), take(b, 10, 2, 0), take(b, 10, 2, 0), take(b, 10, 2, 0)];
    expect(at0.map((r) => r.allowed)).toEqual([true, true, true, false]);
    expect(at0[3]).toMatchObject({ remaining: 0, retryAfter: 1, limit: 3 });
    expect(take(b, 10, 2, 50).allowed).toBe(false);
    expect(take(b, 10, 2, 100).allowed).toBe(true);
  });

  it('never holds more than burst + 1 tokens however long it idles', () => {
    const b = fullBucket(1, 0);
    take(b, 1, 1, 0);
    expect(take(b, 1, 1, 3_600_000)).toMatchObject({ allowed: true, remaining: 1 });
    expect(take(b, 1, 1, 3_600_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(take(b, 1, 1, 3_600_000)).toMatchObject({ allowed: false, retryAfter: 1, reset: 2 });
  });

  it('gives each of N workers 1/N of the rate and of the burst + 1 tokens', () => {
    const rule = { perSecond: 10, burst: 9, key: '$remote_addr', level: 'server' as const, zone: null };
    const limiter = new LocalRateLimiter(2);
    const results = Array.from({ length: 8 }, () => limiter.take('web', '10.0.0.1', rule, 1000));
    // burst 9 → 10 tokens, 5 per worker.
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
    expect(results[0]?.limit).toBe(5);
    expect(limiter.take('web', '10.0.0.2', rule, 1000).allowed).toBe(true);
    limiter.close();
  });

  it('splits burst + 1 over the workers with no more in all, but at least a token each', () => {
    // [burst, workers] → each worker's burst.
    const cases: [number, number, number][] = [
      [0, 1, 0],
      [5, 1, 5],
      [0, 2, 0],
      [2, 2, 0],
      [3, 2, 1],
      [9, 2, 4],
      [200, 3, 66],
      [2, 4, 0],
    ];
    for (const [burst, workers, want] of cases)
      expect([burst, workers, workerBurst(burst, workers)]).toEqual([burst, workers, want]);
    for (let workers = 1; workers <= 16; workers++) {
      for (let burst = 0; burst <= 100; burst++) {
        const tokens = workers * (workerBurst(burst, workers) + 1);
        expect(tokens).toBeLessThanOrEqual(Math.max(burst + 1, workers));
        expect(workerBurst(burst, workers)).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('with burst 2 over 2 workers, lets 2 through at once in all and says RateLimit-Limit 1', () => {
    const rule = { perSecond: 1 / 60, burst: 2, key: '$remote_addr', level: 'server' as const, zone: null };
    const workers = [new LocalRateLimiter(2), new LocalRateLimiter(2)];
    // Requests spread over both workers in turn, as the primary hands out connections.
    const results = Array.from({ length: 10 }, (_, i) => workers[i % 2]!.take('web', '10.0.0.1', rule, 1000));
    expect(results.map((r) => r.allowed)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(results.map((r) => r.limit)).toEqual(Array(10).fill(1));
    for (const w of workers) w.close();
  });
});

describe('allow/deny', () => {
  const access = (yamlAccess: unknown) => {
    const config = resolve({
      servers: [
        { listen: '127.0.0.1:0', access: yamlAccess as never, routes: [{ respond: { status: 204 } }] },
      ],
    });
    return new AccessControl(config.servers[0]!.guards.access!);
  };

  it('the ordered list form is nginx: first match wins, no match is allowed', () => {
    const a = access([
      { deny: '192.168.1.1' },
      { allow: '192.168.1.0/24' },
      { allow: '2001:db8::/32' },
      { deny: 'all' },
    ]);
    expect(a.allows('192.168.1.1')).toBe(false);
    expect(a.allows('192.168.1.77')).toBe(true);
    expect(a.allows('2001:db8::5')).toBe(true);
    expect(a.allows('2001:db9::5')).toBe(false);
    expect(a.allows('10.0.0.1')).toBe(false);
    expect(a.allows('::ffff:192.168.1.77')).toBe(true);
  });

  it('the object form: allow first, then deny; an allow list alone admits only itself', () => {
    const only = access({ allow: ['10.0.0.0/8', '::1'] });
    expect(only.allows('10.9.9.9')).toBe(true);
    expect(only.allows('::1')).toBe(true);
    expect(only.allows('11.0.0.1')).toBe(false);
    const block = access({ deny: ['203.0.113.0/24', 'fe80::/10'] });
    expect(block.allows('203.0.113.9')).toBe(false);
    expect(block.allows('fe80::1')).toBe(false);
    expect(block.allows('198.51.100.1')).toBe(true);
    const both = access({ allow: ['10.1.0.0/16'], deny: ['10.0.0.0/8'] });
    expect(both.allows('10.1.2.3')).toBe(true);
    expect(both.allows('10.2.2.3')).toBe(false);
  });
});

describe('ban list', () => {
  it('bans per scope until the deadline, and unbans an address everywhere', () => {
    const list = new BanList();
    list.add({ scope: 'web', address: '10.0.0.1', until: 1000 }, 0);
    list.add({ scope: 'web/api', address: '10.0.0.1', until: 2000 }, 0);
    expect(list.banned('web', '10.0.0.1', 999)).toBe(true);
    expect(list.banned('web', '10.0.0.2', 999)).toBe(false);
    expect(list.banned('other', '10.0.0.1', 999)).toBe(false);
    expect(list.banned('web', '10.0.0.1', 1000)).toBe(false);
    expect(list.all(1500)).toHaveLength(1);
    expect(list.remove('10.0.0.1', 1500)).toBe(1);
    expect(list.all(0)).toHaveLength(0);
    list.close();
  });

  it('drops expired bans in slices that resume where the last stopped; lifting one counts as none', () => {
    const list = new BanList();
    for (let i = 0; i < 10; i++) list.add({ scope: 'web', address: `10.0.0.${i}`, until: 1000 + i * 100 }, 0);
    list.add({ scope: 'web', address: '10.0.1.1', until: 5000 }, 0);
    expect(list.size).toBe(11);
    list.sweep(0, 100); // ends the pass the adds began: the next starts from the oldest
    list.sweep(1500, 4);
    // The first 4 (until 1000..1300) looked at and dropped; 1400 and 1500 expired too, not yet seen.
    expect(list.size).toBe(7);
    list.sweep(1500, 4);
    expect(list.size).toBe(5);
    list.sweep(1500, 100);
    expect(list.size).toBe(5);
    // An expired ban not yet swept is lifted (dropped) but was not in force.
    expect(list.remove('10.0.0.9', 2000)).toBe(0);
    expect(list.remove('10.0.1.1', 2000)).toBe(1);
    list.sweep(10_000, 100);
    expect(list.size).toBe(0);
    list.close();
  });

  it('keeps a flood of short bans near the number in force, with no timed sweep', () => {
    const list = new BanList();
    let most = 0;
    // 100 000 addresses of one /64, 1 000 a second, each banned for 1 s.
    for (let i = 0; i < 100_000; i++) {
      const now = i;
      list.add({ scope: 'web', address: `2001:db8:0:5::${i.toString(16)}`, until: now + 1000 }, now);
      most = Math.max(most, list.size);
    }
    // 1 000 in force at any time; without the steps per add, all 100 000.
    expect(most).toBeLessThan(3000);
    list.close();
  });
  it('keeps a limited client limited while others flood it with 150,000 new keys (no reset at the bound)', () => {
    const rule = { perSecond: 1 / 60, burst: 0, key: '$http_x_key', level: 'server' as const, zone: null };
    const limiter = new LocalRateLimiter(1);
    let now = 1000;
    expect(limiter.take('web', 'limited', rule, now).allowed).toBe(true);
    for (let i = 0; i < 150_000; i++) {
      limiter.take('web', `spray-${i}`, rule, now);
      // The limited client keeps trying every thousand keys, and stays refused.
      if (i % 1000 === 0) expect(limiter.take('web', 'limited', rule, now++).allowed).toBe(false);
    }
    expect(limiter.size).toBeLessThanOrEqual(100_000);
    // The least recently used keys went: the earliest sprayed ones, not the latest.
    expect(limiter.take('web', 'spray-149999', rule, now).allowed).toBe(false);
    expect(limiter.take('web', 'spray-0', rule, now).allowed).toBe(true);
    limiter.close();
  });
});

describe('ban manager', () => {
  const log = { error: () => undefined, warn: () => undefined, info: () => undefined };
  /** A manager without Redis for a rule on 404s of scope `web`, and the events it told. */
  const managerFor = (max: number, windowMs: number) => {
    const events: string[] = [];
    const manager = new BanManager(null, log, (e) => events.push(e.type));
    const rule = {
      statuses: [404],
      max,
      windowMs,
      durationMs: 1000,
      per: 'address',
      level: 'server',
    } as const;
    manager.setRules(new Map([['web', rule]]));
    return { manager, events };
  };

  it('answers the lifting of an expired ban as of an unknown one, and lists it nowhere', async () => {
    const { manager, events } = managerFor(1, 10_000);
    manager.strike('web', '2001:db8:0:5::1', 1, Date.now() - 5000);
    manager.strike('web', '2001:db8:0:5::2', 1);
    expect(events).toEqual(['ban', 'ban']);
    expect(manager.all().map((b) => b.address)).toEqual(['2001:db8:0:5::2']);
    expect(await manager.unban('2001:db8:0:5::1')).toBe(0);
    expect(await manager.unban('2001:db8:0:5::2')).toBe(1);
    manager.close();
  });

  it('keeps strikes for at most 100,000 clients, forgetting the least recently struck', () => {
    const { manager, events } = managerFor(4, 600_000);
    manager.strike('web', '203.0.113.1', 2);
    for (let i = 0; i < 120_000; i++) {
      manager.strike('web', `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`, 1);
      // A client striking now and then is among the recently used, and is kept.
      if (i === 60_000) manager.strike('web', '203.0.113.1', 1);
    }
    expect(events).toEqual([]);
    manager.strike('web', '203.0.113.1', 1);
    expect(events).toEqual(['ban']);
    // The first sprayed address was forgotten: three more strikes do not ban it.
    manager.strike('web', '2001:db8::0:0', 3);
    expect(events).toEqual(['ban']);
    manager.close();
  });
});
