/**
 * Whether a new config can be swapped into the running workers, or needs new ones (a rolling
 * restart: new workers first, old ones drained). New processes are needed when the process
 * itself changes: the worker count, the user, the log setup, tracing, listener options fixed at
 * creation, or handler code (which may have changed on disk even when the config did not).
 */
import { defaultServers } from '../config/default-servers.js';
import type { ResolvedConfig } from '../config/types.js';
import { handlerModules } from '../server/gateway-tables.js';
import { listenerModeChanges } from '../server/listener-mode.js';

/** `swap`: in place; `roll`: new workers, with the reasons. */
export type ReloadPlan =
  | { readonly kind: 'swap' }
  | { readonly kind: 'roll'; readonly reasons: readonly string[] };

/** Decides how `next` replaces `current`, given the worker counts each resolves to. */
export function planReload(
  current: ResolvedConfig,
  next: ResolvedConfig,
  workers: { current: number; next: number },
): ReloadPlan {
  const reasons: string[] = [];
  if (workers.current !== workers.next) reasons.push(`workers ${workers.current} → ${workers.next}`);
  if (current.user !== next.user || current.group !== next.group) reasons.push('user or group changed');
  if (JSON.stringify(current.log) !== JSON.stringify(next.log)) reasons.push('log settings changed');
  if (handlerModules(next).length > 0) reasons.push('handler code is reloaded in new workers');
  if (current.state.redis !== next.state.redis) reasons.push('state.redis changed');
  // A worker's span exporter is built when it starts.
  if (JSON.stringify(current.tracing) !== JSON.stringify(next.tracing)) reasons.push('tracing changed');
  // A socket cannot turn from plain to TLS (or gain HTTP/2): new workers bind it anew.
  reasons.push(...listenerModeChanges(current, next));
  if (current.egress?.listen.key !== next.egress?.listen.key) reasons.push('egress.listen changed');
  // A listener's max_header and backlog are its default server's, whichever server sets them.
  const before = defaultServers(current);
  for (const [key, server] of defaultServers(next)) {
    const old = before.get(key);
    if (old !== undefined && fixedLimits(old.limits) !== fixedLimits(server.limits))
      reasons.push(`${key}: max_header or backlog changed`);
  }
  return reasons.length === 0 ? { kind: 'swap' } : { kind: 'roll', reasons: [...new Set(reasons)] };
}

function fixedLimits(l: ResolvedConfig['servers'][number]['limits']): string {
  return `${l.maxHeader}/${l.backlog}`;
}
