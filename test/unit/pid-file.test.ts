/** The pid file across reloads: moves, aliases of the same file, undone moves, and a stop. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PidFile } from '../../src/runtime/pid-file.js';

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
});
