/**
 * The ids a systemd service runs with, read from this host's /etc/passwd and /etc/group as systemd
 * sets them: uid of User=, gid of Group= (else the user's primary group), and as supplementary
 * groups every group that lists the user as a member (initgroups). Numeric ids are taken as given.
 */
import { readDatabase } from '../../runtime/privileges.js';

/** A service's user and groups; `uid` null when the user is not in /etc/passwd (yet). */
export interface ServiceAccount {
  readonly user: string;
  readonly uid: number | null;
  /** Its primary and supplementary groups. */
  readonly gids: readonly number[];
  /** Names by id, for messages: `root:root`. */
  readonly userNames: ReadonlyMap<number, string>;
  readonly groupNames: ReadonlyMap<number, string>;
}

/** Looks up `user` (and `group`) in `root`etc/passwd and etc/group. */
export function serviceAccount(user: string, group: string | null, root = '/'): ServiceAccount {
  const passwd = readDatabase(`${root}etc/passwd`);
  const groups = readDatabase(`${root}etc/group`);
  const numeric = /^\d+$/.test(user);
  const entry = numeric ? passwd.find((f) => f[2] === user) : passwd.find((f) => f[0] === user);
  const uid = entry !== undefined ? Number(entry[2]) : numeric ? Number(user) : null;
  const name = entry?.[0] ?? user;
  const primary =
    group === null
      ? entry === undefined
        ? null
        : Number(entry[3])
      : /^\d+$/.test(group)
        ? Number(group)
        : idOf(groups.find((g) => g[0] === group)?.[2]);
  const members = groups
    .filter((g) => (g[3] ?? '').split(',').includes(name))
    .map((g) => idOf(g[2]))
    .filter((id) => id !== null);
  return {
    user,
    uid,
    gids: [...new Set([...(primary === null ? [] : [primary]), ...members])],
    userNames: new Map(passwd.flatMap((f) => (idOf(f[2]) === null ? [] : [[idOf(f[2])!, f[0]!]]))),
    groupNames: new Map(groups.flatMap((f) => (idOf(f[2]) === null ? [] : [[idOf(f[2])!, f[0]!]]))),
  };
}

function idOf(text: string | undefined): number | null {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : null;
}
