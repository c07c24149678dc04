import { lstatSync } from 'node:fs';

/** What is at `path` now (a dangling symlink counts as a file: writing would follow it). */
export function existing(path: string): 'none' | 'file' | 'directory' {
  try {
    return lstatSync(path).isDirectory() ? 'directory' : 'file';
  } catch {
    return 'none';
  }
}
