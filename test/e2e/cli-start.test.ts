/**
 * `sluice start -c FILE` as a real process: proxying to an upstream in this process, JSON access
 * lines on stdout, SIGHUP reloads (good and bad files), graceful SIGTERM with a request in flight,
 * the exit codes of a bad config (2) and of a port already taken (1), and a SIGHUP sent before the
 * config is even read.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** One request on a fresh connection (node:http lets tests send Connection and other hop headers). */
function request(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const isAccess = (path: string) => (l: Record<string, unknown>) => l.msg === 'request' && l.path === path;

function config(port: number, upstream: string, extraRoutes = ''): string {
  return `# written by test/e2e/cli-start.test.ts
version: 1
workers: 1
shutdown_timeout: 10s
log: { level: info, access: stdout, format: json }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    trusted_proxies: [127.0.0.1]
    routes:
      - name: hello
        match: { path: /hello }
        respond: { status: 200, body: "hello from sluice\\n", headers: { content-type: text/plain } }
      - name: api
        match: { path_prefix: /api/ }
        proxy:
          upstream: backend
          strip_prefix: /api
          set_headers: { X-Request-Id: $request_id }
${extraRoutes}upstreams:
  backend:
    targets:
      - url: ${upstream}
`;
}

/** Whether `pid` has a handler for signal `n` (SigCgt in /proc/PID/status). */
const catches = (pid: number, n: number): boolean => {
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & (1n << BigInt(n - 1))) !== 0n;
};

describe('sluice start -c FILE (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let up: TestUpstream;
  let port: number;
  let sluice: CliProcess;
  const file = () => join(tmp.path, 'sluice.yaml');

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
    up = await startUpstream((req, res, body) => {
      const answer = () => {
        const doc = JSON.stringify({ url: req.url, method: req.method, body: body.toString() });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc) });
        res.end(doc);
      };
      if (req.url?.startsWith('/slow')) setTimeout(answer, 1000);
      else answer();
    });
    port = await freePort();
    await writeFile(file(), config(port, up.url));
    sluice = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
    await waitForPort(port, { proc: sluice });
    await sluice.waitForJson((l) => l.msg === 'sluice started');
  });

  afterAll(async () => {
    await killAll();
    await up?.close();
    await tmp?.remove();
  });

  it('logs a JSON start line naming the listen address and config hash', () => {
    const started = sluice.jsonLines().find((l) => l.msg === 'sluice started')!;
    expect(started).toMatchObject({ level: 'info', pid: sluice.pid, listen: [`127.0.0.1:${port}`] });
    expect(started.config).toMatch(/^[0-9a-f]{16}$/);
    expect(started.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('proxies to the upstream with the forwarding headers, hop-by-hop headers removed', async () => {
    const res = await request(port, '/api/echo?q=1', {
      'x-forwarded-for': '203.0.113.7',
      connection: 'close, x-drop-me',
      'x-drop-me': 'secret',
      'keep-alive': 'timeout=5',
      'x-kept': 'yes',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ url: '/echo?q=1', method: 'GET', body: '' });
    const seen = up.seen.find((s) => s.url === '/echo?q=1')!;
    expect(seen).toBeDefined();
    // 127.0.0.1 is a trusted proxy: its X-Forwarded-For is appended to.
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('203.0.113.7');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${port}`);
    expect(seen.headers.host).toBe(`127.0.0.1:${port}`);
    expect(seen.headers['x-kept']).toBe('yes');
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f]+$/);
  });

  it('writes a JSON access line on stdout for a proxied request', async () => {
    const [line] = await sluice.waitForJson(isAccess('/api/echo'));
    const seen = up.seen.find((s) => s.url === '/echo?q=1')!;
    expect(line).toMatchObject({
      level: 'info',
      msg: 'request',
      method: 'GET',
      path: '/api/echo',
      status: 200,
      status_text: 'OK',
      bytes_out: Buffer.byteLength(JSON.stringify({ url: '/echo?q=1', method: 'GET', body: '' })),
      remote_addr: '203.0.113.7',
      server: 'web',
      route: 'api',
      request_id: seen.headers['x-request-id'],
      upstream: 'backend',
      target: up.url,
      attempts: 1,
    });
    expect(typeof line!.duration_ms).toBe('number');
    expect(line!.duration_ms as number).toBeGreaterThanOrEqual(0);
    expect(line!.duration_ms as number).toBeLessThan(10_000);
    expect(line!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The query string is not logged anywhere in the line.
    expect(JSON.stringify(line)).not.toContain('q=1');
  });

  it('serves a respond route and logs it without upstream fields', async () => {
    const res = await request(port, '/hello');
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello from sluice\n');
    expect(res.headers['content-type']).toBe('text/plain');
    const [line] = await sluice.waitForJson(isAccess('/hello'));
    expect(line).toMatchObject({ status: 200, route: 'hello', server: 'web', bytes_out: 18 });
    expect(line).not.toHaveProperty('upstream');
    expect(line).not.toHaveProperty('target');
    expect(line).not.toHaveProperty('attempts');
  });

  it('answers 404 for a path no route matches', async () => {
    expect((await request(port, '/nothing-here')).status).toBe(404);
    const [line] = await sluice.waitForJson(isAccess('/nothing-here'));
    expect(line).toMatchObject({ status: 404, status_text: 'Not Found', route: null });
  });

  it('SIGHUP reloads the file: a new route is served, the old ones still are', async () => {
    expect((await request(port, '/new')).status).toBe(404);
    await writeFile(
      file(),
      config(
        port,
        up.url,
        `      - name: added
        match: { path: /new }
        respond: { status: 201, body: "added by reload\\n" }
`,
      ),
    );
    sluice.signal('SIGHUP');
    await sluice.waitForJson((l) => l.msg === 'config reloaded');
    const res = await request(port, '/new');
    expect(res.status).toBe(201);
    expect(res.body).toBe('added by reload\n');
    expect((await request(port, '/hello')).status).toBe(200);
    expect((await request(port, '/api/after-reload')).status).toBe(200);
    expect(up.seen.some((s) => s.url === '/after-reload')).toBe(true);
  });

  it('SIGHUP with an invalid file keeps the running config and logs every problem', async () => {
    await writeFile(
      file(),
      `version: 1
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    limits: { max_body: lots }
    routes:
      - respond: { status: 200 }
        redirect: { to: "/x" }
`,
    );
    sluice.signal('SIGHUP');
    const [refused] = await sluice.waitForJson(
      (l) => l.level === 'error' && /reload refused/.test(String(l.msg)),
    );
    expect(refused!.file).toBe('sluice.yaml');
    expect(refused!.problems).toEqual([
      'sluice.yaml:5:25: SLUICE_E_CONFIG_SIZE servers[0].limits.max_body: "lots" is not a size (hint: write a number with a unit: 512b, 16kb, 10mb or 1gb (1kb = 1024 bytes))',
      'sluice.yaml:7:9: SLUICE_E_CONFIG_ROUTE_ACTION servers[0].routes[0]: route has respond and redirect: give it exactly one action (hint: give each route one of proxy, respond, redirect or handler)',
    ]);
    // Still the previous config: /new (from the last good reload) and the proxy route answer.
    expect((await request(port, '/new')).status).toBe(201);
    expect((await request(port, '/api/still-here')).status).toBe(200);
    expect(sluice.exited()).toBeNull();
    // Exactly one successful reload so far.
    expect(sluice.jsonLines().filter((l) => l.msg === 'config reloaded')).toHaveLength(1);
  });

  it('SIGTERM drains: a request in flight completes with 200, then the process exits 0', async () => {
    const slow = request(port, '/api/slow');
    // Wait until the upstream holds the request (it answers 1 s later).
    const until = Date.now() + 10_000;
    while (!up.seen.some((s) => s.url === '/slow') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    expect(up.seen.some((s) => s.url === '/slow')).toBe(true);

    const signalledAt = Date.now();
    sluice.signal('SIGTERM');
    // Once the signal is handled ('stopping' is logged), a request on a new connection is not
    // served normally: refused, or 503 (or refused because the process is already gone).
    await sluice.waitForJson((l) => l.msg === 'stopping');
    const late = await request(port, '/hello').then(
      (r) => r.status,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect([503, 'ECONNREFUSED', 'ECONNRESET']).toContain(late);

    const res = await slow;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: '/slow' });
    const exit = await sluice.waitForExit(10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(8_000);

    const lines = sluice.jsonLines();
    expect(lines.find((l) => l.msg === 'stopping')).toMatchObject({ signal: 'SIGTERM', deadline_ms: 10_000 });
    // The access line of the drained request was flushed before the exit.
    expect(lines.find(isAccess('/api/slow'))).toMatchObject({ status: 200, route: 'api' });
    await expect(waitForPort(port, { timeoutMs: 200 })).rejects.toThrow();
  });
});

describe('sluice start failures, and signals before the config is read (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  it('an invalid config: exit 2, every problem on stderr, nothing bound', async () => {
    const port = await freePort();
    await writeFile(
      join(tmp.path, 'bad.yaml'),
      `servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - proxy: { upstream: nowhere }
      - respond: { body: "x" }
        redirect: { to: "/y" }
`,
    );
    const p = spawnCli(['start', '-c', 'bad.yaml'], { cwd: tmp.path });
    const exit = await p.waitForExit(15_000);
    expect(exit.code).toBe(2);
    expect(p.stderr().split('\n')).toEqual([
      'bad.yaml:4:28: SLUICE_E_CONFIG_UNKNOWN_UPSTREAM servers[0].routes[0].proxy.upstream: unknown upstream "nowhere"; no upstreams are defined (hint: define it under upstreams:, or use proxy.url for a single target)',
      'bad.yaml:5:9: SLUICE_E_CONFIG_ROUTE_ACTION servers[0].routes[1]: route has respond and redirect: give it exactly one action (hint: give each route one of proxy, respond, redirect or handler)',
      '',
    ]);
    expect(p.stdout()).toBe('');
  });

  it('a missing config file: exit 2 with SLUICE_E_CONFIG_FILE', async () => {
    const p = spawnCli(['start', '-c', 'missing.yaml'], { cwd: tmp.path });
    expect((await p.waitForExit(15_000)).code).toBe(2);
    expect(p.stderr()).toMatch(/^missing\.yaml:1:1: SLUICE_E_CONFIG_FILE cannot read the file: no such file/);
  });

  it('a port already taken: exit 1 with SLUICE_E_RUNTIME_LISTEN', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await writeFile(
        join(tmp.path, 'taken.yaml'),
        `servers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n      - respond: { body: "x" }\n`,
      );
      const p = spawnCli(['start', '-c', 'taken.yaml'], { cwd: tmp.path });
      const exit = await p.waitForExit(15_000);
      expect(exit.code).toBe(1);
      expect(p.stderr()).toMatch(
        new RegExp(
          `^sluice: SLUICE_E_RUNTIME_LISTEN cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE \\(hint: .+\\)\\n$`,
        ),
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('an address not of this host: exit 1, SLUICE_E_RUNTIME_LISTEN with a hint about the address, not the port', async () => {
    await writeFile(
      join(tmp.path, 'foreign.yaml'),
      'servers:\n  - listen: "192.0.2.1:8080"\n    routes:\n      - respond: { body: "x" }\n',
    );
    const p = spawnCli(['start', '-c', 'foreign.yaml'], { cwd: tmp.path });
    expect((await p.waitForExit(15_000)).code).toBe(1);
    expect(p.stderr()).toMatch(
      /^sluice: SLUICE_E_RUNTIME_LISTEN cannot listen on 192\.0\.2\.1:8080: EADDRNOTAVAIL \(hint: the address is not one of this host's .+\)\n$/,
    );
  });

  it('a pid_file it cannot write: exit 1 with SLUICE_E_RUNTIME_PID_FILE, no stack trace, nothing left running', async () => {
    const port = await freePort();
    await writeFile(
      join(tmp.path, 'pid.yaml'),
      `pid_file: ${join(tmp.path, 'no-such-dir', 'sluice.pid')}\nservers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n      - respond: { body: "x" }\n`,
    );
    const p = spawnCli(['start', '-c', 'pid.yaml'], { cwd: tmp.path });
    expect((await p.waitForExit(15_000)).code).toBe(1);
    expect(p.stderr()).toMatch(
      /^sluice: SLUICE_E_RUNTIME_PID_FILE cannot write pid_file \S+no-such-dir\/sluice\.pid: ENOENT \(hint: .+\)\n$/,
    );
    // The workers were stopped with the primary: nothing answers on the port.
    await expect(
      new Promise((resolve, reject) =>
        net.connect(port, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  // Under systemd a pid file directly in /run is created for the service, which may write it but not
  // remove it: the stop threw (EACCES, EISDIR...) with a stack and exit 1, and systemd saw a failure.
  it('a pid_file it cannot remove at stop is logged and left; the stop still ends with 0', async () => {
    const port = await freePort();
    const pid = join(tmp.path, 'kept.pid');
    await writeFile(
      join(tmp.path, 'kept.yaml'),
      `pid_file: ${pid}\nworkers: 1\nservers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n      - respond: { body: "x" }\n`,
    );
    const p = spawnCli(['start', '-c', 'kept.yaml'], { cwd: tmp.path });
    await p.waitForJson((l) => l.msg === 'sluice started');
    // What no rm with force removes: a directory that is not empty.
    await rm(pid);
    await mkdir(join(pid, 'in-the-way'), { recursive: true });
    p.signal('SIGTERM');
    expect((await p.waitForExit(15_000)).code).toBe(0);
    const [left] = await p.waitForJson((l) => l.msg === 'cannot remove pid_file; left in place');
    expect(left).toMatchObject({ level: 'warn', file: pid, reason: 'ERR_FS_EISDIR' });
    await p.waitForJson((l) => l.msg === 'sluice stopped');
    expect(p.stderr()).toBe('');
  });

  // Node's recursive mkdir never returns on procfs: the start hung creating /proc/..., a SIGTERM
  // could not end it, and nothing was served.
  it('an access log under /proc: said, logged to stdout instead, and the start goes on', async () => {
    const port = await freePort();
    await writeFile(
      join(tmp.path, 'proc-log.yaml'),
      `workers: 1\nlog: { access: /proc/sluice-log-test/access.log }\nservers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n      - respond: { body: "x" }\n`,
    );
    const p = spawnCli(['start', '-c', 'proc-log.yaml'], { cwd: tmp.path });
    await p.waitForJson((l) => l.msg === 'sluice started', 1, 15_000);
    expect(p.stderr()).toContain(
      "cannot open log file /proc/sluice-log-test/access.log: ENOENT: no such file or directory, mkdir '/proc/sluice-log-test'; logging to stdout",
    );
    p.signal('SIGTERM');
    expect((await p.waitForExit(15_000)).code).toBe(0);
  });

  it('a SIGHUP while the config is parsed is carried out: none is lost as the primary takes the signals over', async () => {
    const port = await freePort();
    const fifo = join(tmp.path, 'large.yaml');
    execFileSync('mkfifo', [fifo]);
    // 2,000 routes: parsing and checking them takes long enough for the signal to land there.
    let config = `servers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n`;
    for (let i = 0; i < 2000; i++)
      config += `      - match: { path: /r${i} }\n        respond: { status: 200 }\n`;
    config += '      - respond: { status: 200, body: "first\\n" }\n';
    const p = spawnCli(['start', '-c', 'large.yaml'], { cwd: tmp.path });
    await until(() => (catches(p.pid, 1) ? true : undefined), 'a SIGHUP handler', 15_000);
    await writeFile(fifo, config);
    // Written and closed: sluice has the whole file and checks it. Here a signal sent 20-600 ms
    // after the write landed in the synchronous stretch before the primary takes the signals over,
    // which lost it when the held ones were taken before its handlers were added.
    await new Promise((r) => setTimeout(r, 150));
    p.signal('SIGHUP');
    await p.waitForJson((l) => l.msg === 'sluice started');
    // The reload opens the file again; a lost SIGHUP never does, and this write would wait forever.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      writeFile(fifo, config.replace('first', 'second')),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('the file was not read again: the SIGHUP was lost')),
          15_000,
        );
      }),
    ]);
    clearTimeout(timer);
    await p.waitForJson((l) => l.msg === 'config reloaded');
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('second\n');
  });

  it('a SIGHUP while the config is being read does not end the process: the reload follows once it serves', async () => {
    const port = await freePort();
    // A FIFO as the config file: the start stops at reading it until the test writes it, a
    // moment that lasts as long as the test wants, where a real start passes in half a second.
    const fifo = join(tmp.path, 'sluice.yaml');
    execFileSync('mkfifo', [fifo]);
    const first = `servers:\n  - listen: "127.0.0.1:${port}"\n    routes:\n      - respond: { status: 200, body: "first\\n" }\n`;
    const p = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
    await until(() => (catches(p.pid, 1) ? true : undefined), 'a SIGHUP handler', 15_000);
    p.signal('SIGHUP');
    await writeFile(fifo, first);
    await p.waitForJson((l) => l.msg === 'sluice started');
    // The held SIGHUP: a reload, which reads the file again.
    await writeFile(fifo, first.replace('first', 'second'));
    await p.waitForJson((l) => l.msg === 'config reloaded');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('second\n');
    p.signal('SIGTERM');
    expect((await p.waitForExit(15_000)).code).toBe(0);
  });
});

// SIGQUIT (nginx's graceful stop: `nginx -s quit`, also Ctrl-\ at a terminal) and SIGUSR2 took
// Node's default and ended the primary at once: no drain, requests in flight cut, nothing logged,
// the pid file left behind.
describe('SIGQUIT stops as SIGTERM does, SIGUSR2 is ignored (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let up: TestUpstream;

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
    up = await startUpstream((req, res) => {
      const answer = () => res.end(`answered ${req.url}`);
      if (req.url?.startsWith('/slow')) setTimeout(answer, 1000);
      else answer();
    });
  });
  afterAll(async () => {
    await killAll();
    await up?.close();
    await tmp?.remove();
  });

  it('SIGUSR2 is logged and changes nothing; SIGQUIT drains a request in flight, removes the pid file, exits 0', async () => {
    const port = await freePort();
    const pidFile = join(tmp.path, 'sluice.pid');
    await writeFile(join(tmp.path, 'sluice.yaml'), `${config(port, up.url)}pid_file: sluice.pid\n`);
    const p = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
    await waitForPort(port, { proc: p });
    await p.waitForJson((l) => l.msg === 'sluice started');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(p.pid));
    const workers = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(workers).toHaveLength(1);

    p.signal('SIGUSR2');
    const [ignored] = await p.waitForJson((l) => l.signal === 'SIGUSR2');
    expect(ignored).toMatchObject({ level: 'warn' });
    expect(String(ignored!.msg)).toMatch(/ignored/);
    // A worker takes no signal from outside (Ctrl-\ reaches the whole process group): it serves on.
    for (const worker of workers) {
      process.kill(worker, 'SIGQUIT');
      process.kill(worker, 'SIGUSR2');
    }
    expect((await request(port, '/hello')).status).toBe(200);
    expect(p.exited()).toBeNull();
    expect(p.jsonLines().some((l) => /worker .*exit|exited/.test(String(l.msg)))).toBe(false);

    const slow = request(port, '/api/slow');
    await until(
      () => (up.seen.some((s) => s.url === '/slow') ? true : undefined),
      'the slow request upstream',
    );
    p.signal('SIGQUIT');
    const [stopping] = await p.waitForJson((l) => l.msg === 'stopping');
    expect(stopping).toMatchObject({ signal: 'SIGQUIT' });
    const res = await slow;
    expect(res.status).toBe(200);
    expect(res.body).toBe('answered /slow');
    expect(await p.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
  });
});
