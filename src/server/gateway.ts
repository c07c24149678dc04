/**
 * The request lifecycle, written out in one place:
 *
 *   strict head checks ─▶ server by Host ─▶ path normalised ─▶ client address (trusted_proxies)
 *     ─▶ route by path, method, headers ─▶ action: proxy | respond | redirect ─▶ observer
 *
 * A refusal before the route is chosen (a refused head, 421, 414, a malformed path, TRACE) is the
 * server's ban 403 for a client the server bans. Everything it reads per request was compiled ahead
 * (gateway-tables.ts); nothing here walks the config.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { assertNever } from '../core/assert-never.js';
import { clientFromForwardedFor, unmapIpv4 } from '../core/ip-set.js';
import type { ErrorCode } from '../errors/catalogue.js';
import { serveHandler } from '../handlers/serve-handler.js';
import { forward } from '../proxy/forward.js';
import { normaliseHost } from '../router/host-table.js';
import { normalisePath, routePathOf } from '../router/normalise-path.js';
import { bucketKey } from '../security/bucket-key.js';
import type { GuardServices } from '../security/guard-services.js';
import type { TakeResult } from '../security/token-bucket.js';
import { Exchange, type ExchangeObserver } from './exchange.js';
import {
  type CompiledGuards,
  type CompiledRedirect,
  type CompiledRoute,
  type CompiledServer,
  type ListenerTable,
  NO_CHECKS,
  redirectBody,
} from './gateway-tables.js';
import { handlerAnswer } from './h2-compat.js';
import { emptyHead, scanRequestHead } from './request-head.js';
import { clientCertKey } from './tls-settings.js';

/** Serves one request arriving on a listener whose current table is `table`. */
export function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  table: ListenerTable,
  scheme: string,
  observer: ExchangeObserver,
  upgradeHead: Buffer | null = null,
): Exchange {
  const x = new Exchange(req, res, scheme, observer);
  x.upgradeHead = upgradeHead;
  const head = scanRequestHead(req, emptyHead(), table.limits.maxHeader);
  const hostName = typeof head === 'string' || head.host === '' ? '' : normaliseHost(head.host);
  const server = table.hosts.matchName(hostName);
  x.server = server;
  const peer = unmapIpv4(req.socket.remoteAddress ?? '');
  x.remoteAddr = peer;
  x.forwardedFor = peer;
  // No address: the connection was reset before its address was read (the listener reads it on
  // accept, so this is a corner). Access rules, bans and rate limits all key on the address, so the
  // request goes no further: unchecked, a reset sent right after a request passed `deny: all`.
  if (peer === '') {
    x.clientGone();
    return x;
  }
  // Answers sluice gives before a route is chosen strike against the server's ban scope.
  x.guards = server.guards;
  if (typeof head === 'string') {
    const code =
      head === 'headers_too_large' ? 'SLUICE_E_CLIENT_HEADERS_TOO_LARGE' : 'SLUICE_E_CLIENT_BAD_REQUEST';
    refuseBeforeRoute(x, server, observer.guards, code, new Error(`refused request head: ${head}`));
    return x;
  }
  // X-Forwarded-* are believed only from trusted proxies; from anyone else they start afresh.
  // Read before any refusal, so that a refused request behind a proxy names (and strikes) its client.
  const trustedSet = server.trusted;
  const trusted = trustedSet?.has(peer) === true;
  if (trusted && head.xForwardedFor !== null) {
    x.remoteAddr = clientFromForwardedFor(head.xForwardedFor, trustedSet!) ?? peer;
    x.forwardedFor = `${head.xForwardedFor}, ${peer}`;
  }
  x.forwardedProto = trusted && head.xForwardedProto !== null ? head.xForwardedProto : scheme;
  x.forwardedHost = trusted && head.xForwardedHost !== null ? head.xForwardedHost : head.host;
  // nginx's 421: a TLS connection's client certificate was checked (or not) for the server its SNI
  // named; a request naming another server with other client-certificate settings would pass its
  // require_client_cert, or carry an identity its client_ca never verified. Likewise a TLS 1.2
  // connection made under another server's name would reach a server with min_version TLSv1.3.
  if ((table.clientCertsDiffer || table.minVersionsDiffer) && misdirected(req, server, table)) {
    refuseBeforeRoute(x, server, observer.guards, 'SLUICE_E_CLIENT_MISDIRECTED');
    return x;
  }
  x.connectionTokens = head.connectionTokens;
  x.bodyKind = head.body;
  x.contentLength = head.contentLength;
  x.expectContinue = head.expectContinue;
  x.upgrade = head.upgrade;
  x.hostHeader = head.host;
  x.hostName = hostName === '' ? server.hostName : hostName;

  const url = x.requestUri;
  if (url.length > server.limits.maxUri) {
    refuseBeforeRoute(x, server, observer.guards, 'SLUICE_E_CLIENT_URI_TOO_LONG');
    return x;
  }
  const q = url.indexOf('?');
  const path = normalisePath(q === -1 ? url : url.slice(0, q), server.config.mergeSlashes);
  if (path === null) {
    refuseBeforeRoute(x, server, observer.guards, 'SLUICE_E_CLIENT_BAD_REQUEST', new Error('malformed path'));
    return x;
  }
  x.path = path;
  // Routes match the path with `%2F` and path characters decoded, as nginx's locations do
  // (routePathOf); the path forwarded keeps the client's escapes.
  const routePath = routePathOf(path, server.config.mergeSlashes);
  if (routePath === null) {
    refuseBeforeRoute(x, server, observer.guards, 'SLUICE_E_CLIENT_BAD_REQUEST', new Error('malformed path'));
    return x;
  }
  x.routePath = routePath;
  x.query = q === -1 ? '' : url.slice(q);
  x.startTrace(head.traceparent, head.tracestate);
  // nginx answers TRACE 405 before any location: a target that echoes it back (as TRACE asks)
  // hands a script the cookies and credentials it cannot read itself (cross-site tracing).
  if (x.method === 'TRACE') {
    refuseBeforeRoute(x, server, observer.guards, 'SLUICE_E_CLIENT_METHOD_NOT_ALLOWED');
    return x;
  }

  const route = server.routes.match(routePath, x.method, x) ?? null;
  x.route = route;
  // The route's max_body, else the server's (compiled into the route).
  x.maxBody = route === null ? server.limits.maxBody : route.maxBody;
  const guards = route?.guards ?? server.guards;
  x.guards = guards;
  if (guards !== NO_CHECKS) {
    const verdict = checkGuards(x, guards, observer.guards);
    if (verdict === 'refused') return x;
    if (verdict !== 'pass') {
      verdict.then(
        (r) => {
          if (r !== 'pass') return;
          // The client may have left while the guard asked Redis, and nothing was listening for its
          // 'close' yet: acted on, the proxied attempt waited for ever on an answer nobody read
          // (no access line, an upstream connection held, a live HTTP/2 exchange counted).
          if (x.clientLeft) x.clientGone();
          else act(x, route);
        },
        (err: unknown) => x.fail('SLUICE_E_RUNTIME_INTERNAL', err),
      );
      return x;
    }
  }
  act(x, route);
  return x;
}

/**
 * Refuses a request before a route is chosen: with `code`, or with 403 SLUICE_E_AUTH_BANNED when
 * the client is banned from the server, as every request a banned client makes there is. The ban
 * was checked only once a route was chosen, so a banned client still got the 400, 405, 414 or 421
 * of a malformed, TRACE or overlong request, as if the ban were not in force. Only refusals pay
 * for the look-up; a banned client's 403 is no strike (a ban's strikes are not counted).
 */
function refuseBeforeRoute(
  x: Exchange,
  server: CompiledServer,
  services: GuardServices,
  code: ErrorCode,
  cause?: unknown,
): void {
  if (isBanned(server.guards, services, x.remoteAddr)) x.fail('SLUICE_E_AUTH_BANNED');
  else x.fail(code, cause);
}

/** Whether `guards` ban `address` (itself, or its network with `per: network`). */
export function isBanned(guards: CompiledGuards, services: GuardServices, address: string): boolean {
  const ban = guards.ban;
  return ban !== null && services.banned(ban.scope, ban.client(address));
}

/**
 * Whether the TLS connection of a request does not meet the policy of the server the request
 * names: a TLSv1.3-only server reached over TLS 1.2, or a server that differs in client
 * certificates from the one the connection's SNI chose. A connection that meets the server's
 * policy serves it whatever its SNI name (a TLS 1.3 connection made for a TLS 1.2 server may ask
 * for a TLSv1.3-only one), as browsers share one connection between names of one certificate.
 * Ciphers are the same for every server (tls-settings.ts), so there is nothing to compare there.
 */
function misdirected(req: IncomingMessage, server: CompiledServer, table: ListenerTable): boolean {
  // On HTTP/2, req.socket is Node's proxy, which passes the call on to the TLS socket.
  const socket = req.socket as Partial<Pick<TLSSocket, 'servername' | 'getProtocol'>>;
  if (
    table.minVersionsDiffer &&
    server.config.tls?.minVersion === 'TLSv1.3' &&
    socket.getProtocol?.() !== 'TLSv1.3'
  ) {
    return true;
  }
  if (!table.clientCertsDiffer) return false;
  const sni = socket.servername;
  const chosen = table.hosts.matchName(typeof sni === 'string' ? normaliseHost(sni) : '');
  return chosen !== server && clientCertKey(chosen.config.tls) !== clientCertKey(server.config.tls);
}

/** Runs the route's action (or answers 404 when no route matched). */
function act(x: Exchange, route: CompiledRoute | null): void {
  if (route === null) {
    x.fail('SLUICE_E_ROUTE_NOT_FOUND');
    return;
  }
  // Before any action, as nginx checks client_max_body_size when the location is chosen: a
  // respond or redirect route refuses an announced body over max_body too.
  if (x.bodyKind === 'length' && x.contentLength > x.maxBody) {
    x.fail('SLUICE_E_CLIENT_BODY_TOO_LARGE');
    return;
  }
  const action = route.action;
  switch (action.kind) {
    case 'proxy':
      forward(x, action);
      break;
    case 'respond':
      x.respond(action.status, action.headers, action.body);
      break;
    case 'redirect':
      redirect(x, action);
      break;
    case 'handler':
      // On HTTP/2 its head goes out without the connection-specific fields HTTP/1.1 code sets.
      if (x.req.httpVersionMajor === 2) handlerAnswer(x.res as unknown as Http2ServerResponse);
      // An Upgrade (WebSocket) handshake is a listener's to take over on the raw socket, where a
      // 504 written later would land inside its protocol: not timed.
      serveHandler(x, action.handler, x.upgradeHead === null ? action.timeoutMs : 0);
      break;
    default:
      assertNever(action, 'route action');
  }
}

/**
 * Ban, then allow/deny, then the rate limit (cheap checks first: a banned or denied client never
 * reaches Redis). 'refused' when an answer was sent; a promise when the rate limit asks Redis.
 */
function checkGuards(
  x: Exchange,
  g: CompiledGuards,
  services: GuardServices,
): 'pass' | 'refused' | Promise<'pass' | 'refused'> {
  if (isBanned(g, services, x.remoteAddr)) {
    x.fail('SLUICE_E_AUTH_BANNED');
    return 'refused';
  }
  if (g.access !== null && !g.access.allows(x.remoteAddr)) {
    x.fail('SLUICE_E_AUTH_DENIED');
    return 'refused';
  }
  if (g.rate === null) return 'pass';
  const key = bucketKey(g.rate.key(x));
  const result = services.take(g.rate.scope, key, g.rate.rule);
  if (result instanceof Promise) return result.then((r) => rateVerdict(x, r));
  return rateVerdict(x, result);
}

function rateVerdict(x: Exchange, r: TakeResult): 'pass' | 'refused' {
  if (r.allowed) return 'pass';
  // draft-ietf-httpapi-ratelimit-headers, in its separate-fields form, and the classic Retry-After.
  x.failWithHeaders('SLUICE_E_AUTH_RATE_LIMITED', [
    'retry-after',
    String(r.retryAfter),
    'ratelimit-limit',
    String(r.limit),
    'ratelimit-remaining',
    String(r.remaining),
    'ratelimit-reset',
    String(r.reset),
  ]);
  return 'refused';
}

function redirect(x: Exchange, action: CompiledRedirect): void {
  const location = action.to(x);
  const body = redirectBody(action.status, location);
  x.respond(
    action.status,
    [
      'location',
      location,
      'content-type',
      'text/plain; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(body)),
    ],
    body,
  );
}
