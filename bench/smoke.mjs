#!/usr/bin/env node
/**
 * `npm run bench:smoke`: the regression guard CI runs after the tests. sluice (built CLI, one
 * worker, access log on) and a plain Node proxy (node:http + http.request with a keep-alive agent,
 * the core of node-http-proxy) proxy the same upstream, alternating short rounds under autocannon.
 *
 * It fails only on a gross drop: sluice below 0.6 × the plain Node proxy, or any error answer.
 * Measured on the 2-core development machine with wrk: 0.88–0.98 × (sluice does more per
 * request: header rewriting, X-Forwarded-*, metrics, an access line), with ±10 % between runs;
 * the floor sits far enough below to trip only on a regression of a third or more.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort, waitPort } from './extra.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOR = 0.6;
const ROUNDS = 3;
const SECONDS = 3;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** wrk when installed (a C load generator leaves the cores to the proxies), else autocannon. */
const haveWrk = !spawnSync('wrk', ['-v']).error;

async function load(port, seconds) {
  const url = `http://127.0.0.1:${port}/smoke`;
  if (haveWrk) {
    const out = spawnSync('wrk', ['-t1', '-c32', `-d${seconds}s`, url], { encoding: 'utf8' }).stdout;
    const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0);
    const non2xx = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
    const socket = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
    const errors = non2xx + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
    return { rps, errors };
  }
  const result = await autocannon({ url, connections: 32, duration: seconds });
  return { rps: result.requests.average, errors: result.errors + result.non2xx };
}

const dir = mkdtempSync(join(os.tmpdir(), 'sluice-smoke-'));
const [up, naive, sluice] = [await freePort(), await freePort(), await freePort()];
writeFileSync(
  join(dir, 'up.mjs'),
  `import http from 'node:http';
http.createServer((q, s) => { s.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' }); s.end('hello world\\n'); }).listen(${up}, '127.0.0.1');
`,
);
writeFileSync(
  join(dir, 'naive.mjs'),
  `import http from 'node:http';
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
http.createServer((req, res) => {
  const p = http.request({ host: '127.0.0.1', port: ${up}, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  p.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(p);
}).listen(${naive}, '127.0.0.1');
`,
);
writeFileSync(
  join(dir, 'sluice.yaml'),
  `workers: 1
servers:
  - listen: 127.0.0.1:${sluice}
    routes:
      - proxy: { url: "http://127.0.0.1:${up}" }
`,
);

const procs = [
  spawn(process.execPath, [join(dir, 'up.mjs')], { stdio: 'ignore' }),
  spawn(process.execPath, [join(dir, 'naive.mjs')], { stdio: 'ignore' }),
  spawn(process.execPath, [join(root, 'dist/cli/bin.js'), 'start', '-c', join(dir, 'sluice.yaml')], {
    stdio: ['ignore', openSync(join(dir, 'sluice.log'), 'w'), 'inherit'],
    cwd: dir,
  }),
];
let code = 1;
try {
  for (const p of [up, naive, sluice]) await waitPort(p);
  await sleep(1000);
  await load(naive, 1);
  await load(sluice, 1);
  const rounds = { naive: [], sluice: [] };
  let errors = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, port] of [
      ['naive', naive],
      ['sluice', sluice],
    ]) {
      const m = await load(port, SECONDS);
      rounds[name].push(m.rps);
      if (name === 'sluice') errors += m.errors;
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ratio = median(rounds.sluice) / median(rounds.naive);
  process.stdout.write(
    `smoke bench (${haveWrk ? 'wrk' : 'autocannon'}): sluice ${median(rounds.sluice).toFixed(0)} req/s, plain Node proxy ${median(rounds.naive).toFixed(0)} req/s, ratio ${ratio.toFixed(2)} (floor ${FLOOR}); sluice errors ${errors}\n`,
  );
  code = ratio >= FLOOR && errors === 0 ? 0 : 1;
  if (code !== 0) {
    process.stdout.write('smoke bench: FAILED — sluice fell below the floor or answered errors\n');
    const odd = readFileSync(join(dir, 'sluice.log'), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.includes('"status":200'));
    process.stdout.write(
      `sluice log, lines other than 200 answers (${odd.length}):\n${odd.slice(0, 20).join('\n')}\n`,
    );
  }
} finally {
  for (const p of procs) p.kill('SIGTERM');
}
process.exitCode = code;
