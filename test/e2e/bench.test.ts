/**
 * `sluice bench`, run as the built CLI against small node:http servers started here. Each run is at
 * most 2 s with at most 20 connections; numbers are checked for sanity and direction only, never
 * against timing thresholds.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, requireBuilt, runCli } from '../helpers/cli.js';

/** A server for the load: counts requests and connections; `close()` also ends hanging ones. */
interface LoadServer {
  readonly url: string;
  requests: number;
  connections: number;
  close(): Promise<void>;
}

async function startServer(
  handle: (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<LoadServer> {
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    state.requests++;
    handle(state.requests, req, res);
  });
  server.on('connection', (socket: Socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: LoadServer = {
    url: `http://127.0.0.1:${port}/`,
    requests: 0,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return state;
}

const hello = (_n: number, _req: http.IncomingMessage, res: http.ServerResponse) => res.end('hello world');

interface Summary {
  schema: string;
  url: string;
  connections: number;
  keepAlive: boolean;
  rounds: number;
  durationS: number;
  requests: { total: number; sent: number; ok: number; perSecond: number; perSecondByRound: number[] };
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
  throughput: { bytes: number; mbPerSecond: number };
  status: Record<string, number>;
  errors: {
    total: number;
    connection: { total: number; byCode: Record<string, number> };
    resets: { total: number; byCode: Record<string, number> };
    timeouts: number;
    non2xx: { total: number; byClass: Record<string, number>; byStatus: Record<string, number> };
  };
}

/** Checks what holds for any summary that measured something. */
function expectSane(s: Summary): void {
  expect(s.requests.total).toBeGreaterThan(0);
  expect(s.requests.sent).toBeGreaterThanOrEqual(s.requests.total);
  expect(s.requests.perSecond).toBeGreaterThan(0);
  const l = s.latencyMs;
  expect(l.min).toBeLessThanOrEqual(l.p50);
  expect(l.p50).toBeLessThanOrEqual(l.p90);
  expect(l.p90).toBeLessThanOrEqual(l.p99);
  expect(l.p99).toBeLessThanOrEqual(l.max);
  expect(l.mean).toBeGreaterThan(0);
  expect(s.throughput.bytes).toBeGreaterThan(0);
  const statusTotal = Object.values(s.status).reduce((a, b) => a + b, 0);
  expect(statusTotal).toBe(s.requests.total);
}

describe('sluice bench (built CLI)', () => {
  const servers: LoadServer[] = [];
  const serve = async (handle: Parameters<typeof startServer>[0]) => {
    const s = await startServer(handle);
    servers.push(s);
    return s;
  };

  beforeAll(() => requireBuilt());
  afterEach(async () => {
    await killAll();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  afterAll(killAll);

  it('--json: one documented object on stdout, sane numbers, nothing on stderr off a TTY', async () => {
    const server = await serve(hello);
    const r = await runCli(['bench', server.url, '-c', '8', '-d', '1s', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.schema).toBe('sluice.bench/v1');
    expect(s).toMatchObject({
      url: server.url,
      method: 'GET',
      connections: 8,
      pipelining: 1,
      keepAlive: true,
      rounds: 1,
    });
    expectSane(s);
    expect(s.requests.ok).toBe(s.requests.total);
    expect(s.errors.total).toBe(0);
    expect(s.durationS).toBeGreaterThanOrEqual(0.9);
    expect(s.durationS).toBeLessThan(2.5);
    // Every answer the tool counted reached the server (a few more may have been in flight at the end).
    expect(server.requests).toBeGreaterThanOrEqual(s.requests.total);
    // One connection per -c, kept alive, plus the probe made before the load.
    expect(server.connections).toBe(8 + 1);
  });

  it('prints the table by default', async () => {
    const server = await serve(hello);
    const r = await runCli(['bench', server.url, '-c', '4', '-d', '500ms']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`${server.url} (GET, 4 connections, keep-alive)`);
    for (const label of [
      'requests/s',
      'latency p50',
      'latency p90',
      'latency p99',
      'latency max',
      'throughput',
    ]) {
      expect(lines.some((l) => l.startsWith(label))).toBe(true);
    }
    expect(r.stdout).toMatch(/^errors +0$/m);
    expect(r.stdout).toMatch(/^requests +[\d,]+ \([\d,]+ 2xx\)$/m);
  });

  it('counts non-2xx answers by status code and class', async () => {
    const server = await serve((n, _req, res) => {
      res.statusCode = n % 5 === 0 ? 500 : n % 7 === 0 ? 404 : 200;
      res.end('x');
    });
    const r = await runCli(['bench', server.url, '-c', '4', '-d', '1s', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expectSane(s);
    const e = s.errors.non2xx;
    expect(e.byStatus['500']).toBeGreaterThan(0);
    expect(e.byStatus['404']).toBeGreaterThan(0);
    expect(e.byClass).toEqual({ '4xx': e.byStatus['404'], '5xx': e.byStatus['500'] });
    expect(e.total).toBe(s.requests.total - s.requests.ok);
    expect(s.status['200']).toBe(s.requests.ok);
    expect(s.errors.total).toBe(e.total);
  });

  it('a closed port: exit 1, the connection error reported, no load', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const json = await runCli(['bench', url, '-d', '1s', '--json']);
    expect(json.code).toBe(1);
    expect(json.stderr).toContain(`cannot connect to ${url}: ECONNREFUSED`);
    const s = JSON.parse(json.stdout) as Summary;
    expect(s.requests.total).toBe(0);
    expect(s.errors.connection).toEqual({ total: 1, byCode: { ECONNREFUSED: 1 } });

    // Nothing answered: no latency, not a latency of 0.
    expect(s.latencyMs).toEqual({ min: null, mean: null, p50: null, p90: null, p99: null, max: null });

    const text = await runCli(['bench', url, '-d', '1s']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^ {2}connection +1 \(ECONNREFUSED: 1\)$/m);
    expect(text.stdout).toMatch(/^latency p99 +-$/m);
  });

  it('--compare with a target that never answers: no latency and no latency ratio, rather than 0', async () => {
    const server = await serve((_n, req, res) => {
      if (req.url !== '/slow') res.end('ok');
    });
    const args = [
      'bench',
      server.url,
      '--compare',
      `${server.url}slow`,
      '-c',
      '2',
      '-d',
      '2s',
      '--rounds',
      '1',
    ];
    const text = await runCli([...args, '-t', '1s']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^latency p99 +\d[\d,.]* ms +- +-$/m);
    expect(text.stdout).toMatch(/^latency mean +\d[\d,.]* ms +-$/m);
    expect(text.stdout).toMatch(/^ {2}timeouts +0 +[1-9]\d*$/m);
    expect(text.stdout).toMatch(/^B \/ A: 0\.00× requests\/s, - p99$/m);
    const json = await runCli([...args, '-t', '1s', '--json']);
    const c = JSON.parse(json.stdout) as { a: Summary; b: Summary; ratio: Record<string, number | null> };
    expect(c.b.latencyMs.p99).toBeNull();
    expect(c.a.latencyMs.p99).toBeGreaterThan(0);
    expect(c.ratio).toMatchObject({ latencyP50: null, latencyP90: null, latencyP99: null, latencyMax: null });
    expect(c.ratio.requestsPerSecond).toBe(0);
  });

  it('only non-2xx answers: exit 1', async () => {
    const server = await serve((_n, _req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const r = await runCli(['bench', server.url, '-c', '2', '-d', '300ms', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no 2xx answer from http:\/\/127\.0\.0\.1:\d+\/ \(\d+ answers, \d+ errors\)/);
    expect((JSON.parse(r.stdout) as Summary).errors.non2xx.byClass['5xx']).toBeGreaterThan(0);
  });

  it('counts connections the server drops under a request, and requests not answered in time', async () => {
    const server = await serve((n, req, res) => {
      if (n % 20 === 0)
        req.socket.destroy(); // closed without an answer
      else if (n % 33 === 0)
        req.socket.resetAndDestroy(); // reset
      else if (n === 5)
        return; // never answered: a timeout
      else res.end('ok');
    });
    const r = await runCli(['bench', server.url, '-c', '4', '-d', '1500ms', '--timeout', '1s', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expectSane(s);
    expect(s.errors.resets.byCode.EOF).toBeGreaterThan(0);
    expect(s.errors.resets.byCode.ECONNRESET).toBeGreaterThan(0);
    expect(s.errors.timeouts).toBe(1);
    // The lost requests must not skew the latency of the next ones (one hung request is 1 s).
    expect(s.latencyMs.p50).toBeLessThan(100);
  });

  it('--no-keepalive: a new connection for every request, without errors', async () => {
    const server = await serve(hello);
    const r = await runCli(['bench', server.url, '-c', '2', '-d', '500ms', '--no-keepalive', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expectSane(s);
    expect(s.keepAlive).toBe(false);
    expect(s.errors.total).toBe(0);
    expect(server.connections).toBeGreaterThanOrEqual(s.requests.total);
  });

  it('sends the method, headers and body given', async () => {
    const seen: string[] = [];
    const server = await serve((_n, req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => {
        if (seen.length === 0) seen.push(`${req.method} ${req.headers['x-a']} ${req.headers.accept} ${body}`);
        res.end();
      });
    });
    const r = await runCli([
      'bench',
      server.url,
      '-c',
      '1',
      '-d',
      '200ms',
      '-H',
      'X-A: 1',
      '--header',
      'Accept: text/plain',
      '--body',
      '{"a":1}',
    ]);
    expect(r.code).toBe(0);
    expect(seen).toEqual(['POST 1 text/plain {"a":1}']);
  });

  it('--compare: alternates rounds and puts B / A in the right direction', async () => {
    const fast = await serve(hello);
    const slow = await serve((_n, _req, res) => {
      setTimeout(() => res.end('hello world'), 5);
    });
    const r = await runCli([
      'bench',
      fast.url,
      '--compare',
      slow.url,
      '-c',
      '4',
      '-d',
      '1s',
      '--rounds',
      '2',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as {
      schema: string;
      a: Summary;
      b: Summary;
      ratio: Record<string, number | null>;
      roundsOverlap: boolean;
    };
    expect(c.schema).toBe('sluice.bench.compare/v1');
    expect(c.a.url).toBe(fast.url);
    expect(c.b.url).toBe(slow.url);
    for (const s of [c.a, c.b]) {
      expectSane(s);
      expect(s.rounds).toBe(2);
      expect(s.requests.perSecondByRound).toHaveLength(2);
    }
    expect(c.b.latencyMs.p50).toBeGreaterThanOrEqual(5);
    expect(c.ratio.requestsPerSecond).toBeLessThan(1);
    expect(c.ratio.latencyP50).toBeGreaterThan(1);
    expect(c.ratio.requestsPerSecond).toBeCloseTo(c.b.requests.perSecond / c.a.requests.perSecond, 2);
    expect(c.roundsOverlap).toBe(false);
  });

  it('--compare as text: both columns and the verdict line', async () => {
    const fast = await serve(hello);
    const slow = await serve((_n, _req, res) => {
      setTimeout(() => res.end('hello world'), 5);
    });
    const r = await runCli(['bench', fast.url, '--compare', slow.url, '-c', '4', '-d', '600ms']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`A  ${fast.url}\nB  ${slow.url}  (--compare)\n`);
    expect(r.stdout).toMatch(/^requests\/s +[\d,.]+ +[\d,.]+ +0\.\d\d×$/m);
    const verdict = /^B \/ A: (\d+\.\d\d)× requests\/s, (\d+\.\d\d)× p99$/m.exec(r.stdout);
    expect(verdict).not.toBeNull();
    expect(Number(verdict![1])).toBeLessThan(1);
  });

  it.each([
    [['bench', 'localhost:8080'], 'is not an http:// or https:// URL'],
    [['bench', 'http://127.0.0.1:1/', '-c', 'many'], '-c/--connections "many" is not a whole number'],
    [['bench', 'http://127.0.0.1:1/', '-d', '10'], '-d/--duration "10" is not a duration'],
    [['bench', 'http://127.0.0.1:1/', '--rounds', '2'], '--rounds needs --compare'],
    [['bench'], "missing required argument 'url'"],
  ])('bad arguments %j: exit 2 before any load', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
  });
});
