/** The user this process runs as, for messages about what it may read: `user www-data`, or `uid 33`. */
import { userInfo } from 'node:os';

/** `user NAME`, or `uid N` when the uid has no name here (not in /etc/passwd). */
export function currentUser(): string {
  try {
    return `user ${userInfo().username}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
