/**
 * A reload that removes a `ban:` rule (the built CLI, 2 workers, no Redis): the bans and strikes it
 * made are lifted, as fail2ban unbans a stopped jail's. They were no longer enforced, yet listed by
 * `/api/bans` and counted by `sluice_bans_active`; and when a later reload brought the rule back,
 * the workers enforced the old bans again and the old strikes counted towards a new ban.
 */
import { writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { request } from 'undici';
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

requireBuilt();

/**
 * One request from `client` on a connection of its own: the workers take connections in turn, so
 * requests in a row reach both.
 */
function get(port: number, path: string, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet(
      { host: '127.0.0.1', port, path, agent: false, headers: { 'x-forwarded-for': client } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    ).on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a reload that removes a ban rule', () => {
  let proc: CliProcess;
  let port: number;
  let admin: number;
  let file: string;

  /** The server's rule and a route's own, both there (`withBans`) or both gone. */
  const config = (withBans: boolean) => `workers: 2
log: { access: off }
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    trusted_proxies: [127.0.0.1]
${withBans ? '    ban: { statuses: [404], max: 2, window: 1m, duration: 10m }\n' : ''}    routes:
      - name: guarded
        match: { path_prefix: /guarded/ }
${withBans ? '        ban: { statuses: [404], max: 2, window: 1m, duration: 10m }\n' : ''}        respond: { status: 404, body: "none here\\n" }
      - match: { path: /ok }
        respond: { status: 200, body: "ok\\n" }
`;

  const bans = async () => {
    const res = await request(`http://127.0.0.1:${admin}/api/bans`);
    return ((await res.body.json()) as { bans: { address: string; scope: string }[] }).bans
      .map((b) => `${b.scope} ${b.address}`)
      .sort();
  };
  const gauge = async () => {
    const res = await request(`http://127.0.0.1:${admin}/metrics`);
    return /^sluice_bans_active (\d+)$/m.exec(await res.body.text())?.[1];
  };
  let reloads = 0;
  const reload = async (withBans: boolean) => {
    await writeFile(file, config(withBans));
    proc.signal('SIGHUP');
    const done = await proc.waitForJson((l) => l.msg === 'config reloaded', ++reloads, 10_000);
    expect(done.at(-1)).toMatchObject({ how: 'swap' });
  };

  beforeAll(async () => {
    const dir = (await tempDir()).path;
    port = await freePort();
    admin = await freePort();
    file = join(dir, 'sluice.yaml');
    await writeFile(file, config(true));
    proc = spawnCli(['start', '-c', file]);
    await waitForPort(port, { proc });
    await proc.waitForJson((l) => l.msg === 'sluice started');
  });

  afterAll(async () => {
    proc?.signal('SIGTERM');
    await proc?.waitForExit(10_000).catch(() => undefined);
    await killAll();
  });

  it('lifts its bans and strikes: gone from /api/bans and sluice_bans_active, and not back with the rule', async () => {
    // Banned by the server's rule, and by the route's; one strike short of a ban for another.
    for (let i = 0; i < 2; i++) expect(await get(port, '/missing', '203.0.113.51')).toBe(404);
    for (let i = 0; i < 2; i++) expect(await get(port, '/guarded/x', '203.0.113.52')).toBe(404);
    expect(await get(port, '/missing', '203.0.113.53')).toBe(404);
    await until(async () => ((await get(port, '/ok', '203.0.113.51')) === 403 ? true : undefined), 'the ban');
    await until(
      async () => ((await get(port, '/guarded/x', '203.0.113.52')) === 403 ? true : undefined),
      'the route ban',
    );
    expect(await bans()).toEqual(['web 203.0.113.51', 'web/guarded 203.0.113.52']);
    expect(await gauge()).toBe('2');
    // The strike of .53 is counted (batches every 250 ms) before the rule goes.
    await sleep(600);

    await reload(false);
    expect(await bans()).toEqual([]);
    expect(await gauge()).toBe('0');
    for (let i = 0; i < 4; i++) {
      expect(await get(port, '/ok', '203.0.113.51')).toBe(200);
      expect(await get(port, '/guarded/x', '203.0.113.52')).toBe(404);
    }
    // No rule, no strikes: none of those 404s counted.
    await sleep(600);
    expect(await bans()).toEqual([]);
    expect(proc.jsonLines().filter((l) => l.msg === 'bans lifted: the reload removed their rule')).toEqual([
      expect.objectContaining({ scope: 'web', lifted: 1, audit: true }),
      expect.objectContaining({ scope: 'web/guarded', lifted: 1, audit: true }),
    ]);

    // The rule back: the old bans stay lifted in every worker, and the old strike counts for nothing.
    // (Two requests to the route, one per worker, are two strikes, counted a batch later.)
    await reload(true);
    for (let i = 0; i < 4; i++) expect(await get(port, '/ok', '203.0.113.51')).toBe(200);
    expect(await get(port, '/guarded/x', '203.0.113.52')).toBe(404);
    expect(await get(port, '/guarded/x', '203.0.113.52')).toBe(404);
    expect(await get(port, '/missing', '203.0.113.53')).toBe(404);
    await sleep(600);
    for (let i = 0; i < 4; i++) expect(await get(port, '/ok', '203.0.113.53')).toBe(200);
    // Counting goes on as before: a second strike bans.
    expect(await get(port, '/missing', '203.0.113.53')).toBe(404);
    await until(
      async () => ((await get(port, '/ok', '203.0.113.53')) === 403 ? true : undefined),
      'a new ban',
    );
    expect(await bans()).toEqual(['web 203.0.113.53', 'web/guarded 203.0.113.52']);
  });
});
