/**
 * Logs as operators meet them: an access-log file that logrotate moves and SIGUSR1 reopens, lines
 * that stay whole with several workers writing, and credentials that never appear anywhere.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, killAll, requireBuilt, spawnCli, tempDir, waitForPort } from '../helpers/cli.js';
import { until } from '../helpers/runtime.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

const SECRET = 's3cr3t-value-that-must-not-appear';

describe('logs (built CLI, 2 workers)', () => {
  let up: TestUpstream;

  afterAll(async () => {
    await killAll();
    await up?.close();
  });

  it('reopens the access log on SIGUSR1, keeps lines whole, and never logs credentials', {
    timeout: 60_000,
  }, async () => {
    up = await startUpstream();
    const dir = (await tempDir()).path;
    const port = await freePort();
    const handler = join(dir, 'boom.ts');
    await writeFile(
      handler,
      `export default { fetch() { throw new Error('handler failed with ${SECRET.slice(0, 4)}'); } };\n`,
    );
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 2
allow_root_handlers: true
log: { access: logs/access.log }
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - name: boom
        match: { path: /boom }
        handler: ./boom.ts
      - name: api
        proxy: { url: "${up.url}" }
`,
    );
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    // Both workers must be listening before the burst, or the first one takes every connection.
    await sluice.waitForJson((l) => l.msg === 'sluice started');
    const headers = { authorization: `Bearer ${SECRET}`, cookie: `session=${SECRET}`, 'x-api-key': SECRET };
    const agent = new Agent({ connections: 32 });
    const burst = (n: number, path: string) =>
      Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const res = await request(`http://127.0.0.1:${port}${path}?token=${SECRET}&i=${i}`, {
            headers,
            dispatcher: agent,
          });
          await res.body.dump();
        }),
      );
    await burst(400, '/api/first');
    await burst(3, '/boom');
    const access = join(dir, 'logs/access.log');
    await until(
      async () => ((await readFile(access, 'utf8')).split('\n').length > 403 ? true : undefined),
      'access lines',
      5000,
    );

    // logrotate moves the file; SIGUSR1 makes every process open a new one.
    await rename(access, `${access}.1`);
    sluice.signal('SIGUSR1');
    await until(
      () => (sluice.jsonLines().some((l) => l.msg === 'log files reopened') ? true : undefined),
      'reopen',
      5000,
    );
    await new Promise((r) => setTimeout(r, 300));
    await burst(200, '/api/second');
    await until(
      async () =>
        (await readFile(access, 'utf8').catch(() => '')).split('\n').length > 200 ? true : undefined,
      'new file',
      5000,
    );
    await agent.close();
    sluice.signal('SIGTERM');
    await sluice.waitForExit(15_000);

    const rotated = (await readFile(`${access}.1`, 'utf8')).trim().split('\n');
    const fresh = (await readFile(access, 'utf8')).trim().split('\n');
    // Every line, from both workers, is whole JSON.
    const parsed = [...rotated, ...fresh].map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = parsed.filter((l) => l.msg === 'request');
    expect(requests.filter((l) => String(l.path) === '/api/first')).toHaveLength(400);
    expect(requests.filter((l) => String(l.path) === '/api/second')).toHaveLength(200);
    expect(new Set(requests.map((l) => l.pid)).size).toBe(2);
    expect(fresh.every((l) => !l.includes('/api/first'))).toBe(true);
    // Nothing anywhere carries the credentials: not the files, not stdout (app logs, the handler's error).
    const everything = [...rotated, ...fresh, sluice.stdout(), sluice.stderr()].join('\n');
    expect(everything).toContain('handler failed');
    expect(everything).not.toContain(SECRET);
  });
  it('says so when SIGUSR1 cannot reopen the access log, and writes on to the file that was open', {
    timeout: 60_000,
  }, async () => {
    const dir = (await tempDir()).path;
    const port = await freePort();
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 2
log: { access: logs/access.log }
servers:
  - listen: "127.0.0.1:${port}"
    routes:
      - respond: { status: 200, body: "ok" }
`,
    );
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    await sluice.waitForJson((l) => l.msg === 'sluice started');
    // The workers' lines come on their own pipes: one may follow the primary's 'sluice started'.
    const workers = (await sluice.waitForJson((l) => l.msg === 'worker ready', 2, 10_000)).map((l) => l.pid);
    expect(workers).toHaveLength(2);
    await (await request(`http://127.0.0.1:${port}/before`)).body.dump();

    // The directory moved away and a plain file in its place: the path cannot be opened again.
    await rename(join(dir, 'logs'), join(dir, 'logs.old'));
    await writeFile(join(dir, 'logs'), 'x\n');
    sluice.signal('SIGUSR1');
    const failed = await sluice.waitForJson(
      (l) => l.msg === 'log file not reopened; its lines go on to the file that was open (moved or not)',
      2,
      10_000,
    );
    expect(new Set(failed.map((l) => l.pid))).toEqual(new Set(workers));
    for (const l of failed) {
      expect(l.level).toBe('error');
      expect(l.file).toBe(join(dir, 'logs/access.log'));
      expect(String(l.reason)).toContain('EEXIST');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(sluice.jsonLines().filter((l) => l.msg === 'log files reopened')).toEqual([]);

    await (await request(`http://127.0.0.1:${port}/after`)).body.dump();
    const moved = join(dir, 'logs.old/access.log');
    await until(
      async () => ((await readFile(moved, 'utf8')).includes('"/after"') ? true : undefined),
      'the line of /after in the file that was open',
      5000,
    );
    sluice.signal('SIGTERM');
    await sluice.waitForExit(15_000);
  });

  it('the primary follows log.level and log.format across reloads, as its new workers do', {
    timeout: 60_000,
  }, async () => {
    const dir = (await tempDir()).path;
    const port = await freePort();
    const file = join(dir, 'sluice.yaml');
    const yaml = (log: string) => `workers: 1
log: { ${log} }
servers:
  - listen: "127.0.0.1:${port}"
    routes: [ { respond: { body: "x" } } ]
`;
    await writeFile(file, yaml('level: warn'));
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    const primaryReloaded = (l: Record<string, unknown>) =>
      l.msg === 'config reloaded' && l.pid === sluice.pid;

    // warn → info: the primary's own info lines appear (they stayed hidden).
    await writeFile(file, yaml('level: info'));
    sluice.signal('SIGHUP');
    await sluice.waitForJson(primaryReloaded, 1, 20_000);

    // json → pretty: the primary's lines are pretty too, not JSON beside pretty worker lines.
    await writeFile(file, yaml('level: info, format: pretty'));
    sluice.signal('SIGHUP');
    await sluice.waitFor(
      ({ stdout }) => /INFO: config reloaded .*"how":"roll"/.test(stdout),
      'a pretty reload line',
      20_000,
    );
    expect(sluice.jsonLines().filter(primaryReloaded)).toHaveLength(1);

    // and back, at warn: no info line from the primary any more.
    await writeFile(file, yaml('level: warn'));
    sluice.signal('SIGHUP');
    await until(
      async () => (sluice.stdout().includes('reload: starting new workers {') ? true : undefined),
      'the roll',
      20_000,
    );
    await until(
      async () => (await request(`http://127.0.0.1:${port}/`)).statusCode === 200 || undefined,
      'serving',
      5000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(sluice.jsonLines().filter(primaryReloaded)).toHaveLength(1);
    sluice.signal('SIGTERM');
    expect((await sluice.waitForExit(15_000)).code).toBe(0);
  });
});
