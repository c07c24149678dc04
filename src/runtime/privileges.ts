/**
 * Dropping root in a worker: supplementary groups, group, then user (in that order: once the
 * user is changed, the group can no longer be). Names are looked up in /etc/passwd and /etc/group
 * (numeric ids work too); the group defaults to the user's primary group.
 */
import { readFileSync } from 'node:fs';
import { SluiceError } from '../errors/sluice-error.js';

/** uid and gid for a user (and optional group) name or number. */
export function lookupIds(user: string, group: string | null, root = '/'): { uid: number; gid: number } {
  const passwd = readDatabase(`${root}etc/passwd`);
  const entry = /^\d+$/.test(user) ? passwd.find((f) => f[2] === user) : passwd.find((f) => f[0] === user);
  if (entry === undefined && !/^\d+$/.test(user)) {
    throw new SluiceError('SLUICE_E_RUNTIME_PRIVILEGES', `user ${JSON.stringify(user)} does not exist`);
  }
  const uid = Number(entry?.[2] ?? user);
  let gid = Number(entry?.[3] ?? uid);
  if (group !== null) {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const g = readDatabase(`${root}etc/group`).find((f) => f[0] === group);
      if (g === undefined)
        throw new SluiceError('SLUICE_E_RUNTIME_PRIVILEGES', `group ${JSON.stringify(group)} does not exist`);
      gid = Number(g[2]);
    }
  }
  return { uid, gid };
}

/**
 * Whether workers started as root keep uid 0: no `user:`, or a user that is root under another
 * name or number (`root`, `0`, a second uid-0 account). A user that does not exist is not root
 * here: that is a config problem of its own (config/check-user.ts).
 */
export function workersKeepRoot(user: string | null, root = '/'): boolean {
  if (user === null) return true;
  try {
    return lookupIds(user, null, root).uid === 0;
  } catch {
    return false;
  }
}

/** The colon-separated records of /etc/passwd or /etc/group (none when it cannot be read). */
export function readDatabase(path: string): string[][] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** Switches this process to `user` (and `group`); a no-op when not running as root. */
export function dropPrivileges(user: string, group: string | null): { uid: number; gid: number } {
  const { uid, gid } = lookupIds(user, group);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { uid, gid };
  try {
    (process as { initgroups?: (user: string | number, group: number) => void }).initgroups?.(
      /^\d+$/.test(user) ? uid : user,
      gid,
    );
    process.setgid?.(gid);
    process.setuid?.(uid);
  } catch (err) {
    throw new SluiceError(
      'SLUICE_E_RUNTIME_PRIVILEGES',
      `cannot switch to user ${user}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (process.getuid() === 0 && uid !== 0) {
    throw new SluiceError('SLUICE_E_RUNTIME_PRIVILEGES', `still root after switching to ${user}`);
  }
  return { uid, gid };
}
