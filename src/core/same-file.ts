/**
 * Whether two paths name one file: links resolved, also for a file that does not exist (yet, or
 * any more) in a directory reached through a link (`/var/run/x.pid` and `/run/x.pid`).
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export function sameFile(a: string, b: string): boolean {
  return a === b || realFile(a) === realFile(b);
}

function realFile(file: string): string {
  try {
    return realpathSync.native(file);
  } catch {
    // No such file: its directory's real path, else the path as given.
  }
  try {
    return join(realpathSync.native(dirname(resolve(file))), basename(file));
  } catch {
    return resolve(file);
  }
}
