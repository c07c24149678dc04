/**
 * How workers share a listen address. Two ways:
 *
 * - **round-robin** (Node's cluster default): the primary owns the socket, accepts, and hands each
 *   connection to a worker in turn. Works on every Node; a reload is lossless because a connection
 *   handed to a worker that has stopped listening is handed to another.
 * - **reuseport**: every worker binds its own socket with SO_REUSEPORT (Node 22.12+) and the
 *   kernel spreads connections; the primary is out of the accept path. Chosen only when the
 *   kernel migrates a closing socket's queued connections to its siblings
 *   (`net.ipv4.tcp_migrate_req = 1`, Linux 5.14+) — otherwise a reload would reset connections
 *   queued on the old worker's socket — and when the workers can bind by themselves (no port
 *   below 1024 to bind after dropping root).
 */
import { readFileSync } from 'node:fs';
import type { ResolvedConfig } from '../config/types.js';

/** The facts the choice depends on. */
export interface ListenFacts {
  readonly nodeHasReusePort: boolean;
  readonly migrateReq: boolean;
  readonly root: boolean;
}

/** Reads the facts from this process and host. */
export function listenFacts(): ListenFacts {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  let migrateReq = false;
  try {
    migrateReq = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';
  } catch {
    migrateReq = false;
  }
  return {
    nodeHasReusePort: major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12),
    migrateReq,
    root: typeof process.getuid === 'function' && process.getuid() === 0,
  };
}

/** Whether workers should bind with SO_REUSEPORT. */
export function useReusePort(config: ResolvedConfig, facts: ListenFacts): boolean {
  if (!facts.nodeHasReusePort || !facts.migrateReq) return false;
  const privileged = config.servers.some((s) => s.listen.some((a) => a.port > 0 && a.port < 1024));
  return !(privileged && facts.root && config.user !== null);
}
