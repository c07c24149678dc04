/**
 * A resolved config compiled into the immutable tables the data plane reads per request: per
 * listen address a host table, per server a route table, per route a ready-to-run action. A reload
 * compiles new tables and swaps one reference; requests in flight finish on the tables they began
 * with.
 */
import { STATUS_CODES } from 'node:http';
import { parseTemplate, type TemplatePart } from '../config/template.js';
import type {
  ListenAddress,
  RedirectAction,
  ResolvedBan,
  ResolvedConfig,
  ResolvedGuards,
  ResolvedLimits,
  ResolvedRateLimit,
  ResolvedRoute,
  ResolvedServer,
  RespondAction,
} from '../config/types.js';
import { clientNetwork } from '../core/client-network.js';
import { IpSet } from '../core/ip-set.js';
import { SluiceError } from '../errors/sluice-error.js';
import type { LoadedHandler } from '../handlers/load-handler.js';
import { compileProxyRoute, type ProxyRoute } from '../proxy/proxy-route.js';
import { UpstreamSet } from '../proxy/upstream-set.js';
import type { UpstreamTarget } from '../proxy/upstream-target.js';
import { compileTemplate, type Template } from '../proxy/variables.js';
import { HostTable } from '../router/host-table.js';
import { RouteTable } from '../router/route-table.js';
import { AccessControl } from '../security/access-control.js';
import { describeMode, type ListenerMode, listenerMode, sameListenerMode } from './listener-mode.js';
import { preflightTls } from './tls-preflight.js';
import { clientCertKey } from './tls-settings.js';

/** A `respond` action with its headers and body prepared. */
export interface CompiledRespond {
  readonly kind: 'respond';
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

/** A `redirect` action with its target compiled. */
export interface CompiledRedirect {
  readonly kind: 'redirect';
  readonly status: number;
  readonly to: Template;
}

/** A `handler` action with its module loaded. */
export interface CompiledHandler {
  readonly kind: 'handler';
  readonly handler: LoadedHandler;
  /** handler_timeout in ms (0: none). */
  readonly timeoutMs: number;
}

export type CompiledAction = ProxyRoute | CompiledRespond | CompiledRedirect | CompiledHandler;

/** The security checks of a route (or of a server, for requests no route takes). */
export interface CompiledGuards {
  readonly access: AccessControl | null;
  readonly rate: { readonly scope: string; readonly rule: ResolvedRateLimit; readonly key: Template } | null;
  readonly ban: {
    readonly scope: string;
    readonly rule: ResolvedBan;
    readonly statuses: ReadonlySet<number>;
    /** Who is counted and banned for a client address: itself, or its network (`per: network`). */
    readonly client: (address: string) => string;
  } | null;
}

/** The shared "no guards" object: most routes have none, and skip the checks with one comparison. */
export const NO_CHECKS: CompiledGuards = Object.freeze({ access: null, rate: null, ban: null });

export interface CompiledRoute {
  readonly name: string;
  readonly action: CompiledAction;
  readonly guards: CompiledGuards;
  /** The route's `max_body`, else the server's. */
  readonly maxBody: number;
}

export interface CompiledServer {
  readonly name: string;
  /**
   * `$host` for a request without a Host (HTTP/1.0): the first plain `server_name`, as nginx's
   * server name; the server's `name` when it has none. The label alone made redirects to
   * `https://$host$request_uri` point at `https://main/...`.
   */
  readonly hostName: string;
  readonly config: ResolvedServer;
  readonly routes: RouteTable<CompiledRoute>;
  /** `null` when the server trusts no proxy. */
  readonly trusted: IpSet | null;
  readonly limits: ResolvedLimits;
  readonly guards: CompiledGuards;
}

/** What one listen address serves. */
export interface ListenerTable {
  readonly address: ListenAddress;
  readonly hosts: HostTable<CompiledServer>;
  /** The servers on this address, in config order (TLS: their certificates, by SNI). */
  readonly servers: readonly CompiledServer[];
  /** Plain HTTP/1.1, TLS, or TLS with HTTP/2: fixed for the life of the listener. */
  readonly mode: ListenerMode;
  /** The default server's limits: they apply before the Host header is known (nginx does the same). */
  readonly limits: ResolvedLimits;
  /**
   * TLS servers here differ in client certificates (`client_ca`, `require_client_cert`): a request
   * must then name the server its connection's SNI chose, else it is answered 421 (see gateway.ts).
   */
  readonly clientCertsDiffer: boolean;
  /**
   * TLS servers here differ in `min_version`: the address takes TLS 1.2, so a request naming a
   * TLSv1.3-only server over a TLS 1.2 connection (made under another server's SNI name) is
   * answered 421 (see gateway.ts).
   */
  readonly minVersionsDiffer: boolean;
}

/** Everything the data plane needs for one config generation. */
export interface GatewayTables {
  readonly config: ResolvedConfig;
  readonly listeners: ReadonlyMap<string, ListenerTable>;
  readonly upstreams: UpstreamSet;
}

/**
 * Compiles a config; `previous` lends its upstream pools to unchanged targets. Throws
 * SLUICE_E_RUNTIME_LISTEN when the servers of an address disagree on TLS, when an address would
 * change between plain and TLS (or HTTP/2) under listeners that already exist, or when a
 * certificate cannot be loaded (tls-preflight.ts).
 */
export function compileTables(
  config: ResolvedConfig,
  previous?: GatewayTables,
  handlers: ReadonlyMap<string, LoadedHandler> = new Map(),
): { tables: GatewayTables; retired: UpstreamTarget[] } {
  // Checked before anything is built, so a refused config leaves nothing to clean up.
  const modes = listenerModes(config, previous);
  preflightTls(config);
  const { set: upstreams, retired } = UpstreamSet.build(config.upstreams, previous?.upstreams);
  const servers = config.servers.map((s) => compileServer(s, upstreams, handlers));
  const byAddress = new Map<string, { address: ListenAddress; servers: CompiledServer[] }>();
  for (const server of servers) {
    for (const address of server.config.listen) {
      const entry = byAddress.get(address.key);
      if (entry) entry.servers.push(server);
      else byAddress.set(address.key, { address, servers: [server] });
    }
  }
  const listeners = new Map<string, ListenerTable>();
  for (const [key, { address, servers: list }] of byAddress) {
    const hosts = new HostTable(
      list.map((s) => ({ names: s.config.serverNames, isDefault: s.config.default, value: s })),
    );
    const mode = modes.get(key)!;
    const clientCertsDiffer = new Set(list.map((s) => clientCertKey(s.config.tls))).size > 1;
    const minVersionsDiffer = new Set(list.map((s) => s.config.tls?.minVersion)).size > 1;
    listeners.set(key, {
      address,
      hosts,
      servers: list,
      mode,
      limits: hosts.defaultValue.limits,
      clientCertsDiffer,
      minVersionsDiffer,
    });
  }
  return { tables: { config, listeners, upstreams }, retired };
}

function listenerModes(
  config: ResolvedConfig,
  previous: GatewayTables | undefined,
): Map<string, ListenerMode> {
  const byAddress = new Map<string, ResolvedServer[]>();
  for (const server of config.servers) {
    for (const address of server.listen)
      byAddress.set(address.key, [...(byAddress.get(address.key) ?? []), server]);
  }
  const modes = new Map<string, ListenerMode>();
  for (const [key, servers] of byAddress) {
    const mode = listenerMode(key, servers);
    const before = previous?.listeners.get(key)?.mode;
    if (before !== undefined && !sameListenerMode(before, mode)) {
      throw new SluiceError(
        'SLUICE_E_RUNTIME_LISTEN',
        `${key} is served as ${describeMode(before)} and cannot switch to ${describeMode(mode)} in place; restart sluice (or change the listen address)`,
      );
    }
    modes.set(key, mode);
  }
  return modes;
}

function compileServer(
  config: ResolvedServer,
  upstreams: UpstreamSet,
  handlers: ReadonlyMap<string, LoadedHandler>,
): CompiledServer {
  const serverGuards = compileGuards(config.guards, config.name, null);
  return {
    name: config.name,
    hostName:
      config.serverNames.find((n) => n !== '' && !n.includes('*') && !n.startsWith('~')) ?? config.name,
    config,
    routes: new RouteTable(config.routes, (route) => ({
      ...compileRoute(route, upstreams, handlers),
      guards: compileGuards(route.guards, config.name, route.name),
      maxBody: route.maxBody ?? config.limits.maxBody,
    })),
    trusted: config.trustedProxies.length > 0 ? new IpSet(config.trustedProxies) : null,
    limits: config.limits,
    guards: serverGuards,
  };
}

/**
 * Compiles guards; a rate limit or ban set on the server has the server's scope (one bucket and
 * one ban per client across all its routes), one set on a route its own (`server/route`). A rate
 * limit naming a zone has the zone's (`zone:NAME`), whatever server or route it is set on.
 */
function compileGuards(g: ResolvedGuards, server: string, route: string | null): CompiledGuards {
  if (g.access === null && g.rateLimit === null && g.ban === null) return NO_CHECKS;
  const scope = (level: 'server' | 'route') =>
    level === 'server' || route === null ? server : `${server}/${route}`;
  return {
    access: g.access === null ? null : new AccessControl(g.access),
    rate:
      g.rateLimit === null
        ? null
        : {
            scope: g.rateLimit.zone === null ? scope(g.rateLimit.level) : `zone:${g.rateLimit.zone}`,
            rule: g.rateLimit,
            key: compileTemplate(templateParts(g.rateLimit.key)),
          },
    ban:
      g.ban === null
        ? null
        : {
            scope: scope(g.ban.level),
            rule: g.ban,
            statuses: new Set(g.ban.statuses),
            client: g.ban.per === 'network' ? clientNetwork : sameAddress,
          },
  };
}

const sameAddress = (address: string): string => address;

/** Every ban rule of a config by scope, for the ban manager. */
export function banRules(config: ResolvedConfig): Map<string, ResolvedBan> {
  const rules = new Map<string, ResolvedBan>();
  for (const s of config.servers) {
    if (s.guards.ban !== null) rules.set(s.name, s.guards.ban);
    for (const r of s.routes) {
      if (r.guards.ban !== null)
        rules.set(r.guards.ban.level === 'server' ? s.name : `${s.name}/${r.name}`, r.guards.ban);
    }
  }
  return rules;
}

function compileRoute(
  route: ResolvedRoute,
  upstreams: UpstreamSet,
  handlers: ReadonlyMap<string, LoadedHandler>,
): Omit<CompiledRoute, 'guards' | 'maxBody'> {
  const action = route.action;
  switch (action.kind) {
    case 'proxy':
      return {
        name: route.name,
        action: compileProxyRoute(action, upstreams.get(action.upstream), templateParts),
      };
    case 'respond':
      return { name: route.name, action: compileRespond(action) };
    case 'redirect':
      return { name: route.name, action: compileRedirect(action) };
    case 'handler': {
      const handler = handlers.get(action.module);
      // Modules are loaded before compiling; a missing one is a programming error.
      if (handler === undefined) throw new Error(`handler ${action.module} was not loaded`);
      return { name: route.name, action: { kind: 'handler', handler, timeoutMs: action.timeoutMs } };
    }
  }
}

function compileRespond(action: RespondAction): CompiledRespond {
  const body = Buffer.from(action.body);
  const headers: string[] = [];
  let hasType = false;
  for (const [name, value] of action.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length') continue;
    if (lower === 'content-type') hasType = true;
    headers.push(name, value);
  }
  if (!hasType && body.length > 0) headers.push('content-type', 'text/plain; charset=utf-8');
  // RFC 9110 8.6: no Content-Length on a 204; on a 304 it would describe the representation.
  if (action.status !== 204 && action.status !== 304) headers.push('content-length', String(body.length));
  return { kind: 'respond', status: action.status, headers, body };
}

function compileRedirect(action: RedirectAction): CompiledRedirect {
  return { kind: 'redirect', status: action.status, to: compileTemplate(templateParts(action.to)) };
}

/** Template parts of a config value already checked by config validation. */
function templateParts(text: string): readonly TemplatePart[] {
  const parsed = parseTemplate(text);
  if ('error' in parsed) throw new Error(`invalid template reached the data plane: ${parsed.error}`);
  return parsed.parts;
}

/** The body of a redirect answer: a short text naming the target, like nginx's. */
export function redirectBody(status: number, location: string): string {
  return `${status} ${STATUS_CODES[status] ?? 'Redirect'}: ${location}\n`;
}

/** The handler modules a config uses. */
export function handlerModules(config: ResolvedConfig): string[] {
  const modules = new Set<string>();
  for (const server of config.servers) {
    for (const route of server.routes) if (route.action.kind === 'handler') modules.add(route.action.module);
  }
  return [...modules];
}
