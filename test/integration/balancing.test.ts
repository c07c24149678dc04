/**
 * Load balancing and upstream health with real upstream servers on loopback: failover without
 * losing idempotent requests, backups, active health checks, nginx's retry rules, runtime drain.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { resolve, startSluice, type TestSluice } from '../helpers/sluice.js';

/** A named upstream that answers with its name; its status and liveness can be changed. */
async function backend(name: string, port = 0) {
  const sockets = new Set<Socket>();
  const state = { status: 200, health: 200, hits: 0, delayMs: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      res.writeHead(state.health).end();
      return;
    }
    state.hits++;
    const answer = () => res.writeHead(state.status, { 'content-type': 'text/plain' }).end(name);
    if (state.delayMs > 0) setTimeout(answer, state.delayMs);
    else answer();
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const actualPort = (server.address() as AddressInfo).port;
  return {
    name,
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}`,
    state,
    /** Stops listening and resets every open connection, like a process killed. */
    kill: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.resetAndDestroy();
      }),
  };
}

type Backend = Awaited<ReturnType<typeof backend>>;

const running: { sluice?: TestSluice; backends: Backend[] } = { backends: [] };

afterEach(async () => {
  await running.sluice?.close();
  for (const b of running.backends) await b.kill().catch(() => undefined);
  running.sluice = undefined;
  running.backends = [];
});

async function setup(
  backends: Backend[],
  upstream: Record<string, unknown>,
  proxy: Record<string, unknown> = {},
) {
  running.backends = backends;
  const config = {
    servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app', ...proxy } }] }],
    upstreams: { app: { targets: backends.map((b) => ({ url: b.url })), ...upstream } },
  } as SluiceConfigInput;
  running.sluice = await startSluice(config);
  return running.sluice;
}

const get = async (
  url: string,
  init: { method?: 'GET' | 'POST'; body?: string; dispatcher?: Agent } = {},
) => {
  const res = await request(url, {
    method: init.method ?? 'GET',
    body: init.body,
    dispatcher: init.dispatcher,
  });
  return { status: res.statusCode, body: await res.body.text() };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('balancing and failover', () => {
  it('loses no idempotent request when a target is killed mid-load', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await backend('c');
    for (const x of [a, b, c]) x.state.delayMs = 5;
    const sluice = await setup([a, b, c], { max_fails: 1, fail_timeout: '10s' });
    const agent = new Agent({ connections: 32 });
    const results: number[] = [];
    let stop = false;
    const workers = Array.from({ length: 16 }, async () => {
      while (!stop) results.push((await get(`${sluice.url}/load`, { dispatcher: agent })).status);
    });
    await sleep(300);
    await b.kill();
    await sleep(700);
    stop = true;
    await Promise.all(workers);
    await agent.close();
    expect(results.length).toBeGreaterThan(200);
    expect(results.filter((s) => s !== 200)).toEqual([]);
    const upstreams = sluice.instance.upstreams().upstreams[0] as {
      targets: { target: string; state: string }[];
    };
    expect(upstreams.targets.find((t) => t.target === b.url)?.state).toBe('failed');
    expect(
      sluice.logs.some((l) => l.msg === 'upstream target temporarily disabled' && l.target === b.url),
    ).toBe(true);
  });

  it('sends traffic to a backup only when every primary is down', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const spare = await backend('spare');
    running.backends = [a, b, spare];
    running.sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'app' } }] }],
      upstreams: {
        app: {
          targets: [{ url: a.url }, { url: b.url }, { url: spare.url, backup: true }],
          fail_timeout: '30s',
        },
      },
    });
    const url = `${running.sluice.url}/x`;
    const first = await Promise.all(Array.from({ length: 10 }, () => get(url)));
    expect(new Set(first.map((r) => r.body))).toEqual(new Set(['a', 'b']));
    await a.kill();
    await b.kill();
    const after = await Promise.all(Array.from({ length: 10 }, () => get(url)));
    expect(after.map((r) => r.body)).toEqual(Array(10).fill('spare'));
  });

  it('answers 502 "no live upstreams" when every target is out, and recovers after fail_timeout', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const sluice = await setup([a, b], { fail_timeout: '1s' });
    const port = a.port;
    await a.kill();
    await b.kill();
    expect((await get(`${sluice.url}/x`)).status).toBe(502);
    const again = await get(`${sluice.url}/x`);
    expect(again.status).toBe(502);
    expect(JSON.parse(again.body).code).toBe('SLUICE_E_UPSTREAM_NO_LIVE');
    const revived = await backend('a2', port);
    running.backends.push(revived);
    await sleep(1100);
    expect((await get(`${sluice.url}/x`)).body).toBe('a2');
  });

  it('passes a listed status to the next target, relays it when no target is left', async () => {
    const a = await backend('a');
    const b = await backend('b');
    a.state.status = 503;
    const sluice = await setup([a, b], { retry: { on: ['error', 'timeout', 'http_503'] } });
    for (let i = 0; i < 6; i++) expect((await get(`${sluice.url}/x`)).body).toBe('b');
    b.state.status = 503;
    const both = await get(`${sluice.url}/x`);
    expect(both.status).toBe(503);
    const lines = await sluice.waitForAccessLines(7);
    expect(lines.some((l) => l.attempts === 2)).toBe(true);
  });

  it('counts a listed status against a target only when it passes the request on, as nginx', async () => {
    const targets = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    const sluice = await setup(targets, {
      max_fails: 1,
      fail_timeout: '10s',
      retry: { on: ['error', 'timeout', 'http_502', 'http_503'], tries: 3 },
    });
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] }).targets.map(
        (t) => t.state,
      );
    // A momentary 503 from every target: the first two are passed on (and rest), the last is relayed.
    for (const t of targets) t.state.status = 503;
    expect((await get(`${sluice.url}/x`)).status).toBe(503);
    expect(states().filter((s) => s === 'failed')).toHaveLength(2);
    for (const t of targets) t.state.status = 200;
    for (let i = 0; i < 3; i++) expect((await get(`${sluice.url}/x`)).status).toBe(200);
    // A POST answered 503 is relayed, never passed on: not a failure.
    sluice.instance.enableTarget('app', 0);
    sluice.instance.enableTarget('app', 1);
    for (const t of targets) t.state.status = 503;
    expect((await get(`${sluice.url}/x`, { method: 'POST', body: 'x' })).status).toBe(503);
    expect(states()).toEqual(['up', 'up', 'up']);
  });

  it('does not count a listed status on the last allowed try against its target', async () => {
    const targets = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    for (const t of targets) t.state.status = 503;
    const sluice = await setup(targets, { retry: { on: ['error', 'timeout', 'http_503'], tries: 2 } });
    expect((await get(`${sluice.url}/x`)).status).toBe(503);
    const view = sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] };
    expect(targets.map((t) => t.state.hits).reduce((s, n) => s + n)).toBe(2);
    expect(view.targets.filter((t) => t.state === 'failed')).toHaveLength(1);
  });

  it('answers 502 "no live upstreams" after a timeout when the other targets rest, as nginx', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const sluice = await setup([a, b], { fail_timeout: '10s' }, { timeouts: { read: '300ms' } });
    await a.kill();
    expect((await get(`${sluice.url}/x`)).body).toBe('b');
    // a rests (max_fails 1); b times out; a retry remains but nothing can take it.
    b.state.delayMs = 1000;
    const nolive = await get(`${sluice.url}/x`);
    expect(nolive.status).toBe(502);
    expect(JSON.parse(nolive.body).code).toBe('SLUICE_E_UPSTREAM_NO_LIVE');
  });

  it('answers 504 when every target was tried and timed out', async () => {
    const targets = await Promise.all(['a', 'b'].map((n) => backend(n)));
    for (const t of targets) t.state.delayMs = 1000;
    const sluice = await setup(targets, { max_fails: 0 }, { timeouts: { read: '300ms' } });
    const res = await get(`${sluice.url}/x`);
    expect(res.status).toBe(504);
    expect(targets.map((t) => t.state.hits)).toEqual([1, 1]);
  });

  it('does not pass a POST on once it was sent, but does retry a GET', async () => {
    const a = await backend('a');
    const b = await backend('b');
    a.state.status = 502;
    b.state.status = 502;
    // max_fails 0: listed statuses would otherwise take each target out after one 502.
    const sluice = await setup([a, b], { max_fails: 0, retry: { on: ['error', 'timeout', 'http_502'] } });
    const before = a.state.hits + b.state.hits;
    expect((await get(`${sluice.url}/x`, { method: 'POST', body: 'payload' })).status).toBe(502);
    expect(a.state.hits + b.state.hits - before).toBe(1);
    expect((await get(`${sluice.url}/x`)).status).toBe(502);
    expect(a.state.hits + b.state.hits - before).toBe(3);
  });

  it('tries each target at most once and stops at retry.tries', async () => {
    const targets = await Promise.all(['a', 'b', 'c', 'd'].map((n) => backend(n)));
    for (const t of targets) t.state.status = 502;
    const sluice = await setup(targets, { max_fails: 0, retry: { on: ['http_502'], tries: 3 } });
    await get(`${sluice.url}/x`);
    expect(targets.map((t) => t.state.hits).reduce((s, n) => s + n)).toBe(3);
    expect(Math.max(...targets.map((t) => t.state.hits))).toBe(1);
  });

  it('drains and enables a target at run time', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const sluice = await setup([a, b], {});
    expect(sluice.instance.drainTarget('app', 0)).toBe(a.url);
    const answers = await Promise.all(Array.from({ length: 6 }, () => get(`${sluice.url}/x`)));
    expect(answers.map((r) => r.body)).toEqual(Array(6).fill('b'));
    const view = sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] };
    expect(view.targets.map((t) => t.state)).toEqual(['draining', 'up']);
    sluice.instance.enableTarget('app', 0);
    const later = await Promise.all(Array.from({ length: 6 }, () => get(`${sluice.url}/x`)));
    expect(new Set(later.map((r) => r.body))).toEqual(new Set(['a', 'b']));
    expect(sluice.instance.drainTarget('app', 9)).toBeNull();
  });

  it('balances by least_conn towards the target with fewer requests in flight', async () => {
    const slow = await backend('slow');
    const fast = await backend('fast');
    slow.state.delayMs = 300;
    const sluice = await setup([slow, fast], { balance: 'least_conn' });
    const agent = new Agent({ connections: 16 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => get(`${sluice.url}/x`, { dispatcher: agent })),
    );
    await agent.close();
    // The slow target holds its requests; least_conn sends the rest to the fast one.
    expect(answers.filter((r) => r.body === 'fast').length).toBeGreaterThan(15);
  });

  it('keeps a client on one target with ip_hash, and a key on one target with hash', async () => {
    const targets = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    const sluice = await setup(targets, { balance: 'hash', hash_key: '$http_x_user' });
    const byUser = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 12; u++) {
        const res = await request(`${sluice.url}/x`, { headers: { 'x-user': `user-${u}` } });
        const body = await res.body.text();
        if (round === 0) byUser.set(`user-${u}`, body);
        else expect(body).toBe(byUser.get(`user-${u}`));
      }
    }
    expect(new Set(byUser.values()).size).toBeGreaterThan(1);
  });
});

describe('active health checks', () => {
  it('takes a target out after fall failures and brings it back after rise passes', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const sluice = await setup([a, b], {
      health_check: { path: '/healthz', interval: '100ms', timeout: '500ms', rise: 2, fall: 2 },
    });
    const waitFor = async (cond: () => boolean) => {
      const until = Date.now() + 5000;
      while (!cond() && Date.now() < until) await sleep(20);
      expect(cond()).toBe(true);
    };
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { health: string }[] }).targets.map(
        (t) => t.health,
      );
    await waitFor(() => states().join() === 'up,up');
    b.state.health = 500;
    await waitFor(() => states().join() === 'up,down');
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(`${sluice.url}/x`)));
    expect(answers.map((r) => r.body)).toEqual(Array(8).fill('a'));
    b.state.health = 200;
    await waitFor(() => states().join() === 'up,up');
    const later = await Promise.all(Array.from({ length: 8 }, () => get(`${sluice.url}/x`)));
    expect(new Set(later.map((r) => r.body))).toEqual(new Set(['a', 'b']));
    // With why: the line said only "target down".
    expect(
      sluice.logs.find((l) => l.msg === 'health check: target down' && l.target === b.url),
    ).toMatchObject({
      reason: 'status 500',
    });
  });

  // The target kept the removed check's last result: nothing probed it again, and it never served
  // again until a restart (reloads, worker restarts and the admin enable did not bring it back).
  it('forgets the results of a health check removed by a reload', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const upstream = (extra: Record<string, unknown>) =>
      ({
        servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app' } }] }],
        upstreams: { app: { targets: [{ url: a.url }, { url: b.url }], ...extra } },
      }) as SluiceConfigInput;
    running.backends = [a, b];
    b.state.health = 500;
    const sluice = await startSluice(
      upstream({ health_check: { path: '/healthz', interval: '100ms', timeout: '500ms', rise: 1, fall: 1 } }),
    );
    running.sluice = sluice;
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { health: string }[] }).targets.map(
        (t) => t.health,
      );
    const until = Date.now() + 5000;
    while (states().join() !== 'up,down' && Date.now() < until) await sleep(20);
    expect(states()).toEqual(['up', 'down']);
    await sluice.instance.reload(resolve(upstream({})));
    expect(states()).toEqual(['up', 'up']);
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(`${sluice.url}/x`)));
    expect(new Set(answers.map((r) => r.body))).toEqual(new Set(['a', 'b']));
  });
});

// A reload that changed a target's weight, or its upstream's keepalive settings, built a new
// target object for the same URL, and the operator's drain was lost with the old one: requests
// went to the drained target again while nobody had enabled it.
describe('a reload that rebuilds a target (new weight or keep-alive settings)', () => {
  it('keeps its drain, its active-check result and its max_fails rest', async () => {
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) => backend(n)));
    running.backends = [a!, b!, c!, d!];
    const config = (weight: number, keepaliveTimeout: string) =>
      ({
        servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app' } }] }],
        upstreams: {
          app: {
            targets: [a!, b!, c!, d!].map((t) => ({ url: t.url, weight })),
            keepalive_timeout: keepaliveTimeout,
            max_fails: 1,
            fail_timeout: '60s',
            retry: { on: ['error', 'http_502'] },
            health_check: { path: '/healthz', interval: '100ms', timeout: '500ms', rise: 1, fall: 1 },
          },
        },
      }) as SluiceConfigInput;
    c!.state.health = 500;
    const sluice = await startSluice(config(1, '4s'));
    running.sluice = sluice;
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] }).targets.map(
        (t) => t.state,
      );
    const until = Date.now() + 5000;
    while (states().join() !== 'up,up,down,up' && Date.now() < until) await sleep(20);
    expect(states()).toEqual(['up', 'up', 'down', 'up']);
    expect(sluice.instance.drainTarget('app', 0)).toBe(a!.url);
    // b fails once (max_fails 1): it rests for a minute; the request goes on to d.
    b!.state.status = 502;
    while (b!.state.hits === 0 && Date.now() < until) await get(`${sluice.url}/x`);
    b!.state.status = 200;
    expect(states()).toEqual(['draining', 'failed', 'down', 'up']);

    for (const next of [config(2, '4s'), config(2, '3s')]) {
      await sluice.instance.reload(resolve(next));
      expect(states()).toEqual(['draining', 'failed', 'down', 'up']);
      const hits = [a!, b!, c!].map((t) => t.state.hits);
      const answers = await Promise.all(Array.from({ length: 8 }, () => get(`${sluice.url}/x`)));
      expect(answers.map((r) => r.body)).toEqual(Array(8).fill('d'));
      expect([a!, b!, c!].map((t) => t.state.hits)).toEqual(hits);
    }
  });
});

// A reload builds its new targets, then waits for DNS and binds new listeners before its tables
// serve: a drain or an enable in between reached only the old tables' targets, and a target the
// reload rebuilt kept what it had copied before (traffic to a target the API called draining).
describe('a drain or enable made while a reload waits for DNS', () => {
  it('holds in the tables the reload swaps in', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    running.backends = [a!, b!, c!];
    const config = (weight: number) =>
      ({
        servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app' } }] }],
        upstreams: {
          app: {
            targets: [
              { url: a!.url, weight },
              { url: b!.url, weight },
              { url: `http://svc.test:${c!.port}`, resolve: true, backup: true },
            ],
          },
        },
      }) as SluiceConfigInput;
    // The reload's first resolution of svc.test waits until the test lets it go.
    let lookups = 0;
    let opened = () => {};
    const reloadWaits = new Promise<void>((r) => {
      opened = r;
    });
    let answer = () => {};
    const answered = new Promise<void>((r) => {
      answer = r;
    });
    const sluice = await startSluice(config(1), {
      resolve: async () => {
        if (++lookups === 2) {
          opened();
          await answered;
        }
        return { addresses: ['127.0.0.1'], ttlMs: 60_000 };
      },
    });
    running.sluice = sluice;
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] }).targets.map(
        (t) => t.state,
      );
    expect(sluice.instance.drainTarget('app', 0)).toBe(a!.url);
    expect(states()).toEqual(['draining', 'up', 'backup']);

    // A new weight: a and b are built anew.
    const reloading = sluice.instance.reload(resolve(config(2)));
    await reloadWaits;
    expect(sluice.instance.enableTarget('app', 0)).toBe(a!.url);
    expect(sluice.instance.drainTarget('app', 1)).toBe(b!.url);
    answer();
    await reloading;

    expect(states()).toEqual(['up', 'draining', 'backup']);
    const answers = await Promise.all(Array.from({ length: 6 }, () => get(`${sluice.url}/x`)));
    expect(answers.map((r) => r.body)).toEqual(Array(6).fill('a'));
    expect(b!.state.hits).toBe(0);
  });
});

// A drain belongs to the URL: a `resolve: true` name that started to answer with a drained
// listed address gave a target at that URL that took traffic while the API said draining.
describe('a DNS target at a drained URL', () => {
  it('is drained with it, also after a reload rebuilds it', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map((n) => backend(n)));
    running.backends = [a!, b!];
    const config = (weight: number) =>
      ({
        servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app' } }] }],
        upstreams: {
          app: {
            targets: [
              { url: a!.url },
              { url: `http://svc.test:${a!.port}`, resolve: true, weight },
              { url: b!.url },
            ],
            dns: { min_ttl: '50ms', max_ttl: '50ms' },
          },
        },
      }) as SluiceConfigInput;
    let addresses: string[] = [];
    const sluice = await startSluice(config(1), {
      resolve: async () => {
        if (addresses.length === 0) throw new Error('svc.test: no such name');
        return { addresses, ttlMs: 0 };
      },
    });
    running.sluice = sluice;
    const states = () =>
      (sluice.instance.upstreams().upstreams[0] as { targets: { state: string }[] }).targets.map(
        (t) => t.state,
      );
    expect(sluice.instance.drainTarget('app', 0)).toBe(a!.url);
    addresses = ['127.0.0.1'];
    const until = Date.now() + 5000;
    while (states().length < 3 && Date.now() < until) await sleep(20);
    const onlyB = async () => {
      const answers = await Promise.all(Array.from({ length: 6 }, () => get(`${sluice.url}/x`)));
      expect(answers.map((r) => r.body)).toEqual(Array(6).fill('b'));
      expect(a!.state.hits).toBe(0);
    };
    expect(states()).toEqual(['draining', 'draining', 'up']);
    await onlyB();

    // A new weight for the name: its target is built anew, at the same URL.
    await sluice.instance.reload(resolve(config(2)));
    expect(states()).toEqual(['draining', 'draining', 'up']);
    await onlyB();
    expect(sluice.instance.enableTarget('app', 1)).toBe(a!.url);
    expect(states()).toEqual(['up', 'up', 'up']);
  });
});

// A reload that changed a weight took the target's state over as if nothing else had changed: the
// `up` of an unchecked target passed for a check result when the same reload added a check (while
// a target new to the upstream started unknown and was held back), and a failure counted under
// `max_fails: 0` took the target out at once under the `max_fails: 1` the reload brought.
describe('a reload that also changes the health settings', () => {
  const CHECK = { path: '/healthz', interval: '100ms', timeout: '500ms', rise: 1, fall: 1 };
  const config = (backends: Backend[], weights: number[], upstream: Record<string, unknown>) =>
    ({
      servers: [{ listen: '127.0.0.1:0', routes: [{ name: 'app', proxy: { upstream: 'app' } }] }],
      upstreams: {
        app: { targets: backends.map((b, i) => ({ url: b.url, weight: weights[i] ?? 1 })), ...upstream },
      },
    }) as SluiceConfigInput;
  const view = (sluice: TestSluice) =>
    (
      sluice.instance.upstreams().upstreams[0] as {
        targets: { state: string; health: string; fails: number }[];
      }
    ).targets;

  it('starts every target unknown when it adds a health check', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    running.backends = [a!, b!, c!];
    const sluice = await startSluice(config([a!, b!], [1, 1], {}));
    running.sluice = sluice;
    expect(view(sluice).map((t) => t.health)).toEqual(['up', 'up']);
    // a is built anew (weight), b is kept, c is new.
    await sluice.instance.reload(resolve(config([a!, b!, c!], [2, 1, 1], { health_check: CHECK })));
    expect(view(sluice).map((t) => t.health)).toEqual(['unknown', 'unknown', 'unknown']);
    const answers = await Promise.all(Array.from({ length: 9 }, () => get(`${sluice.url}/x`)));
    expect(new Set(answers.map((r) => r.body))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('forgets the failures counted under other max_fails or fail_timeout settings', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => backend(n)));
    running.backends = [a!, b!, c!];
    const upstream = (maxFails: number) => ({
      max_fails: maxFails,
      fail_timeout: '60s',
      retry: { on: ['error', 'http_502'] },
    });
    const sluice = await startSluice(config([a!, b!, c!], [1, 1, 1], upstream(0)));
    running.sluice = sluice;
    // b and c fail once each: counted, but max_fails 0 takes no target out.
    for (const t of [b!, c!]) {
      t.state.status = 502;
      const [hits, until] = [t.state.hits, Date.now() + 5000];
      while (t.state.hits === hits && Date.now() < until) await get(`${sluice.url}/x`);
      t.state.status = 200;
    }
    expect(view(sluice).map((t) => [t.state, t.fails])).toEqual([
      ['up', 0],
      ['up', 1],
      ['up', 1],
    ]);
    // b is built anew (weight), c is kept.
    await sluice.instance.reload(resolve(config([a!, b!, c!], [1, 2, 1], upstream(1))));
    expect(view(sluice).map((t) => t.state)).toEqual(['up', 'up', 'up']);
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(`${sluice.url}/x`)));
    expect(new Set(answers.map((r) => r.body))).toEqual(new Set(['a', 'b', 'c']));
  });
});
