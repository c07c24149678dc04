/**
 * The soak: many requests through the built CLI (`sluice start`, one worker) with keep-alive
 * churn (each client connection is closed after `perConnection` requests and a new one opened)
 * and WebSocket open/echo/close cycles alongside, while the worker's RSS and open descriptors are
 * sampled every second. Memory or descriptors that grow with the work done are a leak (BEHAVIOUR.md
 * section 6, item 3: clients closing early, WebSockets churning).
 *
 *   upstream (HTTP) ◀─┐                ┌─ HTTP lanes: N requests, close, reconnect, ...
 *                     ├─ sluice worker ◀┤
 *   upstream (ws)  ◀──┘                └─ WebSocket lanes: open, echo, close, ...
 *
 * Growth is measured after a warm-up (the first `warmupShare` of the requests: code compiled,
 * pools and buffers at their working size): the median of the first third of the samples after
 * it against the median of the last third. RSS moves by a few MB from one second to the next as
 * the GC works, so medians of many samples, not two single readings, tell a trend from noise. `npm run soak` runs a million requests; the test suite
 * runs a short one (test/e2e/soak.test.ts).
 */
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { Client, WebSocket } from 'undici';
import { WebSocketServer } from 'ws';
import { VERSION } from '../../src/core/version.js';
import { freePort, killAll, requireBuilt, startConfigured, tempDir } from './cli.js';
import { median, type ProcSample, procSample, sampleProcess } from './proc.js';
import { mb } from './reliability.js';
import { sleep, status, until } from './runtime.js';
import { startUpstream } from './upstream.js';

/** How to soak. */
export interface SoakOptions {
  /** HTTP requests in all. */
  readonly requests: number;
  /** Client connections open at once (one request at a time on each). */
  readonly connections: number;
  /** Requests on a connection before it is closed and a new one opened. */
  readonly perConnection: number;
  /** WebSocket cycles running at once, for as long as the HTTP load lasts. */
  readonly wsLanes: number;
  /** The share of the requests that counts as warm-up. */
  readonly warmupShare: number;
  /** Called about once a second. */
  readonly progress?: (done: number, total: number, last: ProcSample | undefined) => void;
}

/** Growth of one figure after the warm-up. */
export interface Growth {
  readonly after_warmup: number;
  readonly end: number;
  readonly growth_pct: number;
}

/** What a soak measured. */
export interface SoakReport {
  readonly date: string;
  readonly machine: {
    readonly cpu: string;
    readonly cores: number;
    readonly memory_gib: number;
    readonly node: string;
    readonly sluice: string;
  };
  readonly options: Omit<SoakOptions, 'progress'>;
  readonly duration_s: number;
  readonly requests: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  readonly requests_per_s: number;
  readonly connections_opened: number;
  readonly ws_cycles: number;
  readonly ws_failed: number;
  readonly warmup_s: number;
  /** The worker's resident memory, MB, during the load. */
  readonly rss_mb: Growth;
  /** The worker's open descriptors during the load. */
  readonly fds: Growth;
  /** Descriptors with no client connected, before the load and after it (idle connections closed). */
  readonly fds_at_rest: { readonly before: number; readonly after: number };
  /** Every sample: seconds since the start, RSS MB, descriptors. */
  readonly samples: readonly (readonly [number, number, number])[];
}

function growth(before: number, end: number, digits = 1): Growth {
  const f = 10 ** digits;
  return {
    after_warmup: Math.round(before * f) / f,
    end: Math.round(end * f) / f,
    growth_pct: Math.round(((end - before) / before) * 1000) / 10,
  };
}

/** Runs a soak against a fresh sluice; cleans up whatever it started. */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  requireBuilt();
  const tmp = await tempDir('sluice-soak-');
  const up = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
      res.end('ok\n');
    },
    { record: false },
  );
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data.toString())));
  const wsPort = (wss.address() as AddressInfo).port;
  try {
    const port = await freePort();
    const admin = await freePort();
    await startConfigured(
      tmp.path,
      `# the soak (test/helpers/soak.ts)
version: 1
workers: 1
log: { level: info, access: off, format: json }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    routes:
      - name: ws
        match: { path: /ws }
        proxy: { url: "http://127.0.0.1:${wsPort}" }
      - name: app
        proxy: { upstream: app }
upstreams:
  app:
    keepalive_timeout: 1s
    targets: [{ url: "${up.url}" }]
`,
      port,
    );
    const pid = (await status(admin)).workers[0]!.pid!;
    const origin = `http://127.0.0.1:${port}`;
    const restBefore = procSample(pid);

    const failures: Record<string, number> = {};
    const fail = (what: string) => {
      failures[what] = (failures[what] ?? 0) + 1;
    };
    let sent = 0;
    let done = 0;
    let connectionsOpened = 0;
    let httpOver = false;
    let wsCycles = 0;
    let wsFailed = 0;
    const started = Date.now();
    let warmupEndAt = 0;
    const sampler = sampleProcess(pid, 1000);
    const ticker = setInterval(() => opts.progress?.(done, opts.requests, sampler.samples.at(-1)), 1000);

    const httpLane = async () => {
      while (sent < opts.requests) {
        const client = new Client(origin, { pipelining: 1 });
        connectionsOpened++;
        for (let i = 0; i < opts.perConnection && sent < opts.requests; i++) {
          sent++;
          try {
            const res = await client.request({ method: 'GET', path: `/r/${sent}` });
            const body = await res.body.text();
            if (res.statusCode !== 200) fail(`status ${res.statusCode}`);
            else if (body !== 'ok\n') fail('wrong body');
          } catch (err) {
            fail((err as { code?: string }).code ?? (err as Error).message);
          }
          done++;
          if (warmupEndAt === 0 && done >= opts.requests * opts.warmupShare) warmupEndAt = Date.now();
        }
        await client.close();
      }
    };
    const wsLane = async () => {
      while (!httpOver) {
        const ok = await new Promise<boolean>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          const text = `cycle-${wsCycles}`;
          const timer = setTimeout(() => resolve(false), 10_000);
          ws.addEventListener('open', () => ws.send(text));
          ws.addEventListener('message', (e) => {
            if (String(e.data) === text) ws.close(1000);
            else ws.close(4000);
          });
          ws.addEventListener('close', (e) => {
            clearTimeout(timer);
            resolve(e.code === 1000);
          });
          ws.addEventListener('error', () => undefined);
        });
        wsCycles++;
        if (!ok) wsFailed++;
      }
    };
    const ws = Array.from({ length: opts.wsLanes }, wsLane);
    await Promise.all(Array.from({ length: opts.connections }, httpLane));
    httpOver = true;
    await Promise.all(ws);
    const endedAt = Date.now();
    clearInterval(ticker);
    const samples = sampler.stop();

    // At rest: every client connection and (after keepalive_timeout) every upstream one closed.
    await until(
      async () => ((await status(admin)).workers[0]!.connections === 0 ? true : undefined),
      'the client connections to close',
      15_000,
    );
    await sleep(2500);
    const restAfter = procSample(pid);

    const after = samples.filter((s) => s.at >= warmupEndAt && s.at <= endedAt);
    const third = Math.max(1, Math.floor(after.length / 3));
    const first = after.slice(0, third);
    const last = after.slice(-third);
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    return {
      date: new Date(started).toISOString(),
      machine: {
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        cores: availableParallelism(),
        memory_gib: Math.round(totalmem() / 1024 ** 3),
        node: process.version,
        sluice: VERSION,
      },
      options: {
        requests: opts.requests,
        connections: opts.connections,
        perConnection: opts.perConnection,
        wsLanes: opts.wsLanes,
        warmupShare: opts.warmupShare,
      },
      duration_s: (endedAt - started) / 1000,
      requests: done,
      failed,
      failures,
      requests_per_s: Math.round(done / ((endedAt - started) / 1000)),
      connections_opened: connectionsOpened,
      ws_cycles: wsCycles,
      ws_failed: wsFailed,
      warmup_s: (warmupEndAt - started) / 1000,
      rss_mb: growth(mb(median(first.map((s) => s.rssKb))), mb(median(last.map((s) => s.rssKb)))),
      fds: growth(median(first.map((s) => s.fds)), median(last.map((s) => s.fds)), 0),
      fds_at_rest: { before: restBefore.fds, after: restAfter.fds },
      samples: samples.map((s) => [Math.round((s.at - started) / 100) / 10, mb(s.rssKb), s.fds] as const),
    };
  } finally {
    await killAll();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
    await up.close();
    await tmp.remove();
  }
}
