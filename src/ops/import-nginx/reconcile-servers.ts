/**
 * What nginx settles between servers at run time and sluice checks when loading (check-listeners.ts):
 *
 * - `listen 127.0.0.1:80` beside another server's `listen 80`: nginx binds the wildcard and sorts
 *   connections by address; sluice cannot bind both, so the specific address becomes the wildcard
 *   (server_name still tells the servers apart);
 * - an address one server uses with `ssl` and another without: nginx makes it TLS for both; sluice
 *   sets TLS per server, so the plain server leaves that address;
 * - two `default_server`s on one address, and one name claimed by two servers on one address:
 *   nginx refuses the first and ignores the second name; the later server gives them up.
 *
 * Each change is a warning at the nginx line it undoes. Then every server gets its `listen`,
 * `default` and a unique `name`.
 */
import { parseListenAddress } from '../../config/listen-address.js';
import type { ServerPart } from './convert-server.js';
import type { WarningList } from './warnings.js';

/** Settles the parts against one another; returns those left with an address. */
export function reconcileServers(parts: readonly ServerPart[], warnings: WarningList): ServerPart[] {
  widenOverlaps(parts, warnings);
  settleTls(parts, warnings);
  const kept = parts.filter((p) => {
    if (p.listens.length > 0) return true;
    warnings.add(
      p.directive,
      'server: no listen address is left for it in sluice (see the warnings above); left out',
    );
    return false;
  });
  settleDefaults(kept, warnings);
  settleNames(kept, warnings);
  nameServers(kept);
  return kept;
}

function widenOverlaps(parts: readonly ServerPart[], warnings: WarningList): void {
  const all = parts.flatMap((p) => p.listens);
  const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';
  for (const part of parts) {
    const next: typeof part.listens = [];
    for (const l of part.listens) {
      const { host, port } = l.plan.address;
      const v6 = host.includes(':');
      const wildcard = all.find(
        (o) =>
          o.plan.address.port === port &&
          isWildcard(o.plan.address.host) &&
          o.plan.address.host.includes(':') === v6,
      );
      if (!isWildcard(host) && wildcard !== undefined) {
        const text = v6 ? `[::]:${port}` : `:${port}`;
        const address = parseListenAddress(text);
        if (!('error' in address)) {
          if (l.directive !== null) {
            warnings.add(
              l.directive,
              `listen ${l.plan.text}: another server listens on ${wildcard.plan.text}, and sluice cannot bind both; this server listens on ${text} too (server_name still picks it)`,
            );
          }
          l.plan = { ...l.plan, text, address };
        }
      }
      if (!next.some((o) => o.plan.address.key === l.plan.address.key)) next.push(l);
    }
    part.listens = next;
  }
}

function settleTls(parts: readonly ServerPart[], warnings: WarningList): void {
  const tlsAddresses = new Map<string, ServerPart>();
  for (const p of parts) {
    if (!p.tls) continue;
    for (const l of p.listens)
      if (!tlsAddresses.has(l.plan.address.key)) tlsAddresses.set(l.plan.address.key, p);
  }
  for (const p of parts) {
    if (p.tls) continue;
    p.listens = p.listens.filter((l) => {
      const owner = tlsAddresses.get(l.plan.address.key);
      if (owner === undefined) return true;
      warnings.add(
        l.directive ?? p.directive,
        `listen ${l.plan.text}: the server at ${owner.directive.file}:${owner.directive.line} makes this a TLS address (listen ... ssl); sluice sets TLS per server, so this server does not listen there (add ssl to this listen)`,
      );
      return false;
    });
  }
}

function settleDefaults(parts: readonly ServerPart[], warnings: WarningList): void {
  const owners = new Map<string, ServerPart>();
  for (const p of parts) {
    if (!p.isDefault) continue;
    const taken = p.listens.find((l) => owners.has(l.plan.address.key));
    if (taken !== undefined) {
      const first = owners.get(taken.plan.address.key)!;
      warnings.add(
        taken.directive ?? p.directive,
        `default_server: the server at ${first.directive.file}:${first.directive.line} is already the default of ${taken.plan.text}; nginx refuses this too, so this one is not`,
      );
      p.isDefault = false;
      continue;
    }
    for (const l of p.listens) owners.set(l.plan.address.key, p);
  }
}

function settleNames(parts: readonly ServerPart[], warnings: WarningList): void {
  const claimed = new Map<string, ServerPart>();
  for (const p of parts) {
    p.names = p.names.filter((n) => {
      const clash = p.listens
        .map((l) => claimed.get(`${l.plan.address.key} ${n.name}`))
        .find((o) => o !== undefined && o !== p);
      if (clash !== undefined) {
        warnings.add(
          n.directive,
          `server_name ${n.name}: the server at ${clash.directive.file}:${clash.directive.line} has this name on the same address; nginx ignores it here too`,
        );
        return false;
      }
      for (const l of p.listens) claimed.set(`${l.plan.address.key} ${n.name}`, p);
      return true;
    });
  }
}

/**
 * Writes listen, default and server_name, and names each server after its first plain
 * server_name (`server<N>` without one, N its place among the nginx servers); `-2`, `-3` keep
 * the names unique.
 */
function nameServers(parts: readonly ServerPart[]): void {
  const taken = new Set<string>();
  const blocks = [...new Set(parts.map((p) => p.directive))];
  for (const p of parts) {
    const s = p.server;
    s.listen = p.listens.map((l) => l.plan.text);
    if (p.isDefault) s.default = true;
    if (p.names.length > 0) s.server_name = p.names.map((n) => n.name);
    else delete s.server_name;
    // ".example.org" stands for example.org and *.example.org: the server is example.org.
    const plain = p.names.find((n) => !n.name.startsWith('~'))?.name.replace(/^\./, '');
    const base = `${plain ?? `server${blocks.indexOf(p.directive) + 1}`}${p.nameSuffix}`;
    let name = base;
    // A TLS server named like a plain one (the usual port 80 and port 443 pair) is NAME-tls.
    if (taken.has(name) && p.tls && p.nameSuffix === '') name = `${base}-tls`;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    s.name = name;
  }
}
