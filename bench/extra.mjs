/**
 * The scenarios of `npm run bench` that proxy-compare.sh does not cover, each against the built CLI:
 *
 * - idle-conns: 10,000 keep-alive client connections held open by one worker; RSS per connection.
 * - workers: `sluice serve` hello world with 1 and then 2 workers, wrk pinned to the last core;
 *   the scaling factor (2 workers / 1 worker) on this machine.
 * - serve-hello: `sluice serve` on every core, with and without its access log, against Go net/http
 *   (installed from the distribution when missing and running as root; else the row is skipped with
 *   a note), with a plain node:http process for reference.
 *
 * Each function returns plain figures; run.mjs renders them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free loopback port. */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Resolves once `port` accepts connections. */
export async function waitPort(port, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} did not open`);
}

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
const children = (pid) =>
  (spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .filter(Boolean)
    .map(Number);

function start(bin, args, cwd) {
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function stop(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function wrk(url, { conns = 64, seconds = 5, cpu = null } = {}) {
  const args = ['-t1', `-c${conns}`, `-d${seconds}s`, url];
  const res =
    cpu === null
      ? spawnSync('wrk', args, { encoding: 'utf8' })
      : spawnSync('taskset', ['-c', String(cpu), 'wrk', ...args], { encoding: 'utf8' });
  return Number(res.stdout.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const HELLO = `export default (req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' }); res.end('hello world\\n'); };\n`;

/** 10,000 idle keep-alive connections on one worker: RSS before and after, per connection. */
export async function idleConnections(bin, count = 10_000) {
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-idle-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'sluice.yaml'),
    `workers: 1
log: { access: "off" }
servers:
  - listen: 127.0.0.1:${port}
    limits: { max_connections: ${count + 2000}, keepalive_timeout: 10m }
    routes:
      - respond: { body: "ok\\n" }
`,
  );
  const sluice = start(bin, ['start', '-c', join(dir, 'sluice.yaml')], dir);
  const sockets = [];
  try {
    await waitPort(port);
    await sleep(1000);
    const worker = children(sluice.pid)[0];
    // One request on a first batch of connections warms the code paths before the baseline.
    const open = () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('error', reject);
        s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
        s.once('data', () => resolve(s));
      });
    for (let i = 0; i < 100; i++) (await open()).destroy();
    await sleep(1500);
    const before = rssKb(worker);
    for (let i = 0; i < count; i += 500) {
      const batch = await Promise.all(Array.from({ length: Math.min(500, count - i) }, open));
      sockets.push(...batch);
    }
    await sleep(3000);
    const after = rssKb(worker);
    const held = sockets.filter((s) => !s.destroyed).length;
    return {
      connections: held,
      rss_before_mb: before / 1024,
      rss_after_mb: after / 1024,
      kb_per_connection: (after - before) / held,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await stop(sluice);
  }
}

/** `sluice serve` hello world, `workers` each, alternating rounds; wrk on the last core. */
export async function workerScaling(bin, { rounds = 3, seconds = 5 } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-workers-'));
  writeFileSync(join(dir, 'hello.mjs'), HELLO);
  const cpu = os.availableParallelism() - 1;
  const results = { 1: [], 2: [] };
  const procs = {};
  const ports = { 1: await freePort(), 2: await freePort() };
  try {
    for (const n of [1, 2]) {
      procs[n] = start(
        bin,
        [
          'serve',
          'hello.mjs',
          '--port',
          String(ports[n]),
          '--host',
          '127.0.0.1',
          '--workers',
          String(n),
          '--allow-root',
        ],
        dir,
      );
      await waitPort(ports[n]);
    }
    await sleep(1500);
    for (const n of [1, 2]) wrk(`http://127.0.0.1:${ports[n]}/`, { seconds: 1, cpu });
    for (let r = 0; r < rounds; r++) {
      for (const n of [1, 2]) results[n].push(wrk(`http://127.0.0.1:${ports[n]}/`, { seconds, cpu }));
    }
  } finally {
    for (const p of Object.values(procs)) await stop(p);
  }
  const one = median(results[1]);
  const two = median(results[2]);
  return {
    cores: os.availableParallelism(),
    wrk_cpu: cpu,
    rps_1_worker: one,
    rps_2_workers: two,
    scaling: two / one,
  };
}

/**
 * The Go toolchain, installed from the distribution (package golang-go) when missing and running
 * as root, as proxy-compare.sh installs wrk and nginx. A note saying why when there is none.
 */
function ensureGo() {
  const has = () => !spawnSync('go', ['version'], { encoding: 'utf8' }).error;
  if (has()) return null;
  if (process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-qq', 'golang-go'], { env, stdio: 'ignore' });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
      install();
    }
    if (has()) return null;
  }
  return 'go is not installed on this machine (apt package golang-go): the Go net/http row is skipped';
}

/**
 * `sluice serve` hello world on every core, with its access log (stdout, the default; here a
 * discarded stream) and without (`--access-log off`, as the others run), against Go net/http
 * (GOMAXPROCS = cores), one plain node:http process, and plain node:http on every core through
 * node:cluster (the ceiling of node:http itself on this machine, so that the distance to Go is split
 * into what sluice adds and what Node costs); rounds alternate the targets.
 */
export async function serveHello(bin, { rounds = 3, seconds = 5 } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-serve-'));
  writeFileSync(join(dir, 'hello.mjs'), HELLO);
  const nodePort = await freePort();
  writeFileSync(
    join(dir, 'plain.mjs'),
    `import http from 'node:http';\nimport hello from './hello.mjs';\nhttp.createServer(hello).listen(${nodePort}, '127.0.0.1');\n`,
  );
  const clusterPort = await freePort();
  writeFileSync(
    join(dir, 'plain-cluster.mjs'),
    `import cluster from 'node:cluster';\nimport http from 'node:http';\nimport os from 'node:os';\nimport hello from './hello.mjs';\n` +
      `if (cluster.isPrimary) { for (let i = 0; i < os.availableParallelism(); i++) cluster.fork(); process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); }); }\n` +
      `else http.createServer(hello).listen(${clusterPort}, '127.0.0.1');\n`,
  );
  const serve = async (extra) => {
    const port = await freePort();
    const args = [
      'serve',
      'hello.mjs',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--allow-root',
      ...extra,
    ];
    return { port, proc: start(bin, args, dir) };
  };
  const targets = {
    sluice: await serve([]),
    'sluice, access log off': await serve(['--access-log', 'off']),
    'node:http (1 process)': {
      port: nodePort,
      proc: spawn(process.execPath, [join(dir, 'plain.mjs')], { stdio: 'ignore' }),
    },
    'node:http (node:cluster, all cores)': {
      port: clusterPort,
      proc: spawn(process.execPath, [join(dir, 'plain-cluster.mjs')], { stdio: 'ignore' }),
    },
  };
  let note = ensureGo();
  let goVersion = null;
  if (note === null) {
    goVersion = spawnSync('go', ['version'], { encoding: 'utf8' }).stdout.trim();
    const goPort = await freePort();
    writeFileSync(
      join(dir, 'main.go'),
      `package main\nimport "net/http"\nfunc main() { http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("content-type", "text/plain"); w.Write([]byte("hello world\\n")) }); http.ListenAndServe("127.0.0.1:${goPort}", nil) }\n`,
    );
    const build = spawnSync('go', ['build', '-o', join(dir, 'hello-go'), join(dir, 'main.go')], {
      cwd: dir,
      encoding: 'utf8',
      // One file, no module; a build cache under $HOME when there is one (the standard library
      // compiles once), else in the scratch folder.
      env: {
        ...process.env,
        GO111MODULE: 'off',
        ...(process.env.HOME ? {} : { GOCACHE: join(dir, 'go-cache'), GOPATH: join(dir, 'go') }),
      },
    });
    if (build.status === 0) {
      targets['go net/http'] = { port: goPort, proc: spawn(join(dir, 'hello-go'), [], { stdio: 'ignore' }) };
    } else {
      note = `go build failed, the Go net/http row is skipped: ${(build.stderr || build.error?.message || '').trim()}`;
    }
  }
  const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  try {
    for (const t of Object.values(targets)) await waitPort(t.port);
    await sleep(1500);
    for (const t of Object.values(targets)) wrk(`http://127.0.0.1:${t.port}/`, { seconds: 1 });
    for (let r = 0; r < rounds; r++) {
      for (const [name, t] of Object.entries(targets))
        results[name].push(wrk(`http://127.0.0.1:${t.port}/`, { seconds }));
    }
  } finally {
    for (const t of Object.values(targets)) await stop(t.proc);
  }
  const rps = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
  return { rps, note, go: goVersion };
}

/**
 * 1,000 concurrent requests to a handler that answers after 2 s, through `sluice serve` on every
 * core: the wall time until the last answer (2 s is the floor) and how many succeeded.
 */
export async function slowHandler(bin, { concurrency = 1000, delayMs = 2000 } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-slow-'));
  writeFileSync(
    join(dir, 'slow.mjs'),
    `export default (req, res) => { setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow\\n'); }, ${delayMs}); };\n`,
  );
  const port = await freePort();
  const proc = start(
    bin,
    ['serve', 'slow.mjs', '--port', String(port), '--host', '127.0.0.1', '--allow-root'],
    dir,
  );
  try {
    await waitPort(port);
    await sleep(1000);
    const one = () =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let text = '';
        s.setEncoding('latin1');
        s.on('data', (d) => {
          text += d;
        });
        s.on('error', () => resolve(false));
        s.on('close', () => resolve(text.startsWith('HTTP/1.1 200')));
        s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n'));
      });
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: concurrency }, one));
    const wallMs = performance.now() - t0;
    return { concurrency, delay_ms: delayMs, ok: results.filter(Boolean).length, wall_ms: wallMs };
  } finally {
    await stop(proc);
  }
}
