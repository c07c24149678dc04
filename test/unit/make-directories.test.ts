/** `makeDirectories`: mkdir -p one directory at a time, which ends on procfs where Node's does not. */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDirectories, makeDirectoriesSync } from '../../src/core/make-directories.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-mkdir-'));
  dirs.push(dir);
  return dir;
}

describe.each([
  ['makeDirectories', makeDirectories],
  ['makeDirectoriesSync', async (dir: string) => makeDirectoriesSync(dir)],
])('%s', (_name, make) => {
  it('creates the missing directories, and is done when they exist', async () => {
    const root = scratch();
    const deep = join(root, 'a', 'b', 'c');
    await make(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    await make(deep);
    await make(root);
  });

  it('throws what mkdir says: a file in the way, a kernel file system', async () => {
    const root = scratch();
    writeFileSync(join(root, 'file'), '');
    await expect(make(join(root, 'file', 'x'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(make(join(root, 'file'))).rejects.toMatchObject({ code: 'EEXIST' });
    // Node's recursive mkdir spins here for ever.
    await expect(make('/proc/sluice-mkdir-test/x')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
