import { describe, expect, it } from 'vitest';
import { resolveConfigObject } from '../../src/config/load.js';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import {
  CRASH_LOOP_COUNT,
  CrashTracker,
  isStartupCrash,
  MIN_UPTIME_MS,
  STABLE_UPTIME_MS,
} from '../../src/runtime/crash-tracker.js';
import { useReusePort } from '../../src/runtime/listen-mode.js';
import { Primary, workerV8Flags } from '../../src/runtime/primary.js';
import { lookupIds, workersKeepRoot } from '../../src/runtime/privileges.js';
import { planReload } from '../../src/runtime/reload-plan.js';

const resolved = (input: SluiceConfigInput): ResolvedConfig => {
  const r = resolveConfigObject(input, null);
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join('\n'));
  return r.config;
};

const base: SluiceConfigInput = {
  servers: [{ listen: '127.0.0.1:8080', routes: [{ respond: { body: 'a' } }] }],
};

describe('crash tracker', () => {
  /** A worker that never reported ready. */
  const failedStart = { uptimeMs: null, connected: false } as const;
  /** A worker that had taken connections and then died, after `uptimeMs`. */
  const served = (uptimeMs: number) => ({ uptimeMs, connected: true });

  it('backs off exponentially, then reports a crash loop at 5 start-up crashes in 60 s', () => {
    const t = new CrashTracker();
    expect([1000, 2000, 3000, 4000].map((now) => t.crashed(now, failedStart))).toEqual([
      { restartInMs: 100 },
      { restartInMs: 200 },
      { restartInMs: 400 },
      { restartInMs: 800 },
    ]);
    expect(t.crashed(5000, failedStart)).toEqual({ crashLoop: true, crashes: CRASH_LOOP_COUNT });
  });

  it('forgets start-up crashes older than 60 s', () => {
    const t = new CrashTracker();
    for (let i = 0; i < 4; i++) t.crashed(i * 1000, failedStart);
    // The 5th start-up crash, after a worker that lived 66 s: no loop, and the back-off starts again.
    expect(t.crashed(70_000, { uptimeMs: 66_000, connected: false })).toEqual({ restartInMs: 100 });
  });

  it('starts afresh after a reset', () => {
    const t = new CrashTracker();
    t.crashed(0, failedStart);
    t.reset();
    expect(t.crashed(1, failedStart)).toEqual({ restartInMs: 100 });
  });

  // A client that crashes every worker it reaches, every 0.5 s: the node used to give up at the
  // 5th crash of each slot and exit, and the back-off never went past 800 ms.
  it('never makes a crash loop of workers that had served, and doubles their back-off to 10 s', () => {
    const t = new CrashTracker();
    const delays = Array.from({ length: 10 }, (_, i) => t.crashed(i * 500, served(300)));
    expect(delays).toEqual(
      [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000].map((ms) => ({ restartInMs: ms })),
    );
    // 30 s of serving resets the back-off.
    expect(t.crashed(60_000, served(STABLE_UPTIME_MS))).toEqual({ restartInMs: 100 });
  });

  it('counts an idle worker that dies within the minimum uptime as a start-up crash, not one after it', () => {
    expect(isStartupCrash({ uptimeMs: 0, connected: false })).toBe(true);
    expect(isStartupCrash({ uptimeMs: MIN_UPTIME_MS - 1, connected: false })).toBe(true);
    expect(isStartupCrash({ uptimeMs: MIN_UPTIME_MS, connected: false })).toBe(false);
    expect(isStartupCrash({ uptimeMs: 10, connected: true })).toBe(false);
    expect(isStartupCrash(failedStart)).toBe(true);
    const t = new CrashTracker();
    for (let i = 0; i < 4; i++)
      expect(t.crashed(i, { uptimeMs: 100, connected: false })).toHaveProperty('restartInMs');
    // Stable crashes in between neither count nor hide the start-up ones.
    expect(t.crashed(5, served(100))).toHaveProperty('restartInMs');
    expect(t.crashed(6, { uptimeMs: 100, connected: false })).toEqual({ crashLoop: true, crashes: 5 });
  });
});

describe('reload plan', () => {
  it('swaps route and upstream changes into the running workers', () => {
    const next = resolved({
      ...base,
      servers: [{ listen: '127.0.0.1:8080', routes: [{ respond: { body: 'b' } }] }],
    });
    expect(planReload(resolved(base), next, { current: 2, next: 2 })).toEqual({ kind: 'swap' });
  });

  it('rolls new workers for worker count, user, logs, handlers and fixed listener options', () => {
    const current = resolved(base);
    expect(planReload(current, current, { current: 2, next: 3 })).toMatchObject({
      kind: 'roll',
      reasons: ['workers 2 → 3'],
    });
    expect(planReload(current, resolved({ ...base, user: 'nobody' }), { current: 2, next: 2 }).kind).toBe(
      'roll',
    );
    expect(
      planReload(current, resolved({ ...base, log: { level: 'debug' } }), { current: 2, next: 2 }).kind,
    ).toBe('roll');
    const bigger = resolved({
      servers: [{ listen: '127.0.0.1:8080', limits: { max_header: '32kb' }, routes: [{ respond: {} }] }],
    });
    expect(planReload(current, bigger, { current: 2, next: 2 })).toMatchObject({
      kind: 'roll',
      reasons: ['127.0.0.1:8080: max_header or backlog changed'],
    });
    const withHandler = resolved({
      servers: [{ listen: '127.0.0.1:8080', routes: [{ handler: 'test/fixtures/config/handlers/app.ts' }] }],
    });
    expect(planReload(current, withHandler, { current: 2, next: 2 }).kind).toBe('roll');
    // Each worker builds its span exporter when it starts: a swap left tracing as it was.
    const traced = resolved({ ...base, tracing: { otlp_endpoint: 'http://127.0.0.1:4318/v1/traces' } });
    expect(planReload(current, traced, { current: 2, next: 2 })).toMatchObject({
      kind: 'roll',
      reasons: ['tracing changed'],
    });
  });
});

describe('reload plan: limits of an address two servers share', () => {
  // The listener takes max_header and backlog from the address's default server: the first listed,
  // or the one marked default. Comparing the last server's limits instead ignored a change to them
  // (a swap left 2kb in force) and rolled the workers on every reload of an unchanged file.
  const shared = (web: Record<string, unknown>, other: Record<string, unknown> = {}) =>
    resolved({
      servers: [
        { name: 'web', listen: '127.0.0.1:8080', ...web, routes: [{ respond: {} }] },
        {
          name: 'other',
          listen: '127.0.0.1:8080',
          server_name: ['other.test'],
          ...other,
          routes: [{ respond: {} }],
        },
      ],
    });
  const workers = { current: 1, next: 1 };

  it('rolls when the default server changes them', () => {
    const before = shared({ limits: { max_header: '2kb' } });
    expect(planReload(before, shared({ limits: { max_header: '16kb' } }), workers)).toMatchObject({
      kind: 'roll',
      reasons: ['127.0.0.1:8080: max_header or backlog changed'],
    });
    expect(planReload(before, shared({}), workers).kind).toBe('roll');
  });

  it('swaps an unchanged file, and a change on a server that is not the default', () => {
    const before = shared({ limits: { max_header: '2kb' } });
    expect(planReload(before, shared({ limits: { max_header: '2kb' } }), workers)).toEqual({ kind: 'swap' });
    expect(
      planReload(
        before,
        shared({ limits: { max_header: '2kb' } }, { limits: { max_header: '8kb' } }),
        workers,
      ),
    ).toEqual({ kind: 'swap' });
  });

  it('follows default: true', () => {
    const before = shared({}, { default: true, limits: { max_header: '2kb' } });
    expect(
      planReload(before, shared({}, { default: true, limits: { max_header: '4kb' } }), workers).kind,
    ).toBe('roll');
    expect(
      planReload(
        before,
        shared({ limits: { max_header: '4kb' } }, { default: true, limits: { max_header: '2kb' } }),
        workers,
      ),
    ).toEqual({ kind: 'swap' });
  });
});

describe('listen mode', () => {
  const facts = { nodeHasReusePort: true, migrateReq: true, root: false };

  it('uses SO_REUSEPORT only where Node has it and the kernel migrates queued connections', () => {
    const c = resolved(base);
    expect(useReusePort(c, facts)).toBe(true);
    expect(useReusePort(c, { ...facts, nodeHasReusePort: false })).toBe(false);
    expect(useReusePort(c, { ...facts, migrateReq: false })).toBe(false);
  });

  it("keeps the primary's sockets when workers drop root but must serve a port below 1024", () => {
    const low = resolved({
      user: 'nobody',
      servers: [{ listen: '127.0.0.1:80', routes: [{ respond: {} }] }],
    });
    expect(useReusePort(low, { ...facts, root: true })).toBe(false);
    expect(useReusePort(low, { ...facts, root: false })).toBe(true);
  });
});

describe('user and group lookup', () => {
  const root = 'test/fixtures/hosts/basic/';

  it('finds the uid and the primary gid of a user, or a named or numeric group', () => {
    expect(lookupIds('nobody', null, root)).toEqual({ uid: 65534, gid: 65534 });
    expect(lookupIds('sluice', null, root)).toEqual({ uid: 998, gid: 997 });
    expect(lookupIds('sluice', 'web', root)).toEqual({ uid: 998, gid: 33 });
    expect(lookupIds('1234', '55', root)).toEqual({ uid: 1234, gid: 55 });
  });

  it('tells workers that keep root: no user, or one that is uid 0 under any name', () => {
    expect(workersKeepRoot(null, root)).toBe(true);
    expect(workersKeepRoot('root', root)).toBe(true);
    expect(workersKeepRoot('0', root)).toBe(true);
    expect(workersKeepRoot('sluice', root)).toBe(false);
    expect(workersKeepRoot('1000', root)).toBe(false);
    expect(workersKeepRoot('ghost', root)).toBe(false);
  });

  it('says which name does not exist', () => {
    expect(() => lookupIds('ghost', null, root)).toThrow('user "ghost" does not exist');
    expect(() => lookupIds('nobody', 'ghosts', root)).toThrow('group "ghosts" does not exist');
  });
});

describe('worker V8 flags', () => {
  it('adds the tuned defaults unless the operator gave the same flag', () => {
    expect(workerV8Flags([], '')).toEqual([
      '--no-allocation-site-pretenuring',
      '--initial-old-space-size=16',
      '--max-semi-space-size=4',
    ]);
    expect(workerV8Flags(['--max-semi-space-size=32'], '--allocation_site_pretenuring')).toEqual([
      '--initial-old-space-size=16',
    ]);
  });
});

describe('a reload whose config check throws', () => {
  // The error escaped: POST /api/reload answered 500, sluice reload saw no outcome, and neither
  // reloads.failure nor sluice_config_reloads_total{result="failure"} counted it.
  it('is a refused reload, numbered, shown by /api/status and never thrown', async () => {
    const primary = new Primary(resolved({ ...base, log: { level: 'error', access: 'off' } }), {
      file: 'sluice.yaml',
      reloadSource: async () => {
        throw new TypeError('Invalid URL');
      },
      onFatal: () => undefined,
    });
    try {
      const outcome = await primary.reloadFromFile();
      expect(outcome).toMatchObject({
        request: 1,
        ok: false,
        how: 'refused',
        problems: [
          expect.stringMatching(/^sluice\.yaml: SLUICE_E_RUNTIME_INTERNAL TypeError: Invalid URL \(hint: /),
        ],
      });
      expect(primary.lastReload).toEqual(outcome);
      const { reloads } = (await primary.status()) as { reloads: Record<string, unknown> };
      expect(reloads).toMatchObject({ requested: 1, success: 0, failure: 1, last: outcome });
    } finally {
      await primary.stop();
    }
  });
});
