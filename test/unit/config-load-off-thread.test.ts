import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { loadConfigFileOffThread } from '../../src/config/load-off-thread.js';

const VALID = 'test/fixtures/config/valid';
const INVALID = 'test/fixtures/config/invalid';
const ENV = { SLUICE_TEST_PORT: '8081', SLUICE_TEST_USER: 'alice' };

/** A config of `servers` servers with 4 routes and a 200-CIDR deny list each. */
function bigConfig(servers: number): string {
  const lines = ['servers:'];
  for (let s = 0; s < servers; s++) {
    lines.push(`  - name: s${s}`, '    listen: "127.0.0.1:18080"', `    server_name: ["site${s}.example"]`);
    lines.push(
      `    access: { deny: [${Array.from({ length: 200 }, (_, i) => `"10.${s % 250}.${i}.0/24"`).join(', ')}] }`,
    );
    lines.push('    routes:');
    for (let r = 0; r < 4; r++)
      lines.push(`      - match: { path_prefix: /p${r}/ }`, `        respond: { body: "s${s} r${r}" }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Event-loop turns (1 ms intervals) counted while `load` runs. */
async function turnsDuring(load: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  await load();
  clearInterval(timer);
  return turns;
}

describe('loading a config file on a worker thread (reloads in the primary)', () => {
  it.each(readdirSync(VALID))('%s gives the same resolved config, frozen', async (name) => {
    const here = await loadConfigFile(`${VALID}/${name}`, ENV, { hostUsers: false });
    const there = await loadConfigFileOffThread(`${VALID}/${name}`, ENV);
    expect(there).toEqual(here);
    if (there.ok) {
      expect(Object.isFrozen(there.config)).toBe(true);
      expect(Object.isFrozen(there.config.servers[0])).toBe(true);
    }
  });

  it.each(readdirSync(INVALID).filter((f) => f.endsWith('.yaml')))(
    '%s gives the same problems',
    async (name) => {
      const here = await loadConfigFile(`${INVALID}/${name}`, ENV);
      expect(await loadConfigFileOffThread(`${INVALID}/${name}`, ENV)).toEqual(here);
    },
  );

  it('a missing file is the same problem', async () => {
    expect(await loadConfigFileOffThread('test/fixtures/none.yaml', ENV)).toEqual(
      await loadConfigFile('test/fixtures/none.yaml', ENV),
    );
  });

  it('keeps the calling thread turning while a large file is parsed and checked', async () => {
    const file = join(os.tmpdir(), `sluice-big-${process.pid}.yaml`);
    writeFileSync(file, bigConfig(150));
    const inPlace = await turnsDuring(() => loadConfigFile(file, {}));
    const offThread = await turnsDuring(async () => {
      const result = await loadConfigFileOffThread(file, {});
      expect(result.ok).toBe(true);
    });
    // In place, the parse and the checks are one synchronous run: the loop turns only while the
    // file is read. On a thread it turns throughout.
    expect(offThread).toBeGreaterThan(2 * inPlace + 10);
  }, 30_000);
});

describe('files that are not plain, and loads that do not end', () => {
  it('reads a FIFO in place, as at start: its writer decides when it ends', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'sluice-fifo-'));
    const fifo = join(dir, 'sluice.yaml');
    execFileSync('mkfifo', [fifo]);
    const loading = loadConfigFileOffThread(fifo, {});
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(
      fifo,
      'servers:\n  - listen: "127.0.0.1:18080"\n    routes: [ { respond: { body: x } } ]\n',
    );
    expect((await loading).ok).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops a load past its limit, as a problem', async () => {
    const file = join(os.tmpdir(), `sluice-slow-${process.pid}.yaml`);
    writeFileSync(file, bigConfig(150));
    const result = await loadConfigFileOffThread(file, {}, {}, 1);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.message).toContain('took more than 0.001 s');
    rmSync(file, { force: true });
  });
});
