/**
 * What nginx settles between servers at run time and sluice checks when loading (check-listeners.ts):
 *
 * - `listen 127.0.0.1:80` beside another server's `listen 80`: nginx binds the wildcard and sorts
 *   connections by address; sluice cannot bind both, so the specific address becomes the wildcard
 *   (server_name still tells the servers apart), and a loopback one allows loopback clients only;
 * - an address one server uses with `ssl` and another without: nginx makes it TLS for both; sluice
 *   sets TLS per server, so the plain server leaves that address;
 * - two `default_server`s on one address, and one name claimed by two servers on one address
 *   (`.a.com` claims a.com and *.a.com): nginx refuses the first and ignores the second name; the
 *   later server gives them up;
 * - a server that is the `default_server` of some of its listens only: sluice sets `default` per
 *   server, nginx per listen, so where another server is nginx's default the listens go to a copy
 *   of the server that is not the default (nothing is lost: no warning).
 *
 * Each change that undoes what nginx does is a warning at that nginx line. Then every server gets
 * its `listen`, `default` and a unique `name`, and where requests without a Host go differently is
 * a warning (no-host-requests.ts).
 */
import { parseListenAddress } from '../../config/listen-address.js';
import type { ServerPart } from './convert-server.js';
import { loopbackBlock, onlyFrom } from './loopback-access.js';
import { reportNoHostRequests } from './no-host-requests.js';
import type { WarningList } from './warnings.js';

/** Settles the parts against one another; returns those left with an address. */
export function reconcileServers(given: readonly ServerPart[], warnings: WarningList): ServerPart[] {
  const parts = widenOverlaps(given, warnings);
  settleTls(parts, warnings);
  const kept = parts.filter((p) => {
    if (p.listens.length > 0) return true;
    warnings.add(
      p.directive,
      'server: no listen address is left for it in sluice (see the warnings above); left out',
    );
    return false;
  });
  const split = splitDefaults(kept);
  settleDefaults(split, warnings);
  settleNames(split, warnings);
  nameServers(split);
  reportNoHostRequests(split, warnings);
  return split;
}

/**
 * Widens a specific address beside another server's wildcard of the same port. A loopback one
 * keeps its restriction as access rules (loopback-access.ts): in a part of its own when the server
 * also listens elsewhere, so only its loopback addresses are restricted.
 */
function widenOverlaps(parts: readonly ServerPart[], warnings: WarningList): ServerPart[] {
  const all = parts.flatMap((p) => p.listens);
  const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';
  const out: ServerPart[] = [];
  for (const part of parts) {
    const next: typeof part.listens = [];
    /** Widened loopback listens, with the block their clients come from. */
    const local: { listen: (typeof part.listens)[number]; block: string; said: string }[] = [];
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
          const block = loopbackBlock(host);
          const said = `listen ${l.plan.text}: another server listens on ${wildcard.plan.text}, and sluice cannot bind both; this server listens on ${text} too (server_name still picks it)`;
          l.plan = { ...l.plan, text, address };
          if (block !== null) local.push({ listen: l, block, said });
          else if (l.directive !== null) warnings.add(l.directive, `${said}, on every address of the port`);
        }
      }
      if (!next.some((o) => o.plan.address.key === l.plan.address.key)) next.push(l);
    }
    // A loopback listen whose wildcard the server also has serves everyone already.
    const key = (l: (typeof part.listens)[number]): string => l.plan.address.key;
    const openKeys = new Set(part.listens.filter((l) => !local.some((x) => x.listen === l)).map(key));
    const restrictedKeys = new Set(local.map((x) => key(x.listen)).filter((k) => !openKeys.has(k)));
    for (const x of local) {
      if (x.listen.directive === null) continue;
      warnings.add(
        x.listen.directive,
        restrictedKeys.has(key(x.listen))
          ? `${x.said}, and allows loopback clients (${x.block}) only, as nginx's address did`
          : x.said,
      );
    }
    const open = next.filter((l) => !restrictedKeys.has(key(l)));
    const restricted = next.filter((l) => restrictedKeys.has(key(l)));
    if (restricted.length === 0) {
      part.listens = next;
      out.push(part);
      continue;
    }
    const blocks = [...new Set(local.filter((x) => restrictedKeys.has(key(x.listen))).map((x) => x.block))];
    if (open.length === 0) {
      part.listens = next;
      restrict(part, blocks);
      out.push(part);
      continue;
    }
    part.listens = open;
    out.push(part);
    const copy = copyOf(part, restricted, '-local');
    restrict(copy, blocks);
    out.push(copy);
  }
  return out;
}

/** Allows only clients of `blocks` on every route of the part, and says why in a comment. */
function restrict(part: ServerPart, blocks: readonly string[]): void {
  const s = part.server;
  s.access = onlyFrom(s.access, blocks);
  for (const route of s.routes) if (route.access !== undefined) route.access = onlyFrom(route.access, blocks);
  part.notes.push({
    path: ['access'],
    text: `nginx binds this server to a loopback address only; sluice listens on the port's wildcard (another server does), so only loopback clients (${blocks.join(', ')}) are allowed`,
  });
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

/**
 * A server that is the `default_server` of some of its listens only: sluice makes a server the
 * default of all its addresses, so on an address where nginx's default is another server (its
 * `default_server`, else its first server) the server's listens go to a copy of it that is not
 * the default, `NAME-nondefault`. Where it is nginx's default anyway (the first server there), it
 * keeps them.
 */
function splitDefaults(parts: readonly ServerPart[]): ServerPart[] {
  // nginx's default of each address: its default_server, else its first server.
  const nginxDefault = new Map<string, ServerPart>();
  const keyed = parts.flatMap((p) => p.listens.map((l) => ({ p, key: l.plan.address.key, l })));
  for (const { p, key, l } of keyed) if (l.plan.isDefault && !nginxDefault.has(key)) nginxDefault.set(key, p);
  for (const { p, key } of keyed) if (!nginxDefault.has(key)) nginxDefault.set(key, p);
  const out: ServerPart[] = [];
  for (const p of parts) {
    out.push(p);
    if (!p.isDefault) continue;
    const others = p.listens.filter((l) => !l.plan.isDefault && nginxDefault.get(l.plan.address.key) !== p);
    if (others.length === 0) continue;
    p.listens = p.listens.filter((l) => !others.includes(l));
    const copy = copyOf(p, others, '-nondefault');
    copy.isDefault = false;
    copy.notes.push({
      path: [],
      text: 'the listens of the same nginx server that are not its default_server: sluice makes a server the default of all its addresses, nginx per listen',
    });
    out.push(copy);
  }
  return out;
}

/** The part on other listens, named NAME`suffix`: the same server, its own copy of everything. */
function copyOf(part: ServerPart, listens: ServerPart['listens'], suffix: string): ServerPart {
  return {
    ...part,
    server: structuredClone(part.server),
    listens,
    names: [...part.names],
    notes: structuredClone(part.notes),
    nameSuffix: `${part.nameSuffix}${suffix}`,
  };
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
  /** By address and claimed name: the server, and its name that claims it (`.a.com` for `*.a.com`). */
  const claimed = new Map<string, { readonly part: ServerPart; readonly name: string }>();
  for (const p of parts) {
    p.names = p.names.filter((n) => {
      const keys = hostKeys(n.name);
      const clash = p.listens
        .flatMap((l) => keys.map((k) => claimed.get(`${l.plan.address.key} ${k}`)))
        .find((c) => c !== undefined && c.part !== p);
      if (clash !== undefined) {
        const which = clash.name === n.name ? 'this name' : clash.name;
        warnings.add(
          n.directive,
          `server_name ${n.name}: the server at ${clash.part.directive.file}:${clash.part.directive.line} has ${which} on the same address; nginx ignores it here too`,
        );
        return false;
      }
      for (const l of p.listens) {
        for (const k of keys) claimed.set(`${l.plan.address.key} ${k}`, { part: p, name: n.name });
      }
      return true;
    });
  }
}

/**
 * The names a server name claims: ".example.com" is example.com and *.example.com, to nginx and
 * to sluice, so it clashes with either; nginx then ignores the later name whole.
 */
function hostKeys(name: string): string[] {
  return name.startsWith('.') ? [name.slice(1), `*${name}`] : [name];
}

/**
 * Writes listen, default and server_name, and names each server after its first plain
 * server_name (`server<N>` without one, N its place among the nginx servers); `-2`, `-3` keep
 * the names unique. A name a server_name gives is its server's, the first to have it: the names
 * sluice makes (a copy's `NAME-tls` or `NAME-nondefault`, `server<N>`, a `-2`) never take it.
 */
function nameServers(parts: readonly ServerPart[]): void {
  const blocks = [...new Set(parts.map((p) => p.directive))];
  const named = parts.map((p) => {
    // ".example.org" stands for example.org and *.example.org: the server is example.org.
    const plain = p.names.find((n) => !n.name.startsWith('~'))?.name.replace(/^\./, '');
    const base = `${plain ?? `server${blocks.indexOf(p.directive) + 1}`}${p.nameSuffix}`;
    return { part: p, base, written: plain !== undefined && p.nameSuffix === '' };
  });
  const written = new Set(named.filter((n) => n.written).map((n) => n.base));
  const taken = new Set<string>();
  const free = (name: string): boolean => !taken.has(name) && !written.has(name);
  for (const { part: p, base, written: isWritten } of named) {
    const s = p.server;
    s.listen = p.listens.map((l) => l.plan.text);
    if (p.isDefault) s.default = true;
    if (p.names.length > 0) s.server_name = p.names.map((n) => n.name);
    else delete s.server_name;
    let name = base;
    if (!isWritten || taken.has(name)) {
      // A TLS server named like a plain one (the usual port 80 and port 443 pair) is NAME-tls.
      if (taken.has(name) && p.tls && p.nameSuffix === '') name = `${base}-tls`;
      for (let n = 2; !free(name); n++) name = `${base}-${n}`;
    }
    taken.add(name);
    s.name = name;
  }
}
