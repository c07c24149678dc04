/**
 * The egress forward proxy (`egress:` in sluice.yaml): the allow-list through which applications
 * make their outbound calls (HTTP_PROXY / HTTPS_PROXY). It speaks HTTP/1.1 on `egress.listen`:
 *
 *   absolute-form  GET http://host[:port]/path ─▶ target ─▶ policy ─allowed─▶ forwardEgress (undici) ─▶ origin
 *   CONNECT host:port                          ─▶ target ─▶ policy ─allowed─▶ openEgressTunnel (TCP) ─▶ origin
 *   origin-form    GET /path                   ─▶ 400 (this listener only proxies)
 *                                                            └─denied─▶ 403 + `egress denied` (warn)
 *
 * The policy is compiled once per config (`update` swaps it on reload; requests in flight keep
 * the decision they had). A socket error, a bad request or a failing origin is an answer and a
 * log line, never an exception out of this class.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Agent } from 'undici';
import type { ResolvedEgress } from '../config/types.js';
import { unmapIpv4 } from '../core/ip-set.js';
import { SlotSet } from '../core/slot-set.js';
import { undici } from '../core/undici.js';
import { listenError } from '../errors/listen-error.js';
import { clientErrorCode } from '../server/error-response.js';
import { nextRequestId } from '../server/request-id.js';
import {
  EGRESS_TIMEOUTS,
  type EgressContext,
  type EgressInFlight,
  type EgressTimeouts,
} from './egress-context.js';
import { type EgressAnswerCode, type EgressErrorCode, rawEgressResponse } from './egress-errors.js';
import {
  answerProblem,
  EgressLoopError,
  type EgressRequest,
  forwardEgress,
  hasBody,
} from './egress-forward.js';
import { type EgressLog, logDenied, logRefused } from './egress-log.js';
import { type CompiledEgressPolicy, compileEgressPolicies, decideEgress } from './egress-policy.js';
import { parseAbsoluteTarget, parseConnectTarget, type TargetError } from './egress-target.js';
import { holdEarly, openEgressTunnel } from './egress-tunnel.js';
import { LoopGuard } from './loop-guard.js';

/** Options for embedding and tests. */
export interface EgressServerOptions {
  /** Overrides of the default timeouts (`EGRESS_TIMEOUTS`). */
  readonly timeouts?: Partial<EgressTimeouts>;
}

/** How long the drain waits between looks at idle keep-alive connections. */
const DRAIN_SWEEP_MS = 100;
/** Idle keep-alive connections to origins are closed after this (below Node's 5 s server default). */
const UPSTREAM_KEEPALIVE_MS = 4_000;

const kBusy = Symbol('sluice.egress.busy');
const kSeen = Symbol('sluice.egress.seen');
/** A CONNECT that waits for the answers ahead of it on its connection (#onConnect). */
const kAfterBusy = Symbol('sluice.egress.afterBusy');
/** The connection's latest request: a parser error before its end is in its body (#onClientError). */
const kLatest = Symbol('sluice.egress.latest');
/** A request the parser refused is answered, or waits to be (#onClientError). */
const kRefusalDue = Symbol('sluice.egress.refusalDue');
/** The connection's latest request, when it is being forwarded (for its body's framing errors). */
const kForwarding = Symbol('sluice.egress.forwarding');
type ClientSocket = Socket & {
  [kBusy]?: number;
  [kRefusalDue]?: boolean;
  [kLatest]?: http.IncomingMessage;
  [kSeen]?: number;
  [kAfterBusy]?: () => void;
  [kForwarding]?: EgressRequest | undefined;
};

/** The forward proxy on one listen address. */
export class EgressServer {
  #config: ResolvedEgress;
  #policies: readonly CompiledEgressPolicy[];
  readonly #server: http.Server;
  readonly #ctx: EgressContext;
  readonly #agent: Agent;
  /** HTTP connections (not yet tunnels). */
  readonly #sockets = new SlotSet<ClientSocket>('sluice.egress.sockets');
  /** Client sockets of CONNECT tunnels. */
  readonly #tunnels = new SlotSet<Socket>('sluice.egress.tunnels');
  #draining = false;
  #idle: (() => void) | null = null;

  constructor(config: ResolvedEgress, log: EgressLog, options: EgressServerOptions = {}) {
    this.#config = config;
    this.#policies = compileEgressPolicies(config.policies);
    const timeouts: EgressTimeouts = { ...EGRESS_TIMEOUTS, ...options.timeouts };
    const loop = new LoopGuard();
    const connect = undici().buildConnector({ timeout: timeouts.connectMs });
    this.#agent = new (undici().Agent)({
      keepAliveTimeout: UPSTREAM_KEEPALIVE_MS,
      // A new connection is checked once, after DNS: one that reached this proxy is a loop.
      connect: (opts, callback) => {
        connect(opts, (err, socket) => {
          if (err !== null) {
            callback(err, null);
          } else if (loop.pointsAtSelf(socket.remoteAddress, socket.remotePort)) {
            socket.destroy();
            callback(new EgressLoopError('the target is this egress proxy'), null);
          } else {
            callback(null, socket);
          }
        });
      },
    });
    this.#ctx = {
      log,
      loop,
      timeouts,
      agent: this.#agent,
      inFlight: new SlotSet<EgressInFlight>('sluice.egress.inflight'),
    };
    this.#server = http.createServer({
      // The target is the request line's; a Host header is neither needed nor trusted.
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      noDelay: true,
      // How often Node enforces headersTimeout (its default, 30 s, would double it).
      connectionsCheckingInterval: 5_000,
    });
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = 30_000;
    this.#server.keepAliveTimeout = 5_000;
    // Idle client connections (also one stalled mid-body) close after this.
    this.#server.timeout = timeouts.idleMs;
    this.#server.on('connection', this.#onConnection);
    this.#server.on('request', this.#onRequest);
    // `Expect: 100-continue` (HTTP/1.1; Node's test): without a listener Node sent the 100 before
    // the request was seen, so a request then refused had invited its body. The 100 goes out only
    // once the policy allows it (forwardEgress).
    this.#server.on('checkContinue', this.#onCheckContinue);
    this.#server.on('connect', this.#onConnect);
    this.#server.on('clientError', this.#onClientError);
  }

  /** Binds `egress.listen`; rejects with SLUICE_E_RUNTIME_LISTEN. */
  async listen(): Promise<void> {
    const { host, port, key } = this.#config.listen;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(listenError(key, err, ' (egress)'));
      };
      this.#server.once('error', onError);
      // One address, so `[::]` is dual stack: IPv4 clients too (the gateway's listen lists may
      // name `0.0.0.0:P` and `[::]:P` side by side, and bind `::` IPv6-only for that).
      this.#server.listen({ host, port, ipv6Only: false }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) =>
          this.#ctx.log.error({ err, listener: key }, 'egress listener error'),
        );
        const a = this.#server.address();
        if (typeof a === 'object' && a !== null) this.#ctx.loop.bind(a.address, a.port);
        resolve();
      });
    });
  }

  /** The bound port (the kernel's pick when the config asked for port 0). */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a !== null ? a.port : this.#config.listen.port;
  }

  /** The configured listen address (`host:port` as written). */
  get listenKey(): string {
    return this.#config.listen.key;
  }

  /** Swaps in the policies of a reloaded config (the listen address is the caller's to keep). */
  update(config: ResolvedEgress): void {
    this.#policies = compileEgressPolicies(config.policies);
    this.#config = { ...config, listen: this.#config.listen };
  }

  readonly #onConnection = (socket: ClientSocket): void => {
    // Read on accept, kept by Node: read at the request, a client that reset right after sending
    // it had no address (policies then refuse it as an unknown source; this keeps it known).
    void socket.remoteAddress;
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#checkIdle();
    });
  };

  /**
   * A request Node's parser refused (400; 414, 431 over the head's size; 408 when it came too
   * slowly): answered and logged as `egress refused` with an id, as the gateway answers and logs
   * them. It was answered without either, so nothing showed that a client's calls were failing.
   */
  readonly #onClientError = (err: NodeJS.ErrnoException, socket: ClientSocket): void => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Node's parser stops at its error and reports it again for every later piece of input.
    if (socket[kRefusalDue]) return;
    const code = clientErrorCode(err);
    const latest = socket[kLatest];
    if (latest !== undefined && !latest.complete) {
      // The error is in the body of the latest request. A FIN before its end
      // (HPE_INVALID_EOF_STATE) is a client that left: the request sees its connection close (499).
      // Bad framing in a body being forwarded: that request answers it (400 with an id) and logs
      // it, as the gateway does. A request already answered (refused, its connection to close) is
      // not answered or logged twice.
      if (err.code === 'HPE_INVALID_EOF_STATE') socket.destroy();
      else {
        socket[kForwarding]?.badRequest(code);
        socket.destroySoon();
      }
      return;
    }
    socket[kRefusalDue] = true;
    // Answers still going out on the connection (requests pipelined ahead) go out whole first, in
    // request order, as on the gateway: written at once, the refusal came before them and cut
    // them off. An answer that closes the connection drops the refusal with it, unanswered and
    // unlogged.
    if ((socket[kBusy] ?? 0) > 0) socket[kAfterBusy] = () => this.#refuseUnread(socket, code);
    else this.#refuseUnread(socket, code);
  };

  /** Answers and logs what the parser refused (#onClientError), unless the client is gone. */
  #refuseUnread(socket: Socket, code: EgressAnswerCode): void {
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    // No request was read: no method or target to log, as the gateway logs `-` and an empty path.
    refuse(socket, code, this.#refused(unmapIpv4(socket.remoteAddress ?? ''), '-', '', code));
  }

  readonly #onCheckContinue = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.#onRequest(req, res, true);
  };

  readonly #onRequest = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    expectContinue = false,
  ): void => {
    const socket = req.socket as ClientSocket;
    socket[kBusy] = (socket[kBusy] ?? 0) + 1;
    socket[kLatest] = req;
    socket[kForwarding] = undefined;
    res.once('close', () => {
      socket[kBusy] = (socket[kBusy] ?? 1) - 1;
      // Nothing in flight: no body left whose framing errors a forwarded request would answer.
      if (socket[kBusy] === 0) socket[kForwarding] = undefined;
      if (socket[kBusy] === 0 && socket[kAfterBusy] !== undefined) {
        const next = socket[kAfterBusy];
        socket[kAfterBusy] = undefined;
        next();
      }
      this.#checkIdle();
    });
    if (this.#draining) res.shouldKeepAlive = false;
    try {
      this.#serve(req, res, unmapIpv4(socket.remoteAddress ?? ''), expectContinue);
    } catch (err) {
      // A bug must cost one request, never the process.
      const id = nextRequestId();
      this.#ctx.log.error({ err, url: req.url, error_id: id }, 'egress request failed');
      if (!res.headersSent) answerProblem(res, 'SLUICE_E_RUNTIME_INTERNAL', id, true);
      else res.destroy();
    }
  };

  #serve(req: http.IncomingMessage, res: http.ServerResponse, source: string, expectContinue: boolean): void {
    const method = req.method ?? '';
    const target = parseAbsoluteTarget(req.url ?? '');
    if ('error' in target) {
      const code = targetErrorCode(target.error);
      answerProblem(res, code, this.#refused(source, method, req.url ?? '', code), true);
      return;
    }
    const decision = decideEgress(this.#policies, source, target.host, target.port);
    if (!decision.allowed) {
      const id = nextRequestId();
      logDenied(this.#ctx.log, {
        source,
        host: target.host,
        port: target.port,
        method,
        reason: decision.reason,
        error_id: id,
      });
      answerProblem(res, 'SLUICE_E_AUTH_EGRESS_DENIED', id, hasBody(req));
      return;
    }
    const socket = req.socket as ClientSocket;
    socket[kForwarding] = forwardEgress(this.#ctx, req, res, target, source, decision.policy, expectContinue);
  }

  readonly #onConnect = (req: http.IncomingMessage, client: ClientSocket, head: Buffer): void => {
    // Node hands the socket over without an error listener: one must exist before anything else.
    client.on('error', () => client.destroy());
    this.#sockets.delete(client);
    this.#tunnels.add(client);
    client.once('close', () => {
      this.#tunnels.delete(client);
      this.#checkIdle();
    });
    // Node emits 'connect' as soon as it has parsed the head, while requests pipelined ahead of it
    // may still be answering on this socket: their answers went into the tunnel, after its 200, or
    // a 403's close cut them. Answers go out in request order (RFC 9112 9.3.2), so the CONNECT is
    // served once the last of them has closed.
    // Meanwhile the client is read (holdEarly): what it sends after `head` is kept behind it, and
    // one that leaves is closed at once, which also ends the answers ahead (their client is gone).
    if ((client[kBusy] ?? 0) > 0) {
      const release = holdEarly(client, head);
      client[kAfterBusy] = () => this.#serveConnect(req, client, release());
    } else {
      this.#serveConnect(req, client, head);
    }
  };

  #serveConnect(req: http.IncomingMessage, client: Socket, head: Buffer): void {
    // The client left while the answers ahead were going out: its CONNECT is dropped unanswered,
    // as pipelined requests behind a closed connection are.
    if (client.destroyed || !client.writable) {
      client.destroy();
      return;
    }
    try {
      const source = unmapIpv4(client.remoteAddress ?? '');
      const target = parseConnectTarget(req.url ?? '');
      if ('error' in target || this.#draining) {
        const code = 'error' in target ? targetErrorCode(target.error) : 'SLUICE_E_RUNTIME_DRAINING';
        refuse(client, code, this.#refused(source, 'CONNECT', req.url ?? '', code));
        return;
      }
      const decision = decideEgress(this.#policies, source, target.host, target.port);
      if (!decision.allowed) {
        const id = nextRequestId();
        logDenied(this.#ctx.log, {
          source,
          host: target.host,
          port: target.port,
          method: 'CONNECT',
          reason: decision.reason,
          error_id: id,
        });
        refuse(client, 'SLUICE_E_AUTH_EGRESS_DENIED', id);
        return;
      }
      openEgressTunnel(this.#ctx, client, head, target, source, decision.policy);
    } catch (err) {
      this.#ctx.log.error({ err, url: req.url }, 'egress CONNECT failed');
      client.destroy();
    }
  }

  /**
   * Stops accepting and drains: requests in flight finish (their connections then close),
   * idle keep-alive connections close once silent for a sweep, tunnels run until they end or
   * `deadlineMs`; then whatever is left is cut (logged at once, 499 with
   * SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT, as the gateway logs its cuts) and closed, with the agent's
   * origin connections.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#draining = true;
    const server = this.#server;
    const closeIdle = server.closeIdleConnections;
    // Node's close() would cut idle connections at once; the sweep below gives them a moment.
    server.closeIdleConnections = () => undefined;
    const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : null;
    server.closeIdleConnections = closeIdle;
    const sweep = setInterval(() => this.#sweepIdle(), DRAIN_SWEEP_MS);
    sweep.unref();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, deadlineMs);
      timer.unref();
      this.#idle = () => {
        if (this.#sockets.size > 0 || this.#tunnels.size > 0) return;
        clearTimeout(timer);
        resolve();
      };
      this.#idle();
    });
    clearInterval(sweep);
    this.#idle = null;
    // Logged before any socket closes: the lines are written while the caller can still flush
    // them (a worker exits right after), and before the agent's destruction fails a request as
    // if its origin had reset it.
    for (const x of [...this.#ctx.inFlight]) x.cut('SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT');
    for (const socket of this.#sockets) socket.destroy();
    for (const socket of this.#tunnels) socket.destroy();
    await closed;
    await this.#agent.destroy().catch(() => undefined);
  }

  /** Logs a request refused before any policy was asked; returns the id its answer carries. */
  #refused(source: string, method: string, target: string, code: EgressAnswerCode): string {
    const id = nextRequestId();
    logRefused(this.#ctx.log, { source, method, target, code, error_id: id });
    return id;
  }

  #checkIdle(): void {
    this.#idle?.();
  }

  /** Closes connections with no request in progress that received nothing since the last sweep. */
  #sweepIdle(): void {
    for (const socket of this.#sockets) {
      if ((socket[kBusy] ?? 0) > 0) continue;
      if (socket[kSeen] === socket.bytesRead) socket.destroy();
      else socket[kSeen] = socket.bytesRead;
    }
  }
}

function targetErrorCode(error: TargetError): EgressErrorCode {
  return error === 'origin-form' ? 'SLUICE_E_CLIENT_EGRESS_NOT_PROXY' : 'SLUICE_E_CLIENT_EGRESS_TARGET';
}

/** Answers a CONNECT that is not tunnelled, then closes. */
function refuse(client: Socket, code: EgressAnswerCode, id: string): void {
  if (client.writable) client.end(rawEgressResponse(code, id), () => client.destroy());
  else client.destroy();
}
