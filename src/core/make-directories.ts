/**
 * `mkdir -p` one directory at a time. Node's own recursive mkdir never returns on procfs
 * (`mkdir('/proc/x', { recursive: true })` spins: the kernel answers ENOENT for a directory whose
 * parent exists, and Node creates the parent and retries the child for ever); one non-recursive
 * mkdir per missing directory, from the nearest one that exists, ends with the kernel's own error
 * instead (ENOENT under /proc, EPERM under /sys).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * The directories to create for `dir`, outermost first: those up to the nearest that exists, and
 * `dir` itself when it exists (a file there is then mkdir's EEXIST, as for `mkdir -p`).
 */
function missing(dir: string): string[] {
  const out: string[] = [];
  for (let at = resolve(dir); !existsSync(at); at = dirname(at)) {
    out.unshift(at);
    if (dirname(at) === at) break;
  }
  return out.length === 0 ? [resolve(dir)] : out;
}

/** Whether an mkdir error is one that another process (or a race) made harmless: the directory is there. */
function madeMeanwhile(err: unknown, isDirectory: () => boolean): boolean {
  if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  try {
    return isDirectory();
  } catch {
    return false;
  }
}

/** Creates `dir` and its missing parents; throws the first mkdir error. */
export function makeDirectoriesSync(dir: string): void {
  for (const d of missing(dir)) {
    try {
      mkdirSync(d);
    } catch (err) {
      if (!madeMeanwhile(err, () => statSync(d).isDirectory())) throw err;
    }
  }
}

/** Creates `dir` and its missing parents; rejects with the first mkdir error. */
export async function makeDirectories(dir: string): Promise<void> {
  for (const d of missing(dir)) {
    try {
      await mkdir(d);
    } catch (err) {
      const isDir = await stat(d).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (!madeMeanwhile(err, () => isDir)) throw err;
    }
  }
}
