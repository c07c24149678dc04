/**
 * The egress forward proxy as users run it: `sluice start` (2 workers) with an `egress:` block,
 * the real curl through `-x`, an allowed host reached, a denied one refused and logged, and a
 * policy added by SIGHUP taking effect without a restart.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
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
import { rawRequest } from '../helpers/raw-http.js';
import { until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

/** The real curl: status code and body (`-w` appends the status on its own line). */
function curl(args: readonly string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '10', '-w', '\n%{http_code}', ...args], (err, stdout, stderr) => {
      if (err !== null && stdout === '') return reject(new Error(`curl failed: ${stderr}`));
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

describe('egress proxy (sluice start, 2 workers)', () => {
  let origin: TestUpstream;
  let sluice: CliProcess;
  let proxy: string;
  let file: string;
  let egressPort: number;
  let serverPort: number;

  const config = (egressPort: number, serverPort: number, hosts: string[]) => `workers: 2
egress:
  listen: "127.0.0.1:${egressPort}"
  policies:
    - { name: local-apps, sources: [127.0.0.0/8], hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}] }
servers:
  - listen: "127.0.0.1:${serverPort}"
    routes: [{ respond: { body: "ok\\n" } }]
`;

  beforeAll(async () => {
    origin = await startUpstream();
    const dir = (await tempDir()).path;
    egressPort = await freePort();
    serverPort = await freePort();
    file = join(dir, 'sluice.yaml');
    await writeFile(file, config(egressPort, serverPort, ['127.0.0.1']));
    sluice = spawnCli(['start', '-c', file]);
    await waitForPort(egressPort, { proc: sluice });
    proxy = `http://127.0.0.1:${egressPort}`;
  });

  afterAll(async () => {
    sluice?.signal('SIGTERM');
    await sluice?.waitForExit(10_000).catch(() => undefined);
    await killAll();
    await origin?.close();
  });

  it('reaches an allowed host, refuses and logs a denied one, and follows a reloaded policy', async () => {
    const allowed = await curl(['-x', proxy, `http://127.0.0.1:${origin.port}/allowed?q=1`]);
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toMatchObject({ method: 'GET', url: '/allowed?q=1' });

    const seen = origin.seen.length;
    const denied = await curl(['-x', proxy, `http://localhost:${origin.port}/denied`]);
    expect(denied.status).toBe(403);
    expect(denied.body).toContain('SLUICE_E_AUTH_EGRESS_DENIED');
    expect(origin.seen.length).toBe(seen);
    const [line] = await sluice.waitForJson((l) => l.msg === 'egress denied');
    expect(line).toMatchObject({ level: 'warn', host: 'localhost' });
    expect(String(line!.source)).toMatch(/^127\./);

    // CONNECT to a denied host is refused too (curl reports the proxy's 403).
    const tunnel = await curl(['-p', '-x', proxy, `http://localhost:${origin.port}/tunnel`]);
    expect(tunnel.status).not.toBe(200);

    await writeFile(file, config(egressPort, serverPort, ['127.0.0.1', 'localhost']));
    sluice.signal('SIGHUP');
    await until(
      async () =>
        (await curl(['-x', proxy, `http://localhost:${origin.port}/now`])).status === 200 ? true : undefined,
      'the reloaded policy',
      10_000,
    );
    const viaTunnel = await curl(['-p', '-x', proxy, `http://localhost:${origin.port}/tunnel`]);
    expect(viaTunnel.status).toBe(200);
  });
});

describe('egress allow-list and refusals (sluice start, 1 worker)', () => {
  let origin: TestUpstream;
  let sluice: CliProcess;
  let egressPort: number;
  let dir: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    origin = await startUpstream();
    dir = await tempDir();
    egressPort = await freePort();
    const file = join(dir.path, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
egress:
  listen: "127.0.0.1:${egressPort}"
  policies:
    - { name: by-port, sources: [127.0.0.0/8], hosts: ["127.0.0.1:${origin.port}", "*.example.com:443"] }
servers:
  - listen: "127.0.0.1:${await freePort()}"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    sluice = spawnCli(['start', '-c', file]);
    await waitForPort(egressPort, { proc: sluice });
  });

  afterAll(async () => {
    sluice?.signal('SIGTERM');
    await sluice?.waitForExit(10_000).catch(() => undefined);
    await killAll();
    await origin?.close();
    await dir?.remove();
  });

  it('allows an address on its listed port only', async () => {
    const proxy = `http://127.0.0.1:${egressPort}`;
    const allowed = await curl(['-x', proxy, `http://127.0.0.1:${origin.port}/in`]);
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body)).toMatchObject({ url: '/in' });
    const otherPort = await curl(['-x', proxy, `http://127.0.0.1:${egressPort}/out`]);
    expect(otherPort.status).toBe(403);
    const [line] = await sluice.waitForJson((l) => l.msg === 'egress denied' && l.port === egressPort);
    expect(line).toMatchObject({ host: '127.0.0.1', reason: 'host' });
  });

  // The parser's refusals were answered with no id and logged nowhere: a client whose calls all
  // failed left no trace in the proxy's log.
  it('answers and logs what the parser refuses (400, 414, 431), each with the id of its answer', async () => {
    const sent = [
      { payload: 'NOT A REQUEST\r\n\r\n', status: 400, code: 'SLUICE_E_CLIENT_BAD_REQUEST' },
      {
        payload: `GET http://127.0.0.1:${origin.port}/${'a'.repeat(20_000)} HTTP/1.1\r\n\r\n`,
        status: 414,
        code: 'SLUICE_E_CLIENT_URI_TOO_LONG',
      },
      {
        payload: `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        status: 431,
        code: 'SLUICE_E_CLIENT_HEADERS_TOO_LARGE',
      },
    ];
    const seen = origin.seen.length;
    for (const { payload, status, code } of sent) {
      const r = await rawRequest(egressPort, payload, { waitMs: 5000 });
      expect([r.status, r.closed]).toEqual([status, true]);
      const id = /\r\nx-sluice-error-id: ([0-9a-f]+)\r\n/.exec(r.text)?.[1];
      expect(id).toBeDefined();
      expect(r.text).toContain(`"request_id":"${id}"`);
      const [line] = await sluice.waitForJson((l) => l.error_id === id);
      expect(line).toMatchObject({ level: 'warn', msg: 'egress refused', method: '-', target: '', code });
      expect(String(line!.source)).toMatch(/^127\./);
    }
    expect(origin.seen.length).toBe(seen);
    expect(sluice.jsonLines().filter((l) => l.msg === 'egress refused')).toHaveLength(3);
  });
});

describe('egress at shutdown (sluice start, SIGTERM)', () => {
  // A tunnel cut at the drain deadline wrote no line: the worker exited first.
  it('logs a tunnel cut at shutdown_timeout, and the line reaches stdout before the exit', async () => {
    const echo = net.createServer((s) => {
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const dir = await tempDir();
    const egressPort = await freePort();
    const file = join(dir.path, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
shutdown_timeout: 1s
egress:
  listen: "127.0.0.1:${egressPort}"
  policies:
    - { name: local-apps, sources: [127.0.0.0/8], hosts: [127.0.0.1] }
servers:
  - listen: "127.0.0.1:${await freePort()}"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    const sluice = spawnCli(['start', '-c', file]);
    try {
      await waitForPort(egressPort, { proc: sluice });
      const tunnel = net.connect(egressPort, '127.0.0.1');
      tunnel.on('error', () => undefined);
      tunnel.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
      let seen = '';
      tunnel.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
      });
      await until(async () => (seen.includes('200') ? true : undefined), 'the tunnel', 5000);
      tunnel.write('ping');
      await until(async () => (seen.endsWith('ping') ? true : undefined), 'the echo', 5000);
      sluice.signal('SIGTERM');
      expect(await sluice.waitForExit(10_000)).toMatchObject({ code: 0 });
      // Read after the exit: only what was written before it counts.
      expect(sluice.jsonLines().filter((l) => l.msg === 'egress')).toMatchObject([
        {
          level: 'warn',
          method: 'CONNECT',
          host: '127.0.0.1',
          port: echoPort,
          policy: 'local-apps',
          status: 499,
          bytes_sent: 4,
          bytes_received: 4,
          error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
          error_id: null,
        },
      ]);
    } finally {
      await sluice.kill();
      await new Promise<void>((r) => echo.close(() => r()));
      await dir.remove();
    }
  });
});
