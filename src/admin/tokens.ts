/**
 * Bearer tokens of the admin API: the presented token is hashed (SHA-256) and compared with every
 * configured hash in constant time — all of them, whatever matches first — so neither the content
 * nor the position of a valid token leaks through timing. Tokens are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ResolvedToken } from '../config/types.js';
import type { Caller } from './rbac.js';

/** The caller behind an Authorization header value. */
export function identify(
  authorization: string | undefined,
  tokens: readonly ResolvedToken[],
): { caller: Caller; token: ResolvedToken | null } {
  if (authorization === undefined) return { caller: 'no-token', token: null };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (m === null) return { caller: 'unknown-token', token: null };
  const presented = createHash('sha256').update(m[1]!).digest();
  let found: ResolvedToken | null = null;
  for (const t of tokens) {
    const match = timingSafeEqual(presented, Buffer.from(t.sha256, 'hex'));
    if (match && found === null) found = t;
  }
  return found === null
    ? { caller: 'unknown-token', token: null }
    : { caller: { role: found.role }, token: found };
}
