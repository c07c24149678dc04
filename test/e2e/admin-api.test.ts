/**
 * The admin API's roles through the built CLI (CONTRACT section 6): every endpoint × every role ×
 * no token × an unknown token, over HTTP, with tokens from token_env, token_file and
 * token_sha256; audit lines for state changes; no secret in any output; `sluice reload` through
 * the API with SLUICE_ADMIN_TOKEN; and the read-only, loopback-only admin API without tokens.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  runCli,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

const SECRETS = {
  viewer: 'view-4b1d2c7a9e03f5',
  developer: 'dev-93ff0a6b21c8d4',
  operator: 'ops-e7a15c0d3f92b8',
};
type Caller = 'viewer' | 'developer' | 'operator' | 'none' | 'unknown';
const CALLERS: Caller[] = ['viewer', 'developer', 'operator', 'none', 'unknown'];

/** CONTRACT section 6, row by row: who may call each request. */
const MATRIX: { method: string; path: string; allowed: Caller[] | 'anyone' }[] = [
  { method: 'GET', path: '/', allowed: 'anyone' },
  { method: 'GET', path: '/assets/uplot.js', allowed: 'anyone' },
  { method: 'GET', path: '/api/status', allowed: ['viewer', 'developer', 'operator'] },
  { method: 'GET', path: '/api/upstreams', allowed: ['viewer', 'developer', 'operator'] },
  { method: 'GET', path: '/api/bans', allowed: ['viewer', 'developer', 'operator'] },
  { method: 'GET', path: '/api/stats', allowed: ['viewer', 'developer', 'operator'] },
  { method: 'GET', path: '/metrics', allowed: ['viewer', 'developer', 'operator'] },
  { method: 'GET', path: '/api/config', allowed: ['developer', 'operator'] },
  { method: 'GET', path: '/debug/pprof/profile?seconds=1', allowed: ['developer'] },
  { method: 'GET', path: '/debug/pprof/heap', allowed: ['developer'] },
  { method: 'GET', path: '/debug/handles', allowed: ['developer'] },
  { method: 'POST', path: '/api/reload', allowed: ['operator'] },
  { method: 'POST', path: '/api/upstreams/app/targets/0/drain', allowed: ['operator'] },
  { method: 'POST', path: '/api/upstreams/app/targets/0/enable', allowed: ['operator'] },
  { method: 'DELETE', path: '/api/bans/192.0.2.1', allowed: ['operator'] },
];

const headersOf = (caller: Caller): Record<string, string> =>
  caller === 'none'
    ? {}
    : { authorization: `Bearer ${caller === 'unknown' ? 'not-a-token-of-ours-at-all' : SECRETS[caller]}` };

async function call(base: string, method: string, path: string, caller: Caller) {
  const res = await request(`${base}${path}`, { method: method as 'GET', headers: headersOf(caller) });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

afterAll(async () => {
  await killAll();
});

describe('admin API roles (sluice start, tokens from env, file and sha256)', () => {
  let up: TestUpstream;
  let sluice: CliProcess;
  let dir: string;
  let file: string;
  let admin: number;
  const env = { SLUICE_TEST_VIEW_TOKEN: SECRETS.viewer };
  const base = () => `http://127.0.0.1:${admin}`;

  beforeAll(async () => {
    up = await startUpstream();
    dir = (await tempDir()).path;
    const port = await freePort();
    admin = await freePort();
    await writeFile(join(dir, 'dev.token'), `${SECRETS.developer}\n`);
    const opsSha = createHash('sha256').update(SECRETS.operator).digest('hex');
    file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
pid_file: ${join(dir, 'sluice.pid')}
log: { access: off }
admin:
  listen: "127.0.0.1:${admin}"
  metrics_auth: true
  tokens:
    - { name: grafana, role: viewer, token_env: SLUICE_TEST_VIEW_TOKEN }
    - { name: dev, role: developer, token_file: dev.token }
    - { name: ops, role: operator, token_sha256: "${opsSha}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    ban: { statuses: [404], max: 100, window: 1m, duration: 1m }
    routes:
      - proxy: { upstream: app }
upstreams:
  app:
    targets: [{ url: "${up.url}" }, { url: "http://127.0.0.1:9", down: true }]
`,
    );
    sluice = spawnCli(['start', '-c', file], { env });
    await waitForPort(admin, { proc: sluice });
    await sluice.waitForJson((l) => l.msg === 'sluice started');
  });

  afterAll(async () => {
    sluice?.signal('SIGTERM');
    await sluice?.waitForExit(10_000);
    await up?.close();
  });

  it('answers every endpoint × role × no token × unknown token as CONTRACT section 6 says', async () => {
    const outcomes: string[] = [];
    const wrong: string[] = [];
    for (const row of MATRIX) {
      for (const caller of CALLERS) {
        const r = await call(base(), row.method, row.path, caller);
        const allowed = row.allowed === 'anyone' || row.allowed.includes(caller);
        const anonymous = caller === 'none' || caller === 'unknown';
        const want = allowed ? 200 : anonymous ? 401 : 403;
        outcomes.push(`${row.method} ${row.path} ${caller} ${r.status}`);
        if (r.status !== want)
          wrong.push(`${row.method} ${row.path} as ${caller}: ${r.status}, want ${want}: ${r.body}`);
        if (r.status === 401) {
          if (r.headers['www-authenticate'] !== 'Bearer realm="sluice"')
            wrong.push(`${row.path}: no WWW-Authenticate`);
        }
        if (r.status === 401 || r.status === 403) {
          if (r.headers['content-type'] !== 'application/problem+json')
            wrong.push(`${row.path}: not problem+json`);
          const doc = JSON.parse(r.body) as { status: number; title: string };
          if (doc.status !== r.status) wrong.push(`${row.path}: problem status ${doc.status}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(outcomes).toHaveLength(MATRIX.length * CALLERS.length);
  });

  it('redacts secrets from /api/config', async () => {
    const r = await call(base(), 'GET', '/api/config', 'operator');
    expect(r.status).toBe(200);
    for (const secret of Object.values(SECRETS)) expect(r.body).not.toContain(secret);
    expect(r.body).not.toContain(createHash('sha256').update(SECRETS.operator).digest('hex'));
  });

  it('logs every state change and refused attempt with audit: true, the token name and the outcome', async () => {
    // Four changing requests, each by five callers: twenty lines. An unban is answered after the
    // workers and Redis are asked, so its lines can come after the rest; wait for all of them.
    const audit = await sluice.waitForJson(
      (l) => l.audit === true && l.msg === 'admin action',
      MATRIX.filter((row) => row.method !== 'GET').length * CALLERS.length,
    );
    const by = (action: string, outcome: string) =>
      audit.filter((l) => l.action === action && l.outcome === outcome);
    expect(by('reload', 'success').map((l) => l.token_name)).toEqual(['ops']);
    expect(by('target.drain', 'success')[0]).toMatchObject({
      token_name: 'ops',
      upstream: 'app',
      index: '0',
    });
    expect(by('target.enable', 'success')[0]).toMatchObject({ token_name: 'ops' });
    expect(by('unban', 'not-found')[0]).toMatchObject({ token_name: 'ops', address: '192.0.2.1' });
    expect(
      by('reload', 'forbidden')
        .map((l) => l.token_name)
        .sort(),
    ).toEqual(['dev', 'grafana']);
    // No token, or an unknown one: audited too, with no token name.
    expect(by('reload', 'unauthenticated').map((l) => l.token_name)).toEqual([null, null]);
    expect(by('unban', 'unauthenticated')).toHaveLength(2);
  });

  it('answers client mistakes as 4xx, not 500', async () => {
    // A malformed parameter is answered once the caller may call the endpoint: 401 before 400.
    expect((await call(base(), 'DELETE', '/api/bans/%E0%A4%A', 'none')).status).toBe(401);
    expect((await call(base(), 'DELETE', '/api/bans/%E0%A4%A', 'operator')).status).toBe(400);
    expect((await call(base(), 'POST', '/api/upstreams/%ZZ/targets/0/drain', 'operator')).status).toBe(400);
    // A target the config marks down: enabling it answered 200 and changed nothing.
    const down = await call(base(), 'POST', '/api/upstreams/app/targets/1/enable', 'operator');
    expect(down.status).toBe(409);
    expect(JSON.parse(down.body).detail).toMatch(/down: true in the config/);
    const missing = await call(base(), 'GET', '/debug/pprof/heap?worker=7', 'developer');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).detail).toBe('no running worker 7');
    const [first, second] = await Promise.all([
      call(base(), 'GET', '/debug/pprof/profile?seconds=1', 'developer'),
      new Promise((r) => setTimeout(r, 200)).then(() =>
        call(base(), 'GET', '/debug/pprof/profile?seconds=1', 'developer'),
      ),
    ]);
    expect(first.status).toBe(200);
    expect(second.status).toBe(409);
    expect(second.headers['content-type']).toBe('application/problem+json');
    // A caller that leaves ends its profile: the next one is taken, not refused 409.
    const abandoned = new AbortController();
    const left = request(`${base()}/debug/pprof/profile?seconds=20`, {
      headers: headersOf('developer'),
      signal: abandoned.signal,
    }).catch(() => 'left');
    await new Promise((r) => setTimeout(r, 300));
    abandoned.abort();
    expect(await left).toBe('left');
    await new Promise((r) => setTimeout(r, 300));
    const next = await call(base(), 'GET', '/debug/pprof/profile?seconds=1', 'developer');
    expect(next.status).toBe(200);
    // Whole seconds in decimal, as Go reads them: Number() took these, and took a profile.
    for (const seconds of ['0x1', '1e0', '+1', '1.5', '%201', '0', '61']) {
      const bad = await call(base(), 'GET', `/debug/pprof/profile?seconds=${seconds}`, 'developer');
      expect([seconds, bad.status]).toEqual([seconds, 400]);
      expect(JSON.parse(bad.body).detail).toBe('seconds must be a whole number from 1 to 60');
    }
    // 405 names what is allowed (RFC 9110); a HEAD takes no profile.
    const wrong = await call(base(), 'PUT', '/api/status', 'viewer');
    expect([wrong.status, wrong.headers.allow]).toEqual([405, 'GET, HEAD']);
    expect((await call(base(), 'GET', '/api/reload', 'operator')).headers.allow).toBe('POST');
    expect((await call(base(), 'HEAD', '/debug/pprof/profile?seconds=5', 'developer')).headers.allow).toBe(
      'GET',
    );
    // Not to be framed by another page.
    const page = await call(base(), 'GET', '/', 'none');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['content-security-policy']).toBe("frame-ancestors 'none'");
  });

  // A browser never adds a bearer token by itself: a token is no request of another site's page.
  it('serves a caller with a token whatever page it says it comes from', async () => {
    const res = await request(`${base()}/api/status`, {
      headers: { ...headersOf('viewer'), 'sec-fetch-site': 'cross-site', origin: 'http://elsewhere.example' },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });

  it('`sluice reload` goes through the API with SLUICE_ADMIN_TOKEN, and needs an operator token', async () => {
    const ok = await runCli(['reload', '-c', file], {
      env: { ...env, SLUICE_ADMIN_TOKEN: SECRETS.operator },
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^reloaded \((swap|roll)\); serving config [0-9a-f]+/);
    // A viewer token cannot reload through the API; it sends SIGHUP and reads the outcome.
    const viewer = await runCli(['reload', '-c', file], {
      env: { ...env, SLUICE_ADMIN_TOKEN: SECRETS.viewer },
    });
    expect(viewer.stderr).toBe('');
    expect(viewer.code).toBe(0);
    expect(viewer.stdout).toMatch(/^reloaded \((swap|roll)\); serving config [0-9a-f]+/);
    // Without a token: SIGHUP to the pid file; the outcome needs a token to read.
    const signalled = await runCli(['reload', '-c', file], { env });
    expect(signalled.code).toBe(0);
    expect(signalled.stdout).toContain('sent SIGHUP');
    await sluice.waitForJson((l) => l.msg === 'config reloaded' || l.msg === 'reload finished', 1);
  });

  it('never writes a token to its output', () => {
    const output = sluice.stdout() + sluice.stderr();
    for (const secret of Object.values(SECRETS)) expect(output).not.toContain(secret);
    expect(output).not.toContain('not-a-token-of-ours-at-all');
  });
});

describe('admin listener across reloads', () => {
  const config = (admin: number, port: number, opsToken: string) => `workers: 1
log: { access: off }
admin:
  listen: "127.0.0.1:${admin}"
  tokens: [{ name: ops, role: operator, token_sha256: "${createHash('sha256').update(opsToken).digest('hex')}" }]
servers:
  - listen: "127.0.0.1:${port}"
    routes: [{ respond: { body: "ok\\n" } }]
`;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('rotates tokens in place, refuses an address it cannot bind, and moves without cutting off the caller', async () => {
    const dir = (await tempDir()).path;
    const file = join(dir, 'sluice.yaml');
    const [port, admin, moved] = [await freePort(), await freePort(), await freePort()];
    await writeFile(file, config(admin, port, 'first-token-0a1b2c'));
    const sluice = spawnCli(['start', '-c', file]);
    const busy = http.createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    try {
      await waitForPort(admin, { proc: sluice });
      const base = `http://127.0.0.1:${admin}`;

      // Token rotation through the API: the caller gets its answer, the new token works at once.
      await writeFile(file, config(admin, port, 'second-token-3d4e5f'));
      const rotated = await request(`${base}/api/reload`, {
        method: 'POST',
        headers: bearer('first-token-0a1b2c'),
      });
      expect(rotated.statusCode).toBe(200);
      expect(await rotated.body.json()).toMatchObject({ ok: true });
      const statusWith = async (token: string) =>
        (
          await request(`${base}/api/status`, { headers: bearer(token) }).then(async (r) => {
            await r.body.dump();
            return r;
          })
        ).statusCode;
      expect(await statusWith('first-token-0a1b2c')).toBe(401);
      expect(await statusWith('second-token-3d4e5f')).toBe(200);

      // An address in use: the reload is refused, the old listener and the gateway serve on.
      const taken = (busy.address() as AddressInfo).port;
      await writeFile(file, config(taken, port, 'second-token-3d4e5f'));
      sluice.signal('SIGHUP');
      const [refused] = await sluice.waitForJson(
        (l) => l.msg === 'config reload refused; still serving the previous config',
      );
      expect(JSON.stringify(refused)).toContain(`cannot listen on 127.0.0.1:${taken} (admin): EADDRINUSE`);
      expect(await statusWith('second-token-3d4e5f')).toBe(200);
      const served = await request(`http://127.0.0.1:${port}/`);
      expect(await served.body.text()).toBe('ok\n');
      expect(sluice.exited()).toBeNull();

      // A free address: the reload's own request is answered on the old one, then it closes.
      await writeFile(file, config(moved, port, 'second-token-3d4e5f'));
      const move = await request(`${base}/api/reload`, {
        method: 'POST',
        headers: { ...bearer('second-token-3d4e5f'), connection: 'close' },
      });
      expect(move.statusCode).toBe(200);
      expect(await move.body.json()).toMatchObject({ ok: true });
      const there = await request(`http://127.0.0.1:${moved}/api/status`, {
        headers: bearer('second-token-3d4e5f'),
      });
      expect(there.statusCode).toBe(200);
      await there.body.dump();
      await expect(request(`${base}/api/status`, { headers: bearer('second-token-3d4e5f') })).rejects.toThrow(
        /ECONNREFUSED/,
      );
    } finally {
      busy.close();
      sluice.signal('SIGTERM');
      await sluice.waitForExit(10_000);
    }
  });
});

describe('admin API without tokens', () => {
  let sluice: CliProcess;
  let port: number;
  let admin: number;
  const base = () => `http://127.0.0.1:${admin}`;

  beforeAll(async () => {
    const dir = (await tempDir()).path;
    port = await freePort();
    admin = await freePort();
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
log: { access: off }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - listen: "127.0.0.1:${port}"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    sluice = spawnCli(['start', '-c', file]);
    await waitForPort(admin, { proc: sluice });
  });

  afterAll(async () => {
    sluice?.signal('SIGTERM');
    await sluice?.waitForExit(10_000);
  });

  it('serves the read-only endpoints on loopback and forbids changes', async () => {
    for (const path of ['/api/status', '/api/bans', '/metrics', '/api/config', '/debug/handles']) {
      expect((await call(base(), 'GET', path, 'none')).status, path).toBe(200);
    }
    const reload = await call(base(), 'POST', '/api/reload', 'none');
    expect(reload.status).toBe(403);
    expect(JSON.parse(reload.body).detail).toContain('configure admin.tokens');
    expect((await call(base(), 'DELETE', '/api/bans/192.0.2.1', 'none')).status).toBe(403);
    expect((await call(base(), 'GET', '/api/reload', 'none')).status).toBe(405);
    expect((await call(base(), 'GET', '/api/nope', 'none')).status).toBe(404);
    // DNS rebinding: a page under another name pointed at 127.0.0.1 reads nothing.
    const rebound = await request(`${base()}/api/config`, { headers: { host: `attacker.example:${admin}` } });
    expect(rebound.statusCode).toBe(403);
    await rebound.body.dump();
    const local = await request(`${base()}/api/status`, { headers: { host: `localhost:${admin}` } });
    expect(local.statusCode).toBe(200);
    await local.body.dump();
  });

  // A page of any site in a browser on this host reaches a loopback listener: it could not read
  // the answers, but it kept the profiler busy (<img src=".../debug/pprof/profile?seconds=60">).
  it('refuses a request from a page of another origin with SLUICE_E_ADMIN_CROSS_SITE, and serves its own', async () => {
    const get = async (path: string, headers: Record<string, string>, method = 'GET') => {
      const res = await request(`${base()}${path}`, { method: method as 'GET', headers });
      return { status: res.statusCode, body: await res.body.text() };
    };
    const refusedHeaders: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: `http://127.0.0.1:${port}` },
      { origin: 'http://attacker.example' },
      { origin: `http://127.0.0.1:${port}` },
      { origin: `https://127.0.0.1:${admin}` },
      { origin: 'null' },
    ];
    for (const headers of refusedHeaders) {
      const refused = await get('/api/status', headers);
      expect([headers, refused.status]).toEqual([headers, 403]);
      expect(JSON.parse(refused.body)).toMatchObject({
        status: 403,
        code: 'SLUICE_E_ADMIN_CROSS_SITE',
        detail: expect.stringContaining('no page of another origin'),
      });
    }
    // Refused at once: no profile is taken.
    const started = performance.now();
    const profile = await get('/debug/pprof/profile?seconds=30', { 'sec-fetch-site': 'cross-site' });
    expect(profile.status).toBe(403);
    expect(performance.now() - started).toBeLessThan(6000);
    const reload = await get('/api/reload', { 'sec-fetch-site': 'cross-site' }, 'POST');
    expect(JSON.parse(reload.body)).toMatchObject({ status: 403, code: 'SLUICE_E_ADMIN_CROSS_SITE' });
    // The dashboard's own reads, an address typed in, and clients that are no browser.
    const servedHeaders: Record<string, string>[] = [
      { 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'same-origin', origin: base() },
      { 'sec-fetch-site': 'none' },
      { origin: `http://localhost:${admin}`, host: `localhost:${admin}` },
      {},
    ];
    for (const headers of servedHeaders) {
      expect([headers, (await get('/api/status', headers)).status]).toEqual([headers, 200]);
    }
    // The dashboard page, which holds no data, opens from a link on another site too.
    const page = await get('/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<html');
    expect((await get('/debug/pprof/profile?seconds=1', { 'sec-fetch-site': 'same-origin' })).status).toBe(
      200,
    );
  });

  it('refuses a non-loopback admin address: exit 2 with the position and SLUICE_E_ADMIN_EXPOSED', async () => {
    const dir = (await tempDir()).path;
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `admin: { listen: "0.0.0.0:9090" }
servers:
  - listen: "127.0.0.1:8080"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    const r = await runCli(['start', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/sluice\.yaml:1:18: SLUICE_E_ADMIN_EXPOSED admin\.listen/);
  });
});

/** A config with an operator token (from SLUICE_TEST_OPS) proxying to upstream `app`, given its keys. */
const appConfig = (port: number, admin: number, workers: number, app: string) => `workers: ${workers}
log: { access: off }
admin:
  listen: "127.0.0.1:${admin}"
  tokens: [{ name: ops, role: operator, token_env: SLUICE_TEST_OPS }]
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - proxy: { upstream: app }
upstreams:
  app:
${app}
`;

/** `n` requests, each on a new connection (so spread over every worker); their statuses. */
async function spread(port: number, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await request(`http://127.0.0.1:${port}/x`, { headers: { connection: 'close' } });
    statuses.push(res.statusCode);
    await res.body.dump();
  }
  return statuses;
}

/** Two upstream servers, the ports of a sluice and its admin API, and where its config goes. */
async function twoTargets() {
  const [a, b] = [await startUpstream(), await startUpstream()];
  const file = join((await tempDir()).path, 'sluice.yaml');
  return { a, b, port: await freePort(), admin: await freePort(), file };
}

describe('a drained target stays drained in workers started later', () => {
  // A backup's passive failures were dropped from the merged view: it said "backup" while the
  // metric said 0. And "temporarily disabled" was logged only the first time a target went out.
  it('a failed backup shows as failed, and each time a target is taken out again it is logged', async () => {
    const dir = (await tempDir()).path;
    const port = await freePort();
    const admin = await freePort();
    const [dead, deadBackup] = [await freePort(), await freePort()];
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
log: { access: off }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - proxy: { upstream: bk }
upstreams:
  bk:
    max_fails: 1
    fail_timeout: 1s
    targets:
      - { url: "http://127.0.0.1:${dead}" }
      - { url: "http://127.0.0.1:${deadBackup}", backup: true }
`,
    );
    const sluice = spawnCli(['start', '-c', file]);
    try {
      await waitForPort(port, { proc: sluice });
      const ask = async () => (await request(`http://127.0.0.1:${port}/x`)).statusCode;
      expect(await ask()).toBe(502);
      const listed = JSON.parse(
        (await call(`http://127.0.0.1:${admin}`, 'GET', '/api/upstreams', 'none')).body,
      ) as {
        upstreams: { targets: { state: string }[] }[];
      };
      expect(listed.upstreams[0]!.targets.map((t) => t.state)).toEqual(['failed', 'failed']);
      await sluice.waitForJson((l) => l.msg === 'upstream target temporarily disabled', 2, 10_000);
      // After fail_timeout, the trial request to each fails again: each is taken out again, and said.
      await sleep(1200);
      expect(await ask()).toBe(502);
      await sluice.waitForJson((l) => l.msg === 'upstream target temporarily disabled', 4, 10_000);
    } finally {
      sluice.signal('SIGTERM');
      await sluice.waitForExit(10_000);
    }
  }, 40_000);

  it('after a worker crash and after a rolling reload, no request reaches it while the API says draining', async () => {
    const { a, b, port, admin, file } = await twoTargets();
    const write = (workers: number) =>
      writeFile(
        file,
        appConfig(port, admin, workers, `    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]`),
      );
    await write(2);
    const sluice = spawnCli(['start', '-c', file], { env: { SLUICE_TEST_OPS: SECRETS.operator } });
    try {
      await waitForPort(port, { proc: sluice });
      await sluice.waitForJson((l) => l.msg === 'sluice started');
      const base = `http://127.0.0.1:${admin}`;
      expect((await call(base, 'POST', '/api/upstreams/app/targets/0/drain', 'operator')).status).toBe(200);
      const workerPids = async () =>
        (
          JSON.parse((await call(base, 'GET', '/api/status', 'operator')).body) as {
            workers: { pid: number }[];
          }
        ).workers
          .map((w) => w.pid)
          .filter((pid) => pid > 0);

      const before = await workerPids();
      process.kill(before[0]!, 'SIGKILL');
      // Logged once the new worker is ready.
      await sluice.waitForJson((l) => l.msg === 'worker restarted', 1, 20_000);
      await spread(port, 30);
      expect(a.seen).toHaveLength(0);
      expect(b.seen.length).toBe(30);

      await write(3);
      expect((await call(base, 'POST', '/api/reload', 'operator')).status).toBe(200);
      await spread(port, 30);
      expect(a.seen).toHaveLength(0);
      const listed = JSON.parse((await call(base, 'GET', '/api/upstreams', 'operator')).body);
      expect(JSON.stringify(listed)).toContain('draining');
    } finally {
      sluice.signal('SIGTERM');
      await sluice.waitForExit(10_000);
      await a.close();
      await b.close();
    }
  }, 60_000);

  // A roll waits for every new worker: one that reported ready (and had its snapshot of drains)
  // before the others had no drain made in between, and sent its share to the drained target
  // once the roll gave it a slot.
  it('a drain made while a roll starts its workers reaches the new worker already ready', async () => {
    const { a, b, port, admin, file } = await twoTargets();
    const stagger = (await tempDir()).path;
    const handler = fileURLToPath(new URL('../fixtures/handlers/staggered-load-app.ts', import.meta.url));
    const write = (workers: number) =>
      writeFile(
        file,
        `allow_root_handlers: true
${appConfig(port, admin, workers, `    targets: [{ url: "${a.url}" }, { url: "${b.url}" }]`).replace(
  '      - proxy: { upstream: app }',
  `      - { match: { path: /app }, handler: "${handler}" }\n      - proxy: { upstream: app }`,
)}`,
      );
    await write(1);
    const sluice = spawnCli(['start', '-c', file], {
      env: { SLUICE_TEST_OPS: SECRETS.operator, SLUICE_TEST_STAGGER: stagger },
    });
    const base = `http://127.0.0.1:${admin}`;
    try {
      await waitForPort(port, { proc: sluice });
      await sluice.waitForJson((l) => l.msg === 'sluice started');
      await writeFile(join(stagger, 'armed'), '');
      await write(2);
      const reload = call(base, 'POST', '/api/reload', 'operator');
      // The first new worker is ready well within the 4 s the second one waits.
      await until(
        () => (existsSync(join(stagger, 'first')) ? true : undefined),
        'a new worker loading',
        20_000,
      );
      await sleep(1500);
      expect((await call(base, 'POST', '/api/upstreams/app/targets/0/drain', 'operator')).status).toBe(200);
      expect((await reload).status).toBe(200);
      expect(await spread(port, 30)).toEqual(Array(30).fill(200));
      expect(a.seen).toHaveLength(0);
    } finally {
      sluice.signal('SIGTERM');
      await sluice.waitForExit(10_000);
      await a.close();
      await b.close();
    }
  }, 60_000);

  // A rolling reload told its new workers which targets were drained by their place in the old
  // list: with the list changed, they drained another target (with the drained one removed, the
  // only one left, and every request was a 502). A drain follows the target's URL through reloads.
  it('a rolling reload that reorders, then removes the drained target; a swap that rebuilds it', async () => {
    const { a, b, port, admin, file } = await twoTargets();
    const write = (workers: number, targets: string, keepalive = 32) =>
      writeFile(
        file,
        appConfig(port, admin, workers, `    keepalive: ${keepalive}\n    targets: ${targets}`),
      );
    const both = `[{ url: "${a.url}" }, { url: "${b.url}" }]`;
    await write(2, both);
    const sluice = spawnCli(['start', '-c', file], { env: { SLUICE_TEST_OPS: SECRETS.operator } });
    const base = `http://127.0.0.1:${admin}`;
    const reload = async () => {
      const r = await call(base, 'POST', '/api/reload', 'operator');
      expect(r.status).toBe(200);
      return (JSON.parse(r.body) as { how: string }).how;
    };
    const states = async () =>
      (
        JSON.parse((await call(base, 'GET', '/api/upstreams', 'operator')).body) as {
          upstreams: { targets: { target: string; state: string }[] }[];
        }
      ).upstreams[0]!.targets.map((t) => `${t.target} ${t.state}`);
    try {
      await waitForPort(port, { proc: sluice });
      await sluice.waitForJson((l) => l.msg === 'sluice started');
      expect((await call(base, 'POST', '/api/upstreams/app/targets/0/drain', 'operator')).status).toBe(200);

      // Reordered: the new workers drained b (now first), and sent everything to the drained a.
      await write(3, `[{ url: "${b.url}" }, { url: "${a.url}" }]`);
      expect(await reload()).toBe('roll');
      expect(await spread(port, 20)).toEqual(Array(20).fill(200));
      expect(a.seen).toHaveLength(0);
      expect(await states()).toEqual([`${b.url} up`, `${a.url} draining`]);

      // The drained target removed: its drain goes with it, and b serves on.
      await write(2, `[{ url: "${b.url}" }]`);
      expect(await reload()).toBe('roll');
      expect(await spread(port, 20)).toEqual(Array(20).fill(200));
      expect(await states()).toEqual([`${b.url} up`]);

      // Back, and drained again: a swap that changes `keepalive` builds new targets, and the
      // drain carries over to a's.
      await write(2, both);
      expect(await reload()).toBe('swap');
      expect((await call(base, 'POST', '/api/upstreams/app/targets/0/drain', 'operator')).status).toBe(200);
      const before = a.seen.length;
      await write(2, both, 8);
      expect(await reload()).toBe('swap');
      expect(await spread(port, 20)).toEqual(Array(20).fill(200));
      expect(a.seen.length).toBe(before);
      expect(await states()).toEqual([`${a.url} draining`, `${b.url} up`]);
    } finally {
      sluice.signal('SIGTERM');
      await sluice.waitForExit(10_000);
      await a.close();
      await b.close();
    }
  }, 60_000);
});
