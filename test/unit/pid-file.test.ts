/** The pid file across reloads: moves, aliases of the same file, undone moves, and a stop. */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PidFile } from '../../src/runtime/pid-file.js';

/** Mounts a 16 KiB tmpfs at `dir` (root only); false where that is not allowed. */
function mountSmall(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canMount = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'sluice-mount-'));
  const ok = mountSmall(probe);
  if (ok) execFileSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
})();

describe('PidFile', () => {
  let dir: string;
  let a: string;
  /** `alias` is a symbolic link to the directory `a`'s file is in. */
  let alias: string;
  const warnings: string[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-pid-'));
    mkdirSync(join(dir, 'run'));
    symlinkSync(join(dir, 'run'), join(dir, 'var-run'));
    a = join(dir, 'run', 's.pid');
    alias = join(dir, 'var-run', 's.pid');
    warnings.length = 0;
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const pidFile = () => new PidFile((file, reason) => warnings.push(`${file}: ${reason}`));
  const pidIn = (file: string) => readFileSync(file, 'utf8');

  it('moves to another file: writes it, removes the old one on commit, and the stop removes the new', () => {
    const p = pidFile();
    p.start(a);
    const b = join(dir, 'b.pid');
    p.prepare(b).commit();
    expect(pidIn(b)).toBe(`${process.pid}\n`);
    expect(existsSync(a)).toBe(false);
    p.remove();
    expect(existsSync(b)).toBe(false);
  });

  it('keeps the old file and removes the new one when the move is undone', () => {
    const p = pidFile();
    p.start(a);
    const b = join(dir, 'b.pid');
    p.prepare(b).abort();
    expect(existsSync(b)).toBe(false);
    expect(pidIn(a)).toBe(`${process.pid}\n`);
  });

  it('never removes the file it moves to when the old path names the same file, deleted meanwhile or not', () => {
    const p = pidFile();
    p.start(a);
    p.prepare(alias).commit();
    expect(pidIn(a)).toBe(`${process.pid}\n`);
    // Someone deletes it; a reload back to the first spelling writes it again and keeps it.
    rmSync(a);
    p.prepare(a).commit();
    expect(pidIn(a)).toBe(`${process.pid}\n`);
    // Undoing a move to an alias leaves the file too.
    p.prepare(alias).abort();
    expect(pidIn(a)).toBe(`${process.pid}\n`);
  });

  it('removes the file of a reload that failed before its commit', () => {
    const p = pidFile();
    p.start(a);
    const b = join(dir, 'b.pid');
    p.prepare(b);
    p.abandonPending();
    expect(existsSync(b)).toBe(false);
    expect(existsSync(a)).toBe(true);
    expect(warnings).toEqual([]);
  });

  // A tmpfs needs root: CI runs as root; elsewhere this one is skipped.
  it.runIf(canMount)('leaves neither an empty file nor a temporary one when the disk is full', () => {
    const full = join(dir, 'full');
    mkdirSync(full);
    expect(mountSmall(full)).toBe(true);
    try {
      const kept = join(full, 'kept.pid');
      writeFileSync(kept, '123\n');
      expect(() => writeFileSync(join(full, 'fill'), Buffer.alloc(1024 * 1024))).toThrow(/ENOSPC/);
      const p = pidFile();
      const fresh = join(full, 's.pid');
      expect(() => p.start(fresh)).toThrow(/cannot write pid_file .*ENOSPC/);
      p.start(null);
      expect(() => p.prepare(kept)).toThrow(/ENOSPC/);
      // Before, `s.pid` stayed behind empty ("holding no pid" to `sluice reload`).
      expect(readdirSync(full).sort()).toEqual(['fill', 'kept.pid']);
      expect(pidIn(kept)).toBe('123\n');
    } finally {
      execFileSync('umount', [full]);
    }
  });
});
