/**
 * The demo stack (CONTRACT section 9): `sluice start` in a directory without a config starts two
 * backends, a gateway balancing over them and the admin listener, prints a banner, serves a
 * thousand concurrent 2 s `/slow` requests together, and stops on SIGINT.
 */
import { Agent, request } from 'undici';
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
import { http } from '../helpers/http.js';

describe('sluice start without a config: the demo stack (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let demo: CliProcess;
  let port: number;
  let adminPort: number;
  let gateway: string;
  let admin: string;

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
    port = await freePort();
    adminPort = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    admin = `http://127.0.0.1:${adminPort}`;
    demo = spawnCli(['start'], {
      cwd: tmp.path,
      env: {
        SLUICE_DEMO_PORT: String(port),
        SLUICE_DEMO_ADMIN_PORT: String(adminPort),
        SLUICE_DEMO_LOG_FORMAT: 'json',
      },
    });
    await waitForPort(port, { proc: demo });
    await waitForPort(adminPort, { proc: demo });
    await demo.waitFor(({ stdout }) => stdout.includes('Stop with Ctrl-C'), 'the demo banner');
  });

  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  /** Backend name to URL, as the banner lists them. */
  function bannerBackends(): Map<string, string> {
    const found = new Map<string, string>();
    for (const m of demo.stdout().matchAll(/^ {2}backend +(\S+) +(http:\/\/127\.0\.0\.1:\d+)/gm))
      found.set(m[1]!, m[2]!);
    return found;
  }

  it('prints a banner with the backends, the gateway and admin URLs and three commands to try', () => {
    const out = demo.stdout();
    expect(out).toContain('sluice demo stack');
    expect([...bannerBackends().keys()]).toEqual(['demo-a', 'demo-b']);
    expect(out).toMatch(new RegExp(`^ {2}gateway +demo +${gateway} `, 'm'));
    expect(out).toMatch(new RegExp(`^ {2}admin +${admin} `, 'm'));
    const tryAt = out.indexOf('Try:');
    expect(tryAt).toBeGreaterThan(-1);
    const commands = out
      .slice(tryAt)
      .split('\n')
      .filter((l) => /^ {2}\S/.test(l));
    expect(commands).toHaveLength(3);
    expect(commands[0]).toContain(`curl ${gateway}/hello`);
    expect(commands[1]).toContain(`${gateway}/slow`);
    expect(commands[2]).toContain(`curl ${admin}/api/status`);
  });

  it('logs as JSON lines with SLUICE_DEMO_LOG_FORMAT=json', async () => {
    const [started] = await demo.waitForJson((l) => l.msg === 'sluice started');
    expect(started).toMatchObject({
      level: 'info',
      listen: [`127.0.0.1:${port}`],
    });
  });

  it('balances GET /hello over the two backends', async () => {
    const a = await http(`${gateway}/hello`);
    const b = await http(`${gateway}/hello`);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const answers = [a.json(), b.json()] as { backend: string; path: string; method: string }[];
    expect(answers.map((x) => x.path)).toEqual(['/hello', '/hello']);
    expect(answers.map((x) => x.backend).sort()).toEqual(['demo-a', 'demo-b']);
    const lines = await demo.waitForJson((l) => l.msg === 'request' && l.path === '/hello', 2);
    const backends = bannerBackends();
    expect(lines.map((l) => l.target).sort()).toEqual(
      [backends.get('demo-a'), backends.get('demo-b')].sort(),
    );
    for (const l of lines)
      expect(l).toMatchObject({ status: 200, server: 'demo', route: 'app', upstream: 'demo' });
  });

  it('answers /healthz itself', async () => {
    const r = await http(`${gateway}/healthz`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok\n');
  });

  it('serves the dashboard page at admin / and the status document at /api/status', async () => {
    const page = await http(`${admin}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toMatch(/^<!doctype html>/i);
    expect(page.body).toContain('/api/stats');

    const status = await http(`${admin}/api/status`);
    expect(status.status).toBe(200);
    expect(status.headers['content-type']).toMatch(/^application\/json/);
    const doc = status.json() as {
      version: string;
      pid: number;
      servers: { name: string; listen: string[]; routes: { name: string; action: string }[] }[];
      upstreams: { name: string; targets: { target: string; state: string }[] }[];
    };
    expect(doc.pid).toBe(demo.pid);
    expect(doc.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.servers).toHaveLength(1);
    expect(doc.servers[0]).toMatchObject({ name: 'demo', listen: [`127.0.0.1:${port}`] });
    expect(doc.servers[0]!.routes).toEqual([
      { name: 'health', action: 'respond' },
      { name: 'app', action: 'proxy' },
    ]);
    const demoUpstream = doc.upstreams.find((u) => u.name === 'demo')!;
    expect(demoUpstream).toBeDefined();
    expect(demoUpstream.targets.map((t) => t.target).sort()).toEqual([...bannerBackends().values()].sort());
    for (const t of demoUpstream.targets) expect(t.state).toBe('up');
  });

  it('1000 concurrent GET /slow (2 s each) all answer 200 in under 6 s', async () => {
    const agent = new Agent({ connections: 1000, pipelining: 1 });
    try {
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 1000 }, async () => {
          const res = await request(`${gateway}/slow`, { dispatcher: agent });
          const body = (await res.body.json()) as { backend: string; path: string };
          return { status: res.statusCode, backend: body.backend, path: body.path };
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      console.log(`demo: 1000 concurrent GET /slow finished in ${seconds.toFixed(2)} s`);
      expect(results.filter((r) => r.status === 200)).toHaveLength(1000);
      expect(results.every((r) => r.path === '/slow')).toBe(true);
      // Round-robin: each backend took half.
      expect(results.filter((r) => r.backend === 'demo-a')).toHaveLength(500);
      expect(results.filter((r) => r.backend === 'demo-b')).toHaveLength(500);
      // Each request waits 2 s; together they must not queue behind one another.
      expect(seconds).toBeGreaterThanOrEqual(1.9);
      expect(seconds).toBeLessThan(6);
    } finally {
      await agent.close();
    }
  });

  it('ignores SIGHUP (no config file to reload) and keeps serving', async () => {
    demo.signal('SIGHUP');
    const [warned] = await demo.waitForJson(
      (l) => l.level === 'warn' && /SIGHUP ignored/.test(String(l.msg)),
    );
    expect(warned).toBeDefined();
    expect(demo.exited()).toBeNull();
    expect((await http(`${gateway}/healthz`)).status).toBe(200);
  });

  it('SIGINT stops the demo: exit 0, gateway, admin and backends closed', async () => {
    const backends = [...bannerBackends().values()].map((u) => Number(new URL(u).port));
    demo.signal('SIGINT');
    const exit = await demo.waitForExit(15_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(demo.jsonLines().find((l) => l.msg === 'stopping')).toMatchObject({ signal: 'SIGINT' });
    for (const p of [port, adminPort, ...backends])
      await expect(waitForPort(p, { timeoutMs: 100 })).rejects.toThrow(/did not accept/);
  });
});
