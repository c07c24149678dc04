/**
 * The default server of each listen address: the one marked `default: true` among the servers
 * listening there, else the first listed, as the host table picks it. Its limits are the
 * address's (`max_header`, `backlog`, `max_connections`): they apply before the Host header is
 * known, as in nginx.
 */
import type { ResolvedConfig, ResolvedServer } from './types.js';

export function defaultServers(config: ResolvedConfig): Map<string, ResolvedServer> {
  const chosen = new Map<string, ResolvedServer>();
  for (const server of config.servers) {
    for (const { key } of server.listen) {
      if (!chosen.has(key) || (server.default && !chosen.get(key)!.default)) chosen.set(key, server);
    }
  }
  return chosen;
}
