/**
 * The egress forward proxy as users run it: `sluice start` (2 workers) with an `egress:` block,
 * the real curl through `-x`, an allowed host reached, a denied one refused and logged, and a
 * policy added by SIGHUP taking effect without a restart.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
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
