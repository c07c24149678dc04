/**
 * Requests without a Host header (HTTP/1.0): nginx gives them to the first server of the address
 * that has the empty name, `server_name ""`, which is also what a server without any server_name
 * has; only without one do they go to the default server. sluice has no name for them: they always
 * go to the default server (host-table.ts). Where the two differ, a warning at the empty name says
 * which server answers them in sluice, and a comment on the server says the same.
 */
import type { ServerPart } from './convert-server.js';
import type { WarningList } from './warnings.js';

/** Warns for each server that nginx gives requests without a Host and sluice does not. */
export function reportNoHostRequests(parts: readonly ServerPart[], warnings: WarningList): void {
  /** sluice's default server of each address: the one marked default, else the first. */
  const defaults = new Map<string, ServerPart>();
  for (const p of parts) {
    for (const l of p.listens) {
      const key = l.plan.address.key;
      const current = defaults.get(key);
      if (current === undefined || (p.isDefault && !current.isDefault)) defaults.set(key, p);
    }
  }
  /** Each server that loses them, the server that gets them instead, and on which addresses. */
  const lost: { readonly from: ServerPart; readonly to: ServerPart; readonly addresses: string[] }[] = [];
  for (const [key, to] of defaults) {
    const from = parts.find(
      (p) => p.noHost !== undefined && p.listens.some((l) => l.plan.address.key === key),
    );
    if (from === undefined || from === to) continue;
    const address = from.listens.find((l) => l.plan.address.key === key)?.plan.text ?? key;
    const entry = lost.find((x) => x.from === from && x.to === to);
    if (entry === undefined) lost.push({ from, to, addresses: [address] });
    else entry.addresses.push(address);
  }
  for (const { from, to, addresses } of lost) {
    const at = from.noHost ?? from.directive;
    const what =
      at === from.directive
        ? 'server: without a server_name (nginx\'s default is server_name ""), nginx'
        : 'server_name "": nginx';
    // Without a name, a server that is no address's default is never picked.
    const unused =
      from.names.length === 0 && ![...defaults.values()].includes(from)
        ? '; with no other name, this server answers no request in sluice'
        : '';
    warnings.add(
      at,
      `${what} answers requests without a Host header (HTTP/1.0) on ${addresses.join(', ')} with this server; sluice has no server name for them and answers them with the default server of the address, ${to.server.name ?? ''} (${to.directive.file}:${to.directive.line})${unused}`,
    );
    from.notes.push({
      path: [],
      text: `nginx answers requests without a Host header here (server_name ""); sluice answers them with the default server ${to.server.name ?? ''}`,
    });
  }
}
