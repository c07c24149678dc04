/**
 * The access log file of workers that run as another user. The primary (root) creates the file
 * and gives it to `user:`, as nginx's master does with its logs, so a worker that dropped root can
 * open it, and open it again after logrotate moved it (SIGUSR1). Without this the file is root's,
 * the worker's open fails with EACCES and its lines go to stdout instead.
 *
 * Done at start, before a reload, and before workers reopen their logs; a failure is reported and
 * serving goes on (the worker then logs to stdout and says why).
 */
import { closeSync, constants, fchownSync, fstatSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ResolvedConfig } from '../config/types.js';
import { makeDirectoriesSync } from '../core/make-directories.js';
import { lookupIds } from './privileges.js';

const { O_APPEND, O_CREAT, O_NOFOLLOW, O_WRONLY } = constants;

/** The mode of a log file sluice creates (the same as a worker's own open). */
const LOG_FILE_MODE = 0o644;

/**
 * Creates `config.log.access` (and its directory) when missing and makes `config.user` its owner.
 * The group is left as it is (logrotate's `create` sets it). Does nothing unless running as root
 * with `user:` set and the access log going to a file. Returns what went wrong, or null.
 */
export function prepareWorkerLogFiles(config: ResolvedConfig): string | null {
  const path = config.log.access;
  if (path === 'stdout' || path === 'off' || config.user === null) return null;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  let fd: number | null = null;
  try {
    const { uid } = lookupIds(config.user, config.group);
    makeDirectoriesSync(dirname(path));
    // Root acting on a path in a directory the worker user may own: never follow a symlink nor
    // give away a file linked elsewhere (CVE-2016-1247, nginx's log directory, was exactly that).
    fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, LOG_FILE_MODE);
    const st = fstatSync(fd);
    if (!st.isFile()) return `the access log ${path} is not a regular file`;
    if (st.uid === uid) return null;
    if (st.nlink !== 1)
      return `the access log ${path} has ${st.nlink} hard links; not giving it to user ${config.user}`;
    fchownSync(fd, uid, -1);
    return null;
  } catch (err) {
    return `cannot give the access log ${path} to user ${config.user}: ${(err as Error).message}`;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
