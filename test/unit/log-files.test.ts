/** The primary gives the access log file to the workers' user, and nothing else. */
import { existsSync } from 'node:fs';
import { link, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/types.js';
import { prepareWorkerLogFiles } from '../../src/runtime/log-files.js';

const root = process.getuid?.() === 0;
const NOBODY = 65534;

/** The parts of a resolved config prepareWorkerLogFiles reads. */
function config(access: string, user: string | null = 'nobody'): ResolvedConfig {
  return { user, group: null, log: { access, level: 'info', format: 'json' } } as unknown as ResolvedConfig;
}

describe('prepareWorkerLogFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-log-files-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('does nothing for stdout, off, or without user:', () => {
    expect(prepareWorkerLogFiles(config('stdout'))).toBeNull();
    expect(prepareWorkerLogFiles(config('off'))).toBeNull();
    const file = join(dir, 'a', 'access.log');
    expect(prepareWorkerLogFiles(config(file, null))).toBeNull();
    expect(existsSync(file)).toBe(false);
  });

  it.runIf(root)('creates the file and its directory, owned by the user, group kept', async () => {
    const file = join(dir, 'logs', 'access.log');
    expect(prepareWorkerLogFiles(config(file))).toBeNull();
    const st = await stat(file);
    expect(st.uid).toBe(NOBODY);
    expect(st.gid).toBe(0);
    expect(st.mode & 0o777).toBe(0o644);
    // Again (reload, logrotate's reopen): nothing to change.
    expect(prepareWorkerLogFiles(config(file))).toBeNull();
    expect((await stat(file)).uid).toBe(NOBODY);
  });

  it.runIf(root)('never follows a symlink nor gives away a hard-linked file', async () => {
    const secret = join(dir, 'secret');
    await writeFile(secret, 'root only\n', { mode: 0o600 });
    const viaSymlink = join(dir, 'symlinked.log');
    await symlink(secret, viaSymlink);
    expect(prepareWorkerLogFiles(config(viaSymlink))).toMatch(/cannot give the access log .*ELOOP/);
    const viaLink = join(dir, 'linked.log');
    await link(secret, viaLink);
    expect(prepareWorkerLogFiles(config(viaLink))).toMatch(/has 2 hard links/);
    expect((await stat(secret)).uid).toBe(0);
  });

  it.runIf(root)('reports, without throwing, a path it cannot use', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, '');
    expect(prepareWorkerLogFiles(config(join(file, 'access.log')))).toMatch(/cannot give the access log/);
    expect(prepareWorkerLogFiles(config(join(dir, 'x.log'), 'no-such-user-here'))).toMatch(/does not exist/);
  });
});
