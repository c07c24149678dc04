/**
 * Observability end to end, through the built CLI with two workers: a real Prometheus scrape
 * checked by promtool, counters that match the traffic (and survive a worker's death), pprof
 * profiles decoded, and OTLP spans matching what the upstream and the access log saw.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, requireBuilt, spawnCli, tempDir, waitForPort } from '../helpers/cli.js';
import { status, until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

/** Writes `sluice.yaml` into a fresh temporary directory; its path and the directory. */
async function configFile(yaml: string): Promise<{ file: string; dir: string }> {
  const dir = (await tempDir()).path;
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, yaml);
  return { file, dir };
}

/** Waits for `check` to hold. */
const waitFor = (check: () => Promise<boolean> | boolean, what: string, ms = 8000) =>
  until(async () => ((await check()) ? true : undefined), what, ms);

afterAll(async () => {
  await killAll();
});

const text = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
};

/** The value of one sample in Prometheus text, or 0 when absent. */
function sample(metrics: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('metrics, profiles and the admin API (2 workers)', () => {
  let up: TestUpstream;
  let port: number;
  let admin: number;
  /** A port nothing listens on: a target that refuses every connection. */
  let dead: number;
  let sluice: ReturnType<typeof spawnCli>;
  const base = () => `http://127.0.0.1:${port}`;
  const adminUrl = () => `http://127.0.0.1:${admin}`;

  beforeAll(async () => {
    up = await startUpstream();
    port = await freePort();
    admin = await freePort();
    dead = await freePort();
    const { file, dir } = await configFile(
      `workers: 2
allow_root_handlers: true
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - name: api
        match: { path_prefix: /api/ }
        proxy: { upstream: app }
      - name: cache
        match: { path: /cache }
        handler: ./cache.ts
      - name: flaky
        match: { path_prefix: /flaky/ }
        proxy: { upstream: flaky }
      - name: lonely
        match: { path_prefix: /lonely/ }
        proxy: { upstream: lonely }
      - name: hello
        respond: { body: "hello\\n" }
upstreams:
  app:
    targets: [{ url: "${up.url}" }]
  flaky:
    targets: [{ url: "http://127.0.0.1:${dead}" }, { url: "${up.url}" }]
  lonely:
    targets: [{ url: "http://127.0.0.1:${dead}" }]
`,
    );
    // A handler that keeps about 7 MB live from its start: the heap profile must show it.
    await writeFile(
      join(dir, 'cache.ts'),
      `const cache = fillCache();
function fillCache() {
  return Array.from({ length: 100_000 }, (_, i) => ({ i, key: 'entry ' + i }));
}
export default (_req: unknown, res: { end(s: string): void }) => res.end(String(cache.length));
`,
    );
    sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    await waitForPort(admin, { proc: sluice });
  });

  afterAll(async () => {
    await up.close();
  });

  it('counts every request, and the scrape passes promtool check metrics', async () => {
    const agent = new Agent({ connections: 8 });
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await request(`${base()}/api/${i}`, { dispatcher: agent });
        await res.body.dump();
      }),
    );
    for (let i = 0; i < 7; i++) await text(`${base()}/missing-${i}`, {});
    await agent.close();
    const scrape = (await text(`${adminUrl()}/metrics`)).body;
    expect(sample(scrape, 'sluice_http_requests_total', { route: 'api', method: 'GET', code: '200' })).toBe(
      50,
    );
    expect(sample(scrape, 'sluice_http_requests_total', { route: 'hello', code: '200' })).toBe(7);
    expect(sample(scrape, 'sluice_http_request_duration_seconds_count', { route: 'api' })).toBe(50);
    expect(
      sample(scrape, 'sluice_upstream_requests_total', { upstream: 'app', target: up.url, code: '200' }),
    ).toBe(50);
    expect(sample(scrape, 'sluice_upstream_response_duration_seconds_count', { upstream: 'app' })).toBe(50);
    expect(sample(scrape, 'sluice_upstream_target_up', { upstream: 'app', target: up.url })).toBe(1);
    expect(sample(scrape, 'sluice_workers', {})).toBe(2);
    for (const name of [
      'sluice_http_connections_active',
      'sluice_config_reloads_total',
      'sluice_bans_active',
      'nodejs_eventloop_lag_seconds',
      'process_resident_memory_bytes',
    ]) {
      expect(scrape).toContain(`# TYPE ${name}`);
    }
    // promtool reads the exposition format from stdin and lints names, types and help.
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    expect(lint.trim()).toBe('');
  });

  // The gauge came from the primary's own view, which sees active health only: a target the
  // workers had taken out (max_fails) still showed 1. And a request with no other target to try
  // was counted as retried.
  it('shows a target the workers took out as down, and counts only retries that happened', async () => {
    for (let i = 0; i < 6; i++) expect((await text(`${base()}/flaky/${i}`, {})).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await text(`${base()}/lonely/${i}`, {})).status).toBe(502);
    const scrape = (await text(`${adminUrl()}/metrics`)).body;
    const deadUrl = `http://127.0.0.1:${dead}`;
    // Exact lines: sample() reads an absent series as 0.
    expect(scrape).toContain(`sluice_upstream_target_up{upstream="flaky",target="${deadUrl}"} 0\n`);
    expect(scrape).toContain(`sluice_upstream_target_up{upstream="flaky",target="${up.url}"} 1\n`);
    // A lone target is never taken out (nginx ignores max_fails with one server): still 1.
    expect(scrape).toContain(`sluice_upstream_target_up{upstream="lonely",target="${deadUrl}"} 1\n`);
    const flakyRetries = sample(scrape, 'sluice_upstream_retries_total', { upstream: 'flaky' });
    expect(flakyRetries).toBeGreaterThanOrEqual(1);
    expect(flakyRetries).toBeLessThanOrEqual(2);
    expect(sample(scrape, 'sluice_upstream_retries_total', { upstream: 'lonely' })).toBe(0);
  });

  it('keeps counters when a worker dies (the node total never goes down)', async () => {
    const before = sample((await text(`${adminUrl()}/metrics`)).body, 'sluice_http_requests_total', {
      route: 'api',
      code: '200',
    });
    const s = await status(admin);
    const victim = s.workers[0]!.pid!;
    process.kill(victim, 'SIGKILL');
    await waitFor(
      async () =>
        (await status(admin)).workers.every((w) => w.pid !== null && w.pid !== victim && w.state === 'ready'),
      'the worker to be replaced',
    );
    for (let i = 0; i < 5; i++) await text(`${base()}/api/after`);
    const after = (await text(`${adminUrl()}/metrics`)).body;
    expect(sample(after, 'sluice_http_requests_total', { route: 'api', code: '200' })).toBeGreaterThanOrEqual(
      before + 5,
    );
    expect(sample(after, 'sluice_worker_restarts_total', {})).toBe(1);
  });

  it('serves CPU and heap profiles in pprof format with sluice functions in them', async () => {
    let stop = false;
    const agent = new Agent({ connections: 16 });
    const load = (async () => {
      while (!stop) {
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            const res = await request(`${base()}/api/load`, { dispatcher: agent });
            await res.body.dump();
          }),
        );
      }
    })();
    const workers = (await status(admin)).workers;
    const cpu = await Promise.all(
      workers.map((_, i) =>
        request(`${adminUrl()}/debug/pprof/profile?seconds=2&worker=${i}`).then((r) => r.body.arrayBuffer()),
      ),
    );
    stop = true;
    await load;
    await agent.close();
    const functionNames = (bytes: ArrayBuffer) => {
      const profile = Profile.decode(gunzipSync(Buffer.from(bytes)));
      return new Set(profile.function.map((f) => String(profile.stringTable.strings[Number(f.name)])));
    };
    const names = new Set(cpu.flatMap((b) => [...functionNames(b)]));
    // The profile's time is the wall clock when it started (pprof shows it), not 1970.
    const started = Number(Profile.decode(gunzipSync(Buffer.from(cpu[0]!))).timeNanos) / 1e6;
    expect(Math.abs(Date.now() - started)).toBeLessThan(60_000);
    expect(
      [...names].filter((n) =>
        ['handleRequest', 'scanRequestHead', 'forward', 'upstreamRequestHeaders'].includes(n),
      ).length,
    ).toBeGreaterThan(0);
    const heapRes = await request(`${adminUrl()}/debug/pprof/heap?worker=1`);
    expect(heapRes.headers['content-type']).toBe('application/octet-stream');
    // Like every admin answer: a profile is no more to be sniffed or framed than a page.
    expect(heapRes.headers['x-content-type-options']).toBe('nosniff');
    expect(heapRes.headers['x-frame-options']).toBe('DENY');
    const heap = Profile.decode(gunzipSync(Buffer.from(await heapRes.body.arrayBuffer())));
    expect(heap.sampleType.map((t) => heap.stringTable.strings[Number(t.type)])).toEqual(['inuse_space']);
    expect(heap.sample.length).toBeGreaterThan(0);
    const heapFunctions = new Set(heap.function.map((f) => String(heap.stringTable.strings[Number(f.name)])));
    expect(heapFunctions.has('fillCache')).toBe(true);
    for (const seconds of ['600', '0', 'x']) {
      const bad = await text(`${adminUrl()}/debug/pprof/profile?seconds=${seconds}`);
      expect(bad.status).toBe(400);
      expect(bad.body).toContain('seconds must be a whole number from 1 to 60');
    }
  });

  it('lists handles and requests in flight per worker', async () => {
    const doc = JSON.parse((await text(`${adminUrl()}/debug/handles`)).body) as {
      primary: { pid: number };
      workers: { pid: number; resources: Record<string, number>; inflight: unknown[] }[];
    };
    expect(doc.workers).toHaveLength(2);
    for (const w of doc.workers) expect(typeof w.resources).toBe('object');
  });

  it('serves the dashboard and its data', async () => {
    const page = await text(`${adminUrl()}/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>sluice</title>');
    expect((await text(`${adminUrl()}/assets/uplot.js`)).body).toContain('uPlot');
    const stats = JSON.parse((await text(`${adminUrl()}/api/stats`)).body) as {
      requests: number;
      classes: Record<string, number>;
    };
    expect(stats.requests).toBeGreaterThan(50);
    // The 502s of the lonely upstream above, and 2xx for the rest.
    expect(stats.classes['5xx']).toBe(3);
    expect(stats.classes['2xx']).toBe(stats.requests - 3);
  });
});

describe('a CPU profile of a worker that goes away (2 workers)', () => {
  afterEach(async () => {
    await killAll();
  });

  /** sluice with a handler route (so that every reload rolls the workers) and an admin listener. */
  async function start() {
    const port = await freePort();
    const admin = await freePort();
    const { file, dir } = await configFile(
      `workers: 2
allow_root_handlers: true
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - handler: ./app.mjs
`,
    );
    await writeFile(join(dir, 'app.mjs'), `export default (req, res) => res.end('ok');\n`);
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    await waitForPort(admin, { proc: sluice });
    await sluice.waitForJson((l) => l.msg === 'sluice started');
    return { sluice, admin };
  }

  it('answers with the samples taken until a rolling reload retired the worker', async () => {
    const { sluice, admin } = await start();
    const old = (await status(admin)).workers[1]!.pid;
    const started = performance.now();
    const profile = request(`http://127.0.0.1:${admin}/debug/pprof/profile?seconds=10&worker=1`);
    await new Promise((r) => setTimeout(r, 1000));
    sluice.signal('SIGHUP');
    const res = await profile;
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    const decoded = Profile.decode(gunzipSync(body));
    // Cut short by the reload: fewer than the 10 s asked for.
    expect(Number(decoded.durationNanos) / 1e9).toBeLessThan(9);
    expect(performance.now() - started).toBeLessThan(9000);
    await waitFor(async () => (await status(admin)).workers[1]?.pid !== old, 'worker 1 replaced');
  });

  it('is a 503 problem with its code when the worker is killed during the profile', async () => {
    const { admin } = await start();
    const pid = (await status(admin)).workers[0]!.pid!;
    const profile = request(`http://127.0.0.1:${admin}/debug/pprof/profile?seconds=10&worker=0`);
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(pid, 'SIGKILL');
    const res = await profile;
    const problem = (await res.body.json()) as Record<string, unknown>;
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(problem).toMatchObject({ status: 503, code: 'SLUICE_E_ADMIN_WORKER_GONE' });
    expect(String(problem.detail)).toContain('ask again');
  });
});

describe('tracing over OTLP/HTTP', () => {
  let up: TestUpstream;
  let collector: http.Server;
  const received: unknown[] = [];

  beforeAll(async () => {
    up = await startUpstream();
    collector = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          contentType: req.headers['content-type'],
          url: req.url,
          body: JSON.parse(Buffer.concat(chunks).toString()),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    await up.close();
    collector.close();
  });

  afterEach(async () => {
    await killAll();
  });

  it('continues the client trace upstream, exports matching spans, and logs the trace id', async () => {
    const port = await freePort();
    const collectorPort = (collector.address() as AddressInfo).port;
    const { file, dir } = await configFile(
      `workers: 1
tracing: { otlp_endpoint: "http://127.0.0.1:${collectorPort}/v1/traces", service_name: edge }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    limits: { max_body: 16b }
    routes:
      - name: api
        proxy: { upstream: app }
upstreams:
  app:
    targets: [{ url: "${up.url}" }]
`,
    );
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const refusedTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
    const refused = await fetch(`http://127.0.0.1:${port}/too-big`, {
      method: 'POST',
      body: 'x'.repeat(100),
      headers: { traceparent: `00-${refusedTrace}-${'1'.repeat(16)}-01` },
    });
    expect(refused.status).toBe(413);
    const clientSpan = '00f067aa0ba902b7';
    const res = await text(`http://127.0.0.1:${port}/traced`, {
      traceparent: `00-${traceId}-${clientSpan}-01`,
      tracestate: 'vendor=opaque',
    });
    expect(res.status).toBe(200);
    const seen = up.seen.at(-1)!;
    const upstreamParent = String(seen.headers.traceparent);
    expect(upstreamParent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(seen.headers.tracestate).toBe('vendor=opaque');
    const line = await sluice.waitForJson((l) => l.msg === 'request' && l.path === '/traced');
    expect(line[0]!.trace_id).toBe(traceId);

    // Spans are batched: wait for the export (BatchSpanProcessor flushes every second).
    const spans = () =>
      received.flatMap((r) =>
        (
          (r as { body: { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] } }).body
            .resourceSpans ?? []
        ).flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
      );
    await waitFor(() => spans().filter((s) => s.traceId === traceId).length >= 2, 'two spans exported');
    const mine = spans().filter((s) => s.traceId === traceId);
    const server = mine.find((s) => s.kind === 2)!;
    const client = mine.find((s) => s.kind === 3)!;
    expect(server.parentSpanId).toBe(clientSpan);
    expect(server.name).toBe('GET api');
    expect(client.parentSpanId).toBe(server.spanId);
    // The upstream's traceparent names the attempt's span as its parent.
    expect(upstreamParent.split('-')[2]).toBe(client.spanId);
    type Attr = { key: string; value: { stringValue?: string; intValue?: number | string } };
    const attrs = (s: Record<string, unknown>) =>
      Object.fromEntries(
        (s.attributes as Attr[]).map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]),
      );
    expect(attrs(client)).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': up.port,
      'sluice.upstream': 'app',
      'sluice.target': up.url,
      'http.response.status_code': 200,
    });
    // A 413 is the client's: the SERVER span carries the code, its status is not an error.
    await waitFor(() => spans().some((s) => s.traceId === refusedTrace), 'the refused request exported');
    const tooBig = spans().find((s) => s.traceId === refusedTrace)!;
    expect(attrs(tooBig)).toMatchObject({
      'http.response.status_code': 413,
      'sluice.error': 'SLUICE_E_CLIENT_BODY_TOO_LARGE',
    });
    expect((tooBig.status as { code?: number }).code ?? 0).toBe(0);
    expect((received[0] as { contentType: string }).contentType).toContain('application/json');
  });

  it.each(['refuses connections', 'never answers'] as const)(
    'stops within shutdown_timeout, handlers closed, when the collector %s',
    async (collectorState) => {
      const sockets: net.Socket[] = [];
      const hanging = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
      const hangingPort = (hanging.address() as AddressInfo).port;
      try {
        const collectorPort = collectorState === 'never answers' ? hangingPort : await freePort();
        const port = await freePort();
        const dir = (await tempDir()).path;
        const marks = join(dir, 'closed.txt');
        await writeFile(
          join(dir, 'app.mjs'),
          `import { appendFileSync } from 'node:fs';
export default (req, res) => res.end('ok');
export function close() { appendFileSync(${JSON.stringify(marks)}, 'closed ' + process.pid + '\\n'); }
`,
        );
        const file = join(dir, 'sluice.yaml');
        await writeFile(
          file,
          `workers: 2
allow_root_handlers: true
shutdown_timeout: 1s
tracing: { otlp_endpoint: "http://127.0.0.1:${collectorPort}/v1/traces" }
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - handler: ./app.mjs
`,
        );
        const sluice = spawnCli(['start', '-c', file], { cwd: dir });
        await waitForPort(port, { proc: sluice });
        for (let i = 0; i < 5; i++) expect((await text(`http://127.0.0.1:${port}/r${i}`)).status).toBe(200);
        // Past the batch delay (1 s): the spans are in an export the collector does not answer.
        await new Promise((r) => setTimeout(r, 1500));
        const started = performance.now();
        sluice.signal('SIGTERM');
        const exit = await sluice.waitForExit(20_000);
        const took = performance.now() - started;
        expect(exit.code).toBe(0);
        // shutdown_timeout (1 s) + 3 s; the primary kills a worker at the deadline + 5 s.
        expect(took).toBeLessThan(4000);
        const closed = (await readFile(marks, 'utf8')).trim().split('\n');
        expect(closed).toHaveLength(2);
        if (collectorState === 'never answers') {
          const dropped = sluice
            .jsonLines()
            .filter((l) => l.msg === 'tracing: spans not exported by the stop deadline are dropped');
          expect(dropped.length).toBeGreaterThan(0);
          expect(dropped.reduce((n, l) => n + Number(l.spans), 0)).toBe(5);
        }
      } finally {
        for (const s of sockets) s.destroy();
        hanging.close();
      }
    },
  );

  it('propagates a fresh trace id upstream even with no exporter configured', async () => {
    const port = await freePort();
    const { file, dir } = await configFile(
      `workers: 1
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - proxy: { url: "${up.url}" }
`,
    );
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    await text(`http://127.0.0.1:${port}/fresh`);
    const parent = String(up.seen.at(-1)!.headers.traceparent);
    expect(parent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const line = await sluice.waitForJson((l) => l.msg === 'request' && l.path === '/fresh');
    expect(parent.split('-')[1]).toBe(line[0]!.trace_id);
  });
});
