/**
 * Cross-server checks of listen addresses: sockets that cannot all be bound, more than one
 * default server per address, and a server name claimed twice on one address (nginx's
 * "conflicting server name"). Servers sharing an address exactly is fine: virtual hosts.
 */
import { formatKeyPath } from './key-path.js';
import { IPV6_ANY, listenAddressesOverlap, ownListenerClashes } from './listen-address.js';
import type { PlacedAddress, ServerPlan } from './normalise-server.js';
import type { ProblemCollector } from './problem-collector.js';
import type { ListenAddress } from './types.js';

/** A server plan with its final name, for messages. */
export interface NamedPlan {
  readonly plan: ServerPlan;
  readonly name: string;
}

/** A listener that is not a server's: the admin API or the egress proxy. */
export interface OwnListener {
  readonly placed: PlacedAddress;
  /** What it is, for messages: "the admin API". */
  readonly what: string;
  /** An address to suggest. */
  readonly example: string;
}

/** Runs every listen-address check over all servers, the admin API and the egress proxy. */
export function checkListeners(
  servers: readonly NamedPlan[],
  others: readonly OwnListener[],
  problems: ProblemCollector,
): void {
  const all: { placed: PlacedAddress; owner: NamedPlan }[] = servers.flatMap((s) =>
    s.plan.listen.map((placed) => ({ placed, owner: s })),
  );
  const label = (s: NamedPlan): string => `${formatKeyPath(s.plan.path)} (${JSON.stringify(s.name)})`;

  // Overlaps: a wildcard and a specific address of one family on one port; reported at the later.
  all.forEach(({ placed }, i) => {
    const clash = all.slice(0, i).find((e) => listenAddressesOverlap(e.placed.address, placed.address));
    if (clash === undefined) return;
    problems.error(
      placed.path,
      'SLUICE_E_CONFIG_DUPLICATE_LISTEN',
      `${placed.address.key} overlaps ${clash.placed.address.key} of ${label(clash.owner)}: ${overlapReason(placed.address, clash.placed.address)}, so both cannot be bound`,
      {
        hint: 'write the address the same way everywhere (servers then share it by server_name), or use specific addresses only',
      },
    );
  });

  // The admin API and the egress proxy need addresses of their own, and bind `[::]` dual stack
  // (ownListenerClashes). Port 0 (an ephemeral port, in tests and embedding) never clashes.
  const own = others.filter((o) => o.placed.address.port !== 0);
  own.forEach((o, i) => {
    const mine = o.placed.address;
    const server = all.find((e) => ownListenerClashes(mine, e.placed.address));
    const earlier = own
      .slice(0, i)
      .find((e) => ownListenerClashes(mine, e.placed.address) || ownListenerClashes(e.placed.address, mine));
    const clash =
      server !== undefined
        ? { address: server.placed.address, whose: label(server.owner), dualStack: false }
        : earlier !== undefined
          ? { address: earlier.placed.address, whose: earlier.what, dualStack: true }
          : undefined;
    if (clash === undefined) return;
    const theirs = clash.address;
    if (theirs.key === mine.key) {
      problems.error(
        o.placed.path,
        'SLUICE_E_CONFIG_DUPLICATE_LISTEN',
        `${mine.key} is also a listen address of ${clash.whose}`,
        { hint: `give ${o.what} its own address, e.g. ${o.example}` },
      );
      return;
    }
    // The dual-stack `[::]` of either side, when the other is an IPv4 address.
    const dual =
      mine.host === IPV6_ANY && !theirs.host.includes(':')
        ? o.what
        : clash.dualStack && theirs.host === IPV6_ANY && !mine.host.includes(':')
          ? clash.whose
          : undefined;
    problems.error(
      o.placed.path,
      'SLUICE_E_CONFIG_DUPLICATE_LISTEN',
      `${mine.key} overlaps ${theirs.key} of ${clash.whose}: ${
        dual !== undefined
          ? `${dual} binds [::] dual stack, which takes port ${mine.port} for IPv4 too`
          : overlapReason(mine, theirs)
      }, so both cannot be bound`,
      { hint: `give ${o.what} a port of its own, e.g. ${o.example}` },
    );
  });

  // One socket is either TLS or plain: the servers sharing an address must agree (reported once
  // per address, at the first server that differs from the first one there).
  const firstOn = new Map<string, NamedPlan>();
  for (const { placed, owner } of all) {
    const first = firstOn.get(placed.address.key);
    if (first === undefined) {
      firstOn.set(placed.address.key, owner);
      continue;
    }
    if (first === owner || (first.plan.server.tls === null) === (owner.plan.server.tls === null)) continue;
    const [withTls, plain] = first.plan.server.tls === null ? [owner, first] : [first, owner];
    problems.error(
      placed.path,
      'SLUICE_E_CONFIG_DUPLICATE_LISTEN',
      `${placed.address.key} is shared by ${label(withTls)}, which sets tls, and ${label(plain)}, which does not: one address is either TLS or plain`,
      {
        hint: 'give both servers tls: (each its own certificate, chosen by SNI), or listen on separate ports',
      },
    );
    firstOn.set(placed.address.key, owner);
  }

  // One default server per address.
  const defaults = new Map<string, NamedPlan>();
  for (const s of servers) {
    if (!s.plan.isDefault) continue;
    const taken = s.plan.listen.find((l) => defaults.has(l.address.key));
    for (const l of s.plan.listen) if (!defaults.has(l.address.key)) defaults.set(l.address.key, s);
    if (taken === undefined) continue;
    const first = defaults.get(taken.address.key)!;
    problems.error(
      [...s.plan.path, 'default'],
      'SLUICE_E_CONFIG_DEFAULT_SERVER',
      `${label(first)} is already the default server of ${taken.address.key}`,
    );
  }

  // One server per name and address.
  const claimed = new Map<string, NamedPlan>();
  const reported = new Set<string>();
  for (const s of servers) {
    for (const n of s.plan.names) {
      const conflict = s.plan.listen
        .map((l) => ({ key: l.address.key, owner: claimed.get(`${l.address.key} ${n.name}`) }))
        .find((c) => c.owner !== undefined && c.owner !== s);
      for (const l of s.plan.listen) {
        const id = `${l.address.key} ${n.name}`;
        if (!claimed.has(id)) claimed.set(id, s);
      }
      // ".example.com" stands for two names; one problem at its node is enough.
      if (conflict?.owner === undefined || reported.has(JSON.stringify(n.path))) continue;
      reported.add(JSON.stringify(n.path));
      problems.error(
        n.path,
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `server name ${JSON.stringify(n.name)} on ${conflict.key} is already used by ${label(conflict.owner)}`,
        {
          hint: 'a host name may belong to one server per listen address; merge the two servers or their routes',
        },
      );
    }
  }
}

/** Why two addresses that `listenAddressesOverlap` reports cannot both be bound. */
function overlapReason(a: ListenAddress, b: ListenAddress): string {
  return a.host === 'localhost' || b.host === 'localhost'
    ? 'localhost is bound as its loopback address'
    : `the wildcard address takes port ${a.port} on every interface`;
}
