/**
 * nginx `server { }` → one sluice server, or two when it listens both plain and with TLS (sluice
 * sets `tls:` per server, nginx per `listen`): the plain half and the TLS half share the routes.
 *
 *   listen ADDR [ssl] [http2] [default_server] [backlog=N] → listen, tls, http2, default, limits.backlog
 *   server_name a.com *.a.com ~^re$                        → server_name (`_` and "" are dropped;
 *                                                            "" is noted, see no-host-server.ts)
 *   ssl_certificate(_key), ssl_protocols,
 *   ssl_client_certificate, ssl_verify_client              → tls
 *   client_max_body_size, client_header_timeout,
 *   send_timeout, keepalive_timeout, keepalive_requests    → limits
 *   set_real_ip_from + real_ip_header X-Forwarded-For     → trusted_proxies
 *   allow/deny, limit_req (server or http level)           → access, rate_limit
 *   return / redirecting rewrite at server level          → one route for every path
 *   location                                               → routes (convert-location.ts)
 *
 * nginx checks regex locations before the longest prefix unless that prefix is `^~`, level by
 * level of its location tree; sluice always checks regexes first, over a flat list. So regex
 * routes get lookaheads (location-tree.ts), and the two orders agree.
 */
import type { NginxDirective } from './ast.js';
import { convertBodySize } from './convert-body-size.js';
import type { ConvertContext, ServerContext } from './convert-context.js';
import { accessAt, rateLimitAt } from './convert-guards.js';
import { convertHostIfs, type HostRedirect } from './convert-host-if.js';
import {
  convertLocation,
  RETURN_BEFORE_ACCESS,
  RETURN_BEFORE_RATE,
  type RoutePlan,
} from './convert-location.js';
import { firstReturn } from './convert-return.js';
import { convertSchemeIf } from './convert-scheme-if.js';
import { FOREIGN_CONTENT, IF_REASON } from './directives.js';
import { encodePath, pathSource } from './encoded-path.js';
import { ipv4Side, type ListenPlan, parseListen } from './listen.js';
import { parseLocation } from './location-match.js';
import { flattenLocations, type LocationNode } from './location-tree.js';
import { namedFile, type PathContext } from './output-path.js';
import { refusingIf, refusingIfWarning } from './refusing-if.js';
import { translateRegex } from './regex.js';
import { childScope, nearest, nearestList, own, type Scope } from './scope.js';
import type { SluiceLimits, SluiceRoute, SluiceServer, SluiceTls, YamlNote } from './sluice-config.js';
import { parseNginxTime, toSluiceDuration } from './units.js';
import { hasVariables } from './variables.js';

/** A converted listen, with the directive it came from. */
export interface PlacedListen {
  plan: ListenPlan;
  readonly directive: NginxDirective | null;
}

/** One sluice server made from an nginx server block. */
export interface ServerPart {
  readonly server: SluiceServer;
  listens: PlacedListen[];
  /** Server names as written into `server_name`, with the directive they came from. */
  names: { readonly name: string; readonly directive: NginxDirective }[];
  /**
   * Where nginx's empty name (requests without a Host) was given to the server: its `server_name
   * ""`, or the server block when it has no server_name (`""` is nginx's default then).
   */
  readonly noHost: NginxDirective | undefined;
  isDefault: boolean;
  readonly tls: boolean;
  /** Comments, at paths relative to the server's node. */
  readonly notes: YamlNote[];
  readonly directive: NginxDirective;
  /** `-tls` for the TLS half of a split server. */
  readonly nameSuffix: string;
}

/** Converts one `server { }`; `[]` (with a warning) when nothing of it can be served by sluice. */
export function convertServer(
  d: NginxDirective,
  http: Scope,
  ctx: ConvertContext,
  paths: PathContext,
): ServerPart[] {
  const { warnings } = ctx;
  const scope = childScope('server', d.block ?? [], http);
  const notes: YamlNote[] = [];

  const listens = readListens(scope, ctx);
  if (listens.length === 0) {
    warnings.add(d, 'server: none of its listen addresses can be carried over; the server is left out');
    return [];
  }
  if (listens[0]?.directive === null) {
    notes.push({ path: ['listen'], text: 'nginx listens on *:80 when a server has no listen' });
  }
  const names = readServerNames(scope, ctx);
  const nameLists = own(scope, 'server_name');
  const noHost = nameLists.length === 0 ? d : nameLists.find((x) => x.args.includes(''));
  const serverName = names.find((n) => !n.name.startsWith('~') && !n.name.includes('*'))?.name;
  const named = new Map<string, NginxDirective>();
  for (const x of scope.directives) {
    if (x.name === 'location' && x.block !== null && x.args[0]?.startsWith('@')) named.set(x.args[0], x);
  }
  const ports = new Set(listens.map((l) => l.plan.address.port));
  const serverPort = ports.size === 1 ? [...ports][0] : undefined;
  const server: ServerContext = { ctx, serverName, serverPort, named, usedNamed: new Set(), paths };

  const sslOn = nearest(scope, 'ssl')?.args[0] === 'on';
  const wantsTls = sslOn || listens.some((l) => l.plan.ssl);
  const tls = readTls(scope, ctx, paths, wantsTls);
  if (wantsTls && tls === undefined) {
    warnings.add(
      listens.find((l) => l.plan.ssl)?.directive ?? d,
      'listen ... ssl without a usable ssl_certificate and ssl_certificate_key: nginx refuses this too; these addresses are served without TLS',
    );
  }

  const schemeRedirect = convertSchemeIf(scope, server);
  const hostRedirect = convertHostIfs(
    scope,
    server,
    names.map((n) => n.name),
    IF_REASON,
  );
  if (hostRedirect?.route.redirect !== undefined && accessAt(scope, warnings) !== undefined) {
    for (const x of hostRedirect.directives) warnings.add(x, RETURN_BEFORE_ACCESS);
  }
  const routes = convertRoutes(scope, server, d, notes, hostRedirect?.directives);
  if (schemeRedirect?.route.redirect !== undefined && accessAt(scope, warnings) !== undefined) {
    warnings.add(schemeRedirect.directive, RETURN_BEFORE_ACCESS);
  }

  const base: SluiceServer = { listen: [], routes: [] };
  if (names.length > 0) base.server_name = names.map((n) => n.name);
  const limits = readLimits(scope, ctx, notes);
  const backlog = Math.max(0, ...listens.map((l) => l.plan.backlog ?? 0));
  if (backlog > 0) limits.backlog = backlog;
  if (Object.keys(limits).length > 0) base.limits = limits;
  const trusted = readTrustedProxies(scope, ctx);
  if (trusted.length > 0) base.trusted_proxies = trusted;
  const access = accessAt(scope, warnings);
  if (access !== undefined && access.level !== 'location') base.access = access.value;
  const rate = rateLimitAt(scope, ctx);
  if (rate !== undefined && rate.level !== 'location') base.rate_limit = rate.value;
  // `on` is sluice's default too.
  const merge = nearest(scope, 'merge_slashes');
  if (merge !== undefined) {
    if (merge.args[0] === 'off') base.merge_slashes = false;
    else if (merge.args[0] !== 'on')
      warnings.add(merge, `merge_slashes ${merge.args.join(' ')}: not on or off; not carried over`);
  }
  base.routes = routes;

  const http2Directive = nearest(scope, 'http2');
  const http2 = listens.some((l) => l.plan.http2) || http2Directive?.args[0] === 'on';

  const tlsListens = tls === undefined ? [] : listens.filter((l) => l.plan.ssl || sslOn);
  const plainListens = listens.filter((l) => !tlsListens.includes(l));
  if (http2 && tlsListens.length === 0) {
    const at = http2Directive ?? listens.find((l) => l.plan.http2)?.directive ?? d;
    warnings.add(
      at,
      'http2 without TLS (h2c): sluice serves HTTP/2 on TLS listeners only; HTTP/1.1 is served',
    );
  }

  const part = (chosen: PlacedListen[], withTls: boolean, nameSuffix: string): ServerPart => {
    // A default of some listens only is settled between servers (reconcile-servers.ts).
    const isDefault = chosen.some((l) => l.plan.isDefault);
    const s: SluiceServer = structuredClone(base);
    let partNotes = structuredClone(notes);
    if (withTls && tls !== undefined) {
      s.tls = structuredClone(tls);
      if (http2) s.http2 = true;
    } else if (schemeRedirect !== undefined) {
      // `if ($scheme = http)` holds on every plain address: its return answers every path there.
      s.routes = [structuredClone(schemeRedirect.route)];
      partNotes = partNotes.filter((n) => n.path[0] !== 'routes');
      partNotes.push({ path: ['routes', 0], text: schemeRedirect.note });
    }
    return {
      server: s,
      listens: chosen,
      names: [...names],
      noHost,
      isDefault,
      tls: withTls,
      notes: partNotes,
      directive: d,
      nameSuffix,
    };
  };
  // On the plain addresses an `if ($scheme = http)` redirect answers every request already.
  const plainHosts = schemeRedirect === undefined ? hostRedirect : undefined;
  if (tlsListens.length === 0) return byHost(part(plainListens, false, ''), plainHosts);
  if (plainListens.length === 0) return byHost(part(tlsListens, true, ''), hostRedirect);
  const [first] = tlsListens;
  const plain = part(plainListens, false, '');
  const secure = part(tlsListens, true, '-tls');
  secure.notes.unshift({
    path: [],
    text: `the ${first?.plan.text ?? 'TLS'} half of the same nginx server: sluice sets tls per server, nginx per listen`,
  });
  return [...byHost(plain, plainHosts), ...byHost(secure, hostRedirect)];
}

/**
 * A part whose `if ($host = NAME)`s were carried over, as two: first the rest of it (its other
 * names and its default, so it stays the first server of its addresses, as nginx's implicit
 * default), then the tested names answering every path with the `return`.
 */
function byHost(p: ServerPart, hostRedirect: HostRedirect | undefined): ServerPart[] {
  if (hostRedirect === undefined) return [p];
  const tested = (n: { readonly name: string }): boolean => hostRedirect.names.has(n.name.toLowerCase());
  const redirect: ServerPart = {
    ...p,
    server: { ...structuredClone(p.server), routes: [structuredClone(hostRedirect.route)] },
    listens: p.listens.map((l) => ({ ...l })),
    names: p.names.filter(tested),
    isDefault: false,
    // The tested names only: requests without a Host stay with the rest of the server.
    noHost: undefined,
    notes: [
      ...p.notes.filter((n) => n.path[0] !== 'routes'),
      { path: ['routes', 0], text: hostRedirect.note },
    ],
  };
  return [{ ...p, names: p.names.filter((n) => !tested(n)) }, redirect];
}

/** The server's listens; nginx's `*:80` when it has none. */
function readListens(scope: Scope, ctx: ConvertContext): PlacedListen[] {
  const out: PlacedListen[] = [];
  const written = own(scope, 'listen');
  if (written.length === 0) {
    const plan = parseListen(['80']);
    if (!('error' in plan)) out.push({ plan, directive: null });
    return out;
  }
  for (const l of written) {
    // A quic listen is a UDP socket for HTTP/3, beside the TCP listen of the same address (nginx's
    // own layout): read as TCP, it took that address and left the ssl listen out as a duplicate,
    // so HTTPS's port served plain HTTP.
    if (l.args.slice(1).includes('quic')) {
      ctx.warnings.add(
        l,
        `listen ${l.args.join(' ')}: HTTP/3 (QUIC, over UDP) is not carried over; sluice serves HTTP/1.1 and HTTP/2 over TCP on the server's other listens`,
      );
      continue;
    }
    const plan = parseListen(l.args);
    if ('error' in plan) {
      ctx.warnings.add(l, `listen ${l.args.join(' ')}: ${plan.error}; not carried over`);
      continue;
    }
    for (const p of plan.dropped) {
      ctx.warnings.add(l, `listen ${plan.text}: parameter ${p} is not carried over`);
    }
    const twin = out.find((o) => o.plan.address.key === plan.address.key);
    if (twin !== undefined) {
      ctx.warnings.add(l, `listen ${plan.text} is already listed in this server; nginx refuses this too`);
      continue;
    }
    out.push({ plan, directive: l });
    const ipv4 = plan.dualStack ? ipv4Side(plan) : null;
    // A `listen 80` of its own beside it would make nginx fail to bind; one entry does for sluice.
    if (ipv4 !== null && !out.some((o) => o.plan.address.key === ipv4.address.key)) {
      out.push({ plan: ipv4, directive: l });
    }
  }
  return out;
}

/** server_name entries sluice can match, with a warning for each it cannot. */
function readServerNames(
  scope: Scope,
  ctx: ConvertContext,
): { readonly name: string; readonly directive: NginxDirective }[] {
  const out: { name: string; directive: NginxDirective }[] = [];
  for (const d of own(scope, 'server_name')) {
    for (const raw of d.args) {
      const name = convertServerName(raw, d, ctx);
      if (name !== null && !out.some((o) => o.name === name)) out.push({ name, directive: d });
    }
  }
  return out;
}

function convertServerName(raw: string, d: NginxDirective, ctx: ConvertContext): string | null {
  // "_" is the customary never-matching name of a catch-all server, "" matches requests without Host.
  if (raw === '_' || raw === '') return null;
  if (raw.startsWith('~')) {
    const r = translateRegex(raw.slice(1), false);
    if ('error' in r) {
      ctx.warnings.add(d, `server_name ${raw}: ${r.error}; not carried over`);
      return null;
    }
    return `~${r.source}`;
  }
  if (hasVariables(raw)) {
    ctx.warnings.add(
      d,
      `server_name ${raw}: sluice takes server names as written, not from variables; not carried over`,
    );
    return null;
  }
  const name = raw.toLowerCase();
  // sluice drops the dot from the name too, which made it another server's `example.com`.
  if (name.endsWith('.')) {
    ctx.warnings.add(
      d,
      `server_name ${raw}: nginx removes the final dot of a Host before it looks for the server, so this name matches no request; not carried over`,
    );
    return null;
  }
  if (name.includes('*') && !/^\*\.[^*]+$/.test(name) && !/^[^*]+\.\*$/.test(name)) {
    ctx.warnings.add(
      d,
      `server_name ${raw}: sluice matches "*.a.com" and "a.*" wildcards only (use a ~regex); not carried over`,
    );
    return null;
  }
  return name;
}

/** The TLS settings of the server (from its level or http's); `undefined` when there is no certificate. */
function readTls(
  scope: Scope,
  ctx: ConvertContext,
  paths: PathContext,
  wanted: boolean,
): SluiceTls | undefined {
  const warn = (d: NginxDirective, message: string): void => {
    if (wanted) ctx.warnings.add(d, message);
  };
  const certs = nearestList(scope, 'ssl_certificate')?.directives ?? [];
  const keys = nearestList(scope, 'ssl_certificate_key')?.directives ?? [];
  const [cert, ...moreCerts] = certs;
  const [key] = keys;
  if (cert === undefined || key === undefined) return undefined;
  for (const extra of moreCerts) {
    warn(extra, 'ssl_certificate: sluice takes one certificate per server; only the first is carried over');
  }
  for (const extra of keys.slice(1)) {
    warn(extra, 'ssl_certificate_key: sluice takes one key per server; only the first is carried over');
  }
  const file = (d: NginxDirective): string | null => {
    const path = namedFile(d.args[0], paths);
    if (path === null) {
      warn(
        d,
        `${d.name} ${d.args[0] ?? ''}: sluice reads certificates from files named as written; not carried over`,
      );
    }
    return path;
  };
  const certFile = file(cert);
  const keyFile = file(key);
  if (certFile === null || keyFile === null) return undefined;
  const tls: SluiceTls = { cert: certFile, key: keyFile };

  const protocols = nearest(scope, 'ssl_protocols');
  if (protocols !== undefined) {
    const listed = protocols.args;
    if (listed.length === 1 && listed[0] === 'TLSv1.3') tls.min_version = 'TLSv1.3';
    else if (!listed.includes('TLSv1.2') && !listed.includes('TLSv1.3')) {
      warn(protocols, `ssl_protocols ${listed.join(' ')}: sluice accepts TLSv1.2 and TLSv1.3`);
    } else if (listed.some((p) => p !== 'TLSv1.2' && p !== 'TLSv1.3')) {
      warn(
        protocols,
        `ssl_protocols ${listed.join(' ')}: sluice accepts TLSv1.2 and later; ${listed.filter((p) => p !== 'TLSv1.2' && p !== 'TLSv1.3').join(' ')} is refused`,
      );
    }
  }
  const verify = nearest(scope, 'ssl_verify_client');
  const clientCa = nearest(scope, 'ssl_client_certificate');
  const mode = verify?.args[0] ?? 'off';
  if (mode === 'on' || mode === 'optional') {
    const ca = clientCa === undefined ? null : file(clientCa);
    if (ca !== null) {
      tls.client_ca = ca;
      if (mode === 'on') tls.require_client_cert = true;
    } else if (verify !== undefined) {
      warn(
        verify,
        `ssl_verify_client ${mode} needs ssl_client_certificate; client certificates are not checked`,
      );
    }
  } else if (mode === 'optional_no_ca' && verify !== undefined) {
    warn(
      verify,
      'ssl_verify_client optional_no_ca: sluice checks client certificates against client_ca only',
    );
  }
  return tls;
}

/** client_max_body_size, client_header_timeout, send_timeout, keepalive_timeout, keepalive_requests → limits. */
function readLimits(scope: Scope, ctx: ConvertContext, notes: YamlNote[]): SluiceLimits {
  const limits: SluiceLimits = {};
  const directive = nearest(scope, 'client_max_body_size');
  const body = directive === undefined ? null : convertBodySize(directive, ctx.warnings);
  // 1mb is sluice's default too.
  if (body !== null && (body.size !== '1mb' || body.note !== null)) limits.max_body = body.size;
  if (body?.note) notes.push({ path: ['limits', 'max_body'], text: body.note });
  const header = nearest(scope, 'client_header_timeout');
  if (header !== undefined) {
    const t = toSluiceDuration(header.args[0] ?? '', { at: header, warnings: ctx.warnings });
    if (t === null || t === '0s') {
      ctx.warnings.add(
        header,
        `client_header_timeout ${header.args[0] ?? ''}: not a time above 0; not carried over`,
      );
    } else limits.header_timeout = t;
  }
  // nginx's default is sluice's too (60s); 0 disables the limit in both.
  const send = nearest(scope, 'send_timeout');
  if (send !== undefined) {
    const t = toSluiceDuration(send.args[0] ?? '', { at: send, warnings: ctx.warnings });
    if (t === null) {
      ctx.warnings.add(send, `send_timeout ${send.args[0] ?? ''}: not a time; not carried over`);
    } else if (parseNginxTime(send.args[0] ?? '') !== 60_000) limits.send_timeout = t;
  }
  const keepalive = nearest(scope, 'keepalive_timeout');
  if (keepalive !== undefined) {
    const t = toSluiceDuration(keepalive.args[0] ?? '', { at: keepalive, warnings: ctx.warnings });
    if (t === null || t === '0s') {
      ctx.warnings.add(
        keepalive,
        `keepalive_timeout ${keepalive.args[0] ?? ''}: sluice always keeps client connections open for a while; not carried over`,
      );
    } else if (t !== '75s') limits.keepalive_timeout = t;
    if (keepalive.args.length > 1) {
      ctx.warnings.add(
        keepalive,
        `keepalive_timeout: the Keep-Alive header timeout ${keepalive.args[1]} is not carried over`,
      );
    }
  }
  const requests = nearest(scope, 'keepalive_requests');
  if (requests !== undefined) {
    const n = Number(requests.args[0]);
    if (!Number.isInteger(n) || n < 0) {
      ctx.warnings.add(
        requests,
        `keepalive_requests ${requests.args[0] ?? ''}: not a number; not carried over`,
      );
    } else if (n === 0) {
      // nginx closes the connection after every request then; sluice's 0 is "no limit", its 1 that.
      limits.max_requests_per_connection = 1;
    } else if (n !== 1000) limits.max_requests_per_connection = n;
  }
  return limits;
}

/** set_real_ip_from (with real_ip_header X-Forwarded-For) → trusted_proxies. */
function readTrustedProxies(scope: Scope, ctx: ConvertContext): string[] {
  const from = nearestList(scope, 'set_real_ip_from')?.directives ?? [];
  if (from.length === 0) return [];
  const header = nearest(scope, 'real_ip_header');
  const headerName = header?.args[0] ?? 'X-Real-IP';
  if (headerName.toLowerCase() !== 'x-forwarded-for') {
    ctx.warnings.add(
      header ?? from[0]!,
      `real_ip_header ${headerName}: sluice takes the client address from X-Forwarded-For only; set_real_ip_from is not carried over`,
    );
    return [];
  }
  const recursive = nearest(scope, 'real_ip_recursive');
  if (recursive?.args[0] !== 'on') {
    ctx.warnings.add(
      recursive ?? header ?? from[0]!,
      'real_ip_recursive off: sluice always skips every trusted address in X-Forwarded-For (as with real_ip_recursive on)',
    );
  }
  const out: string[] = [];
  for (const d of from) {
    const value = d.args[0] ?? '';
    if (!/^[0-9a-fA-F.:]+(\/\d+)?$/.test(value)) {
      ctx.warnings.add(
        d,
        `set_real_ip_from ${value}: sluice trusts addresses and CIDR blocks only; not carried over`,
      );
      continue;
    }
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

/** The server's routes: one for a server-level return, else one per location (at least one). */
function convertRoutes(
  scope: Scope,
  server: ServerContext,
  d: NginxDirective,
  notes: YamlNote[],
  settled?: ReadonlySet<NginxDirective>,
): SluiceRoute[] {
  const { warnings } = server.ctx;
  const locations = scope.directives.filter((x) => x.name === 'location' && x.block !== null);
  const guard = refusingIf(scope, settled);
  if (guard !== undefined) {
    warnings.add(guard, refusingIfWarning(guard, 'server'));
    notes.push({
      path: ['routes', 0],
      text: `nginx refuses some requests of this server on a condition sluice cannot test (if, line ${guard.line}); every request is refused`,
    });
    return [{ respond: { status: 403 } }];
  }
  const returned = firstReturn(scope, server);
  if (returned !== undefined) {
    for (const l of locations) {
      warnings.add(
        l,
        `location ${l.args.join(' ')} is never reached: the ${returned.directive.name} at server level (line ${returned.directive.line}) answers every request first`,
      );
    }
    const route: SluiceRoute =
      returned.action === null ? { respond: { status: 502 } } : { ...returned.action };
    if (returned.action !== null && accessAt(scope, warnings) !== undefined) {
      warnings.add(returned.directive, RETURN_BEFORE_ACCESS);
    }
    if (rateLimitAt(scope, server.ctx) !== undefined) warnings.add(returned.directive, RETURN_BEFORE_RATE);
    notes.push({
      path: ['routes', 0],
      text:
        returned.action === null
          ? `nginx: ${returned.directive.name} ${returned.directive.args.join(' ')} (could not be carried over; see the warning)`
          : `nginx: ${returned.directive.name} ${returned.directive.args.join(' ')} (server level: every path)`,
    });
    return [route];
  }

  const plans: RoutePlan[] = [];
  const nodes: LocationNode[] = [];
  const walk = (list: readonly NginxDirective[], parent: Scope, parentNode: LocationNode | null): void => {
    const level: LocationNode[] = [];
    // nginx refuses the same location twice in one block; nested ones may repeat an outer regex.
    const seen = new Map<string, NginxDirective>();
    for (const l of list) {
      if (l.name !== 'location' || l.block === null) continue;
      const key = locationKey(l);
      const earlier = key === null ? undefined : seen.get(key);
      if (earlier !== undefined) {
        warnings.add(
          l,
          `duplicate location ${l.args.join(' ')} (first at line ${earlier.line}); nginx refuses this too`,
        );
        continue;
      }
      if (key !== null) seen.set(key, l);
      const plan = convertLocation(l, parent, server);
      if (plan !== null) plans.push(plan);
      const match = parseLocation(l);
      let node: LocationNode | null = null;
      // Named locations are never matched against a path.
      if (match.kind !== 'named') {
        node = { directive: l, match, parent: parentNode, level, children: [], plan };
        level.push(node);
        parentNode?.children.push(node);
        nodes.push(node);
      }
      walk(l.block, childScope('location', l.block, parent), node ?? parentNode);
    }
  };
  walk(scope.directives, scope, null);

  for (const [name, l] of server.named) {
    if (!server.usedNamed.has(name)) {
      warnings.add(
        l,
        `location ${name}: named locations are reached through error_page, try_files or X-Accel-Redirect; not carried over`,
      );
    }
  }

  const redirects = addAutoRedirects(plans, nodes);
  const flat = flattenLocations(nodes, redirects, plans, warnings);
  if (flat.guarded) {
    notes.push({
      path: ['routes'],
      text: "regex routes start with lookaheads that keep nginx's order: a regex is tried only for the paths nginx tries it on (under its parent locations, and not when the longest prefix beside it is ^~)",
    });
  }
  nameRegexRoutes(flat.plans);
  const entries: { route: SluiceRoute; text: string }[] = [];
  const exactAliases: { route: SluiceRoute; text: string }[] = [];
  const prefixAliases: { route: SluiceRoute; text: string; length: number }[] = [];
  for (const plan of flat.plans) {
    const origin = `nginx: location ${plan.directive.args.join(' ')} (${server.ctx.where(plan.directive)})`;
    const own: { route: SluiceRoute; text: string }[] = [];
    const split = plan.limitExcept;
    if (split === undefined) own.push({ route: plan.route, text: [origin, ...plan.notes].join('\n') });
    else {
      // The listed methods first; the same match without methods then takes every other one.
      const { name, match, ...action } = plan.route;
      own.push({
        route: {
          ...(name === undefined ? {} : { name }),
          match: { ...match, methods: split.methods },
          ...action,
        },
        text: [origin, ...plan.notes].join('\n'),
      });
      own.push({
        route: {
          ...(name === undefined ? {} : { name: `${name} (other methods)` }),
          ...(match === undefined ? {} : { match: { ...match } }),
          ...split.others,
        },
        text: `${origin}: limit_except, the other methods`,
      });
    }
    entries.push(...own);
    if (plan.alias === undefined) continue;
    // The escaped spellings (`/%40x/` for `/@x/`), which the exact or prefix route cannot name:
    // a regex route for every spelling, placed where sluice's order gives nginx's. An exact one
    // before every regex (nginx takes an exact location first), a prefix one after them (nginx
    // tries the regexes before a prefix that is not ^~, whose guard keeps them off), longest first.
    for (const [k, x] of own.entries()) {
      const { path: _p, path_prefix: _pp, ...rest } = x.route.match ?? {};
      // Named after the route's path (`= ` for an exact one), unique beside the slash redirect's.
      const path = x.route.match?.path === undefined ? x.route.match?.path_prefix : `= ${x.route.match.path}`;
      const route: SluiceRoute = {
        ...structuredClone(x.route),
        name: `${x.route.name ?? path} (escaped)${k === 0 ? '' : ' (other methods)'}`,
        match: { ...rest, path_regex: plan.alias },
      };
      const text = `${origin}: the same location for the escaped spellings of its path, which nginx decodes`;
      const strip = route.proxy?.strip_prefix;
      if (strip !== undefined) {
        warnings.add(
          plan.directive,
          `location ${plan.directive.args.join(' ')}: a request that escapes its path otherwise (${pathSource(plan.match.path)}) reaches this location as in nginx, but sluice forwards it with the prefix kept (strip_prefix ${strip} matches one spelling)`,
        );
      }
      if (plan.match.kind === 'exact') exactAliases.push({ route, text });
      else prefixAliases.push({ route, text, length: plan.match.path.length });
    }
  }
  prefixAliases.sort((a, b) => b.length - a.length);
  const all = [...exactAliases, ...entries, ...prefixAliases];
  const routes: SluiceRoute[] = [];
  for (const [index, e] of all.entries()) {
    routes.push(e.route);
    notes.push({ path: ['routes', index], text: e.text });
  }
  if (routes.length === 0) {
    warnings.add(
      d,
      'server has no location sluice can carry over: nginx serves files from its root here; sluice answers 404 for every path',
    );
    routes.push({ respond: { status: 404 } });
    notes.push({ path: ['routes', 0], text: 'nginx serves files here; sluice serves no files' });
  }
  return routes;
}

/**
 * nginx's auto-redirect: a prefix location ending in `/` that proxies (`location /api/ { proxy_pass
 * ... }`) answers the same path without the slash (`/api`) with a 301 to it, unless a location
 * for that path exists; nginx decides this before any regex, as for an exact location. Each
 * becomes an exact route with a redirect, placed before its location's route.
 */
function addAutoRedirects(plans: RoutePlan[], nodes: readonly LocationNode[]): Map<RoutePlan, LocationNode> {
  const added = new Map<RoutePlan, LocationNode>();
  const taken = new Set(plans.filter((p) => p.match.kind !== 'regex').map((p) => p.match.path));
  const nodeOf = new Map(nodes.map((n) => [n.plan, n]));
  /** Each redirect, by the plan it goes before. */
  const before = new Map<RoutePlan, RoutePlan>();
  for (let i = plans.length - 1; i >= 0; i--) {
    const p = plans[i]!;
    const { kind, path } = p.match;
    if ((kind !== 'prefix' && kind !== 'caret') || path.length < 2 || !path.endsWith('/')) continue;
    // nginx sets the redirect up for the location's *_pass, whatever the route became here (a
    // refusal, a placeholder for fastcgi_pass).
    if (!PASSES.some((name) => p.directive.block?.some((x) => x.name === name && x.block === null))) continue;
    const bare = path.slice(0, -1);
    if (taken.has(bare)) continue;
    taken.add(bare);
    const encoded = encodePath(bare);
    const redirect: RoutePlan = {
      route: p.internal
        ? { match: { path: encoded.path }, respond: { status: 404 } }
        : {
            match: { path: encoded.path },
            redirect: { to: `${encodePath(path).path.replaceAll('$', '$$$$')}$is_args$args`, status: 301 },
          },
      match: { kind: 'exact', path: bare, caseless: false },
      notes: [
        p.internal
          ? `nginx answers ${bare} with 404: the location it would redirect to is internal`
          : `nginx answers ${bare} with a 301 to ${path}: the location proxies, and ends with a slash`,
      ],
      directive: p.directive,
      ...(encoded.ambiguous ? { alias: `^${pathSource(bare)}$` } : {}),
    };
    before.set(p, redirect);
    const node = nodeOf.get(p);
    if (node !== undefined) added.set(redirect, node);
  }
  if (before.size > 0) {
    const all = [...plans];
    plans.length = 0;
    for (const p of all) {
      const redirect = before.get(p);
      if (redirect !== undefined) plans.push(redirect);
      plans.push(p);
    }
  }
  return added;
}

/** The content handlers for which nginx redirects a location's path without its slash. */
const PASSES = ['proxy_pass', ...FOREIGN_CONTENT];

/** A location's identity for nginx's "duplicate location"; `null` for named ones (handled apart). */
function locationKey(l: NginxDirective): string | null {
  const m = parseLocation(l);
  if (m.kind === 'named') return null;
  // `^~ /x` and `/x` are the same prefix location to nginx.
  const kind = m.kind === 'caret' ? 'prefix' : m.kind;
  return `${kind} ${m.caseless ? '*' : ''}${m.path}`;
}

/**
 * A regex route whose regex had to be rewritten (letters folded for `~*`, a `^~` guard) is named
 * after the nginx location (`~* \.(png|jpg)$`), so logs and metrics show what was written.
 */
function nameRegexRoutes(plans: RoutePlan[]): void {
  const taken = new Set<string>();
  for (const p of plans) {
    const source = p.route.match?.path_regex;
    if (p.match.kind !== 'regex' || source === undefined || source === p.match.path) continue;
    const name = p.directive.args.join(' ');
    if (taken.has(name)) continue;
    taken.add(name);
    p.route = { name, ...p.route };
  }
}
