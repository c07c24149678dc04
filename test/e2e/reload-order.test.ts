/**
 * Reloads whose files take long to check (read off the primary's thread): they are applied in the
 * order asked, whatever each took, and a stop refuses the one still being read.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, killAll, requireBuilt, startConfigured, tempDir } from '../helpers/cli.js';

requireBuilt();

/** One server answering `body`; with `padding`, that many more servers with 200-CIDR deny lists (slow to check). */
function config(port: number, body: string, padding = 0): string {
  const lines = [
    'workers: 1',
    'servers:',
    `  - listen: "127.0.0.1:${port}"`,
    `    routes: [ { respond: { body: "${body}" } } ]`,
  ];
  for (let s = 0; s < padding; s++) {
    lines.push(`  - listen: "127.0.0.1:${port}"`, `    server_name: ["site${s}.example"]`);
    lines.push(
      `    access: { deny: [${Array.from({ length: 200 }, (_, i) => `"10.${s % 250}.${i}.0/24"`).join(', ')}] }`,
    );
    lines.push(`    routes: [ { match: { path_prefix: /p/ }, respond: { body: "site${s}" } } ]`);
  }
  return `${lines.join('\n')}\n`;
}

async function body(port: number): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}/`);
  return res.body.text();
}

describe('reloads of files slow to check (built CLI)', () => {
  afterAll(killAll);

  it('applies them in the order asked: a newer small file is not replaced by an older large one', {
    timeout: 60_000,
  }, async () => {
    const dir = (await tempDir()).path;
    const port = await freePort();
    const sluice = await startConfigured(dir, config(port, 'first'), port);
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, config(port, 'large', 600));
    sluice.signal('SIGHUP');
    // Once the first reload has read the file (its thread starts in about 0.2 s), and well before
    // it has checked it (about 2 s).
    await new Promise((r) => setTimeout(r, 700));
    await writeFile(file, config(port, 'last'));
    sluice.signal('SIGHUP');
    const outcomes = await sluice.waitForJson((l) => l.msg === 'config reloaded', 2, 40_000);
    expect(outcomes).toHaveLength(2);
    expect(await body(port)).toBe('last');
    sluice.signal('SIGTERM');
    expect((await sluice.waitForExit(15_000)).code).toBe(0);
  });

  it('refuses a reload still being read when a stop begins, and says so', { timeout: 60_000 }, async () => {
    const dir = (await tempDir()).path;
    const port = await freePort();
    const sluice = await startConfigured(dir, config(port, 'first'), port);
    await writeFile(join(dir, 'sluice.yaml'), config(port, 'large', 400));
    sluice.signal('SIGHUP');
    await new Promise((r) => setTimeout(r, 100));
    sluice.signal('SIGTERM');
    expect((await sluice.waitForExit(15_000)).code).toBe(0);
    const lines = sluice.jsonLines();
    const refused = lines.find((l) => String(l.msg).startsWith('config reload refused'));
    expect(refused?.problems).toEqual(['sluice is stopping']);
    expect(lines.some((l) => l.msg === 'config reloaded')).toBe(false);
  });
});
