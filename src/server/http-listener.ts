/**
 * One listen address: a Node HTTP/1.1 server (llhttp, strict mode) with sluice's limits, the
 * answers for requests Node refuses before they reach a handler (400/408/413/431), a
 * `max_connections` cap answered with 503, and a graceful close.
 *
 * A TLS address (listener-mode.ts) is an `https` server, or with HTTP/2 an `http2` secure server
 * that falls back to HTTP/1.1 by ALPN; certificates by SNI, client certificates and rotation are
 * tls-terminator.ts. HTTP/1.1 over TLS takes the same path as plain HTTP/1.1 (same parser, same
 * limits); HTTP/2 requests arrive as the compat objects of h2-compat.ts, and their connections
 * close by GOAWAY (keepalive_timeout with no stream open, or on drain). A TLS connection whose client
 * certificate was checked under a policy a reload or a re-read client CA bundle replaced is ended
 * as a drain ends it (#endStaleTls). A plain listener's request path is untouched by any of it.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import { headerName } from '../core/header-names.js';
import { unmapIpv4 } from '../core/ip-set.js';
import { SlotSet } from '../core/slot-set.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { listenError } from '../errors/listen-error.js';
import { SluiceError } from '../errors/sluice-error.js';
import { abortBody } from './abort-body.js';
import { clientErrorCode, problemBody, rawRefusal } from './error-response.js';
import { Exchange, type ExchangeObserver, type LiveCount } from './exchange.js';
import { handleRequest, isBanned } from './gateway.js';
import type { ListenerTable } from './gateway-tables.js';
import { H2Request, H2Response } from './h2-compat.js';
import { closeWhenIdle, goAway, handOverSocket } from './h2-idle-close.js';
import { stopUpload } from './h2-stop-upload.js';
import { isH2Request } from './request-head.js';
import { type TlsRefusal, TlsTerminator, type TlsTerminatorHooks } from './tls-terminator.js';

/** How a listener binds its address. */
export interface ListenOptions {
  /**
   * Bind an own socket with SO_REUSEPORT, so the kernel spreads connections across the workers
   * (Node 22.12+); otherwise a cluster worker shares the primary's socket (round-robin).
   */
  readonly reusePort?: boolean;
}

/** Logs what a listener cannot attach to a request (internal errors, a certificate that cannot be reloaded). */
export type ListenerErrorLog = (err: unknown, context: Record<string, unknown>) => void;

/** Optional reports of a listener, beyond errors. */
export interface ListenerHooks {
  /** A certificate was reloaded from disk (rotation). */
  readonly tlsReloaded?: (info: Record<string, unknown>) => void;
  /** A starting worker serves the node's copy of a certificate whose files cannot be used (tls-terminator.ts). */
  readonly tlsCopyInUse?: (err: unknown, info: Record<string, unknown>) => void;
  /** How often certificate files are polled, ms (default 1000; tests use less). */
  readonly tlsWatchIntervalMs?: number;
  /**
   * How long a connection whose client-certificate policy changed may finish its answers before it
   * is cut (#endStaleTls): the config's shutdown_timeout, read when the change comes (default 30 s).
   */
  readonly staleTlsGraceMs?: () => number;
  /** What a client-certificate policy change ended on this listener (#endStaleTls). */
  readonly tlsClientCertsChanged?: (info: {
    listener: string;
    connections: number;
    grace_ms: number;
  }) => void;
  /** A TLS connection was refused before it carried a request (tls-terminator.ts). */
  readonly tlsRefused?: (refusal: TlsRefusal) => void;
  /** Called at the listener's first client connection (a worker tells its primary it serves). */
  readonly firstConnection?: () => void;
  /**
   * An HTTP/2 connection kept opening streams over the concurrent-stream limit (Rapid Reset) and
   * was closed with GOAWAY(ENHANCE_YOUR_CALM); once per connection.
   */
  readonly h2Refused?: (info: { listener: string; remoteAddr: string; refused: number }) => void;
  /**
   * An HTTP/2 stream was refused with REFUSED_STREAM, not served: `concurrency` (over the live
   * exchanges a connection may run) or `max_requests` (sent past the GOAWAY of
   * max_requests_per_connection). Once per stream: only refusals pay for it.
   */
  readonly h2StreamRefused?: (reason: 'concurrency' | 'max_requests') => void;
}

/**
 * `limits.request_timeout` for an HTTP/2 request with a body (Node's `requestTimeout` covers
 * HTTP/1.1 only). When the client has not sent its whole body in time, the exchange answers 408
 * (or is broken, when its answer has started), and the upload is stopped (h2-stop-upload.ts: reset
 * with NO_ERROR once the answer is out), also when a handler had answered already. Without it, a
 * client sending a body a byte at a time would hold a stream for ever: keepalive_timeout does not
 * run while a stream is open (h2-idle-close.ts), and 128 streams fit in one connection. A body the
 * client finished sending (END_STREAM) is not timed, even when sluice is still reading it at the
 * pace of a slow upstream.
 */
function armH2RequestTimeout(req: H2Request, x: Exchange, ms: number): void {
  if (ms <= 0) return;
  const stream = req.stream;
  const timer = setTimeout(() => {
    if (stream.closed || stream.destroyed || stream.state.remoteClose) return;
    x.fail('SLUICE_E_CLIENT_TIMEOUT');
    stopUpload(stream);
  }, ms);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}

/**
 * HTTP/2 settings: nginx's `http2_max_concurrent_streams` default. Once the client has acknowledged
 * it, nghttp2 holds the streams open on the wire to it as a connection error: a 129th open stream
 * ends the connection, where nginx refuses that one stream. Node enforces exactly what it
 * advertises (a second SETTINGS frame changes both), and advertising more would have clients that
 * keep to it refused by the live-exchange check (#onH2Request) and soon closed as Rapid Reset.
 */
const H2_MAX_CONCURRENT_STREAMS = 128;

/**
 * Streams an HTTP/2 connection may have refused for being over H2_MAX_CONCURRENT_STREAMS live
 * exchanges before it is closed with GOAWAY(ENHANCE_YOUR_CALM). A client that keeps to the
 * advertised limit is never refused: only one that resets streams and opens new ones before
 * sluice has let go of the old (Rapid Reset) reaches this.
 */
const H2_REFUSALS_BEFORE_GOAWAY = 2 * H2_MAX_CONCURRENT_STREAMS;

/** What an HTTP/2 connection has started, kept on its session (see #onH2Request). */
interface H2Streams extends LiveCount {
  /** Streams served, for max_requests_per_connection. */
  started: number;
  /** Streams refused while H2_MAX_CONCURRENT_STREAMS exchanges were live. */
  refused: number;
}

/**
 * The HTTP/2 header list size (RFC 9113: names, values and 32 octets per field) a stream may
 * send and still be answered, advertised as SETTINGS_MAX_HEADER_LIST_SIZE: four times max_header
 * (nginx reads a request head into up to four large_client_header_buffers). A list over
 * max_header and within it is read whole and answered 431 (request-head.ts), as HTTP/1.1 answers
 * any head over max_header. Once the client has acknowledged the SETTINGS, Node resets a stream
 * whose list passes the advertised size (ENHANCE_YOUR_CALM, no answer, no log line): advertising
 * max_header itself made every list over it, from a connection's second request on, a reset
 * rather than a 431. HPACK decodes a header block whole (its table must stay in step), so a list
 * is bounded somewhere; past this bound it is reset.
 */
function h2HeaderListBound(maxHeader: number): number {
  return maxHeader * 4;
}

/** The socket servers a listener may run. */
type NodeServer = http.Server | https.Server | http2.Http2SecureServer;

/** The HTTP/1.1 server settings, which an `http2` server with `allowHTTP1` reads from itself. */
type Http1Settings = Pick<
  http.Server,
  'requestTimeout' | 'headersTimeout' | 'keepAliveTimeout' | 'maxHeadersCount' | 'maxRequestsPerSocket'
> & {
  maxHeaderSize?: number;
  requireHostHeader?: boolean;
  joinDuplicateHeaders?: boolean;
  connectionsCheckingInterval?: number;
};

const kRefused = Symbol('sluice.refused');
const kExchange = Symbol('sluice.exchange');
const kBusy = Symbol('sluice.busy');
const kSeen = Symbol('sluice.seen');
/** Requests read on this connection. */
const kRequests = Symbol('sluice.requests');
/** A TLS socket carrying an HTTP/2 session. */
const kH2 = Symbol('sluice.h2');
/** The H2Streams of an HTTP/2 session. */
const kStreams = Symbol('sluice.h2Streams');
/** The connection of a response (Node detaches `res.socket` before 'close'). */
const kSocket = Symbol('sluice.socket');
/** The exchange of a response, to forget it when the response closes. */
const kResExchange = Symbol('sluice.resExchange');
/** A connection handed to a new HTTP parser after an `Upgrade: h2c` (see #reparseWithoutUpgrade). */
const kReparsed = Symbol('sluice.reparsed');
/** Pipelined requests (and upgrades) waiting for the answer before them, as steps to run in order. */
const kPipelined = Symbol('sluice.pipelined');
/**
 * Node's parser refused a request behind the answer in progress, and that was dealt with: a
 * refusal waits its turn (see #refuseInTurn), or the request whose body it was in fails in its
 * turn (see #serveInTurn).
 */
const kRefusalDue = Symbol('sluice.refusalDue');
/** The last request read while an answer was in progress: it waits its turn, its body maybe unread. */
const kLastWaiting = Symbol('sluice.lastWaiting');
/** The parser's error in the body of a request that was waiting its turn (see #serveInTurn). */
const kBodyError = Symbol('sluice.bodyError');
/** Reading paused because PIPELINE_PAUSE_AT requests wait. */
const kPipelinePaused = Symbol('sluice.pipelinePaused');
/**
 * Waiting pipelined requests after which the connection is no longer read until they are served:
 * Node parses whatever has arrived, and a queued request writes nothing, so nothing else pushes back
 * (20,000 pipelined GETs held 26 MB).
 */
const PIPELINE_PAUSE_AT = 32;

/** Node's own flag for a server connection whose reading it paused (node:_http_server). */
interface NodePaused {
  _paused: boolean;
  parser?: { pause(): void; resume(): void } | null;
  _handle?: { reading: boolean; readStart(): number } | null;
}

/**
 * Stops reading `socket` until resumePipeline(). `socket.pause()` alone did not hold: Node's HTTP
 * server reads a connection itself and resumes it whenever a request is read from (its
 * IncomingMessage's `_read`) or an answer is written, unless the connection carries its own
 * `_paused` flag, which also pauses its parser after the chunk in hand (at most 64 KiB, about
 * 2,400 small requests). So the flag reads true while this pause holds, whatever Node sets:
 * 200,000 pipelined GETs behind an unanswered one were all parsed (450 MB, 37 s of CPU).
 */
function pausePipeline(socket: ClientSocket): void {
  if (socket[kPipelinePaused]) return;
  socket[kPipelinePaused] = true;
  if (!Object.hasOwn(socket, kNodePaused)) {
    const own = socket as unknown as NodePaused & { [kNodePaused]: boolean };
    own[kNodePaused] = own._paused === true;
    Object.defineProperty(socket, '_paused', {
      get: () => own[kNodePaused] || socket[kPipelinePaused] === true,
      set: (paused: boolean) => {
        own[kNodePaused] = paused;
      },
      configurable: true,
    });
  }
  socket.pause();
}

/**
 * Reading goes on, unless Node holds it paused itself (answers waiting to be written). An upgraded
 * connection (a WebSocket pipelined behind the requests that paused it) is no longer Node's: its
 * parser is gone, and with it the listener that starts the handle on `resume()`, so the handle,
 * stopped while Node read it, is started here as that listener does. Left stopped, the tunnel
 * behind 33 or more pipelined requests never carried a byte from the client.
 */
function resumePipeline(socket: ClientSocket): void {
  socket[kPipelinePaused] = false;
  const node = socket as unknown as NodePaused;
  if (node.parser == null) {
    node._paused = false;
    socket.resume();
    const handle = node._handle;
    if (handle && !handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
    return;
  }
  if (node._paused) return;
  node.parser.resume();
  socket.resume();
}

/** Node's own `_paused` value while pausePipeline's accessor stands in for it. */
const kNodePaused = Symbol('sluice.nodePaused');

type TrackedResponse = http.ServerResponse & { [kSocket]?: ClientSocket; [kResExchange]?: Exchange };

/** How often a draining listener looks at its idle keep-alive connections. */
const DRAIN_SWEEP_MS = 100;
/** shutdown_timeout's default: how long stale TLS connections may finish without the hook. */
const STALE_TLS_GRACE_MS = 30_000;

/**
 * How often Node looks for connections past header_timeout or request_timeout: each fires up to
 * this late. Fixed when the listener starts.
 */
export function checkingInterval(limits: {
  readonly headerTimeoutMs: number;
  readonly requestTimeoutMs: number;
}): number {
  const shortest =
    limits.requestTimeoutMs > 0
      ? Math.min(limits.headerTimeoutMs, limits.requestTimeoutMs)
      : limits.headerTimeoutMs;
  return Math.max(100, Math.min(1000, Math.floor(shortest / 4)));
}

/** How often connections are looked at for a stalled send (send_timeout is checked to this grain). */
const SEND_SWEEP_MS = 1000;
/** Bytes of a connection's (or an HTTP/2 stream's) answers the client had taken at the last sweep, and since when. */
const kSendDone = Symbol('sluice.sendDone');
const kSendSince = Symbol('sluice.sendSince');
/** The stream was reset for send_timeout (and `kSendSince` is when). */
const kSendReset = Symbol('sluice.sendReset');

/** What a send_timeout sweep keeps of a connection or a stream. */
interface SendMarks {
  [kSendDone]?: number;
  [kSendSince]?: number;
}

/**
 * Notes that `done` bytes were taken at `now`; whether none more were taken for `limit` ms (the
 * same bytes as at the sweep that started the wait).
 */
function stalled(marks: SendMarks, done: number, now: number, limit: number): boolean {
  if (marks[kSendSince] === undefined || marks[kSendDone] !== done) {
    marks[kSendDone] = done;
    marks[kSendSince] = now;
    return false;
  }
  return now - marks[kSendSince] >= limit;
}

/**
 * An HTTP/2 answer watched for send_timeout (see #sweepStalledStreams). Its exchange stays on it
 * once logged: the exchange's bytes count the stream's progress.
 */
type H2Answer = http2.Http2ServerResponse & SendMarks & { [kResExchange]?: Exchange; [kSendReset]?: true };

/** A client socket with sluice's per-connection marks. */
type ClientSocket = Socket & {
  [kRefused]?: boolean;
  [kExchange]?: Exchange | null;
  /** Responses in progress on this connection. */
  [kBusy]?: number;
  /** bytesRead at the previous drain sweep. */
  [kSeen]?: number;
  [kRequests]?: number;
  [kH2]?: boolean;
  [kPipelined]?: (() => void)[];
  [kPipelinePaused]?: boolean;
  [kRefusalDue]?: boolean;
  [kLastWaiting]?: WaitingRequest;
  [kReparsed]?: boolean;
  [kSendDone]?: number;
  [kSendSince]?: number;
};

/** A pipelined request, with the parser's error in its body when one came while it waited. */
type WaitingRequest = http.IncomingMessage & { [kBodyError]?: NodeJS.ErrnoException };

/** An HTTP/2 session with the count of its streams (set in #onSession). */
type CountedSession = http2.ServerHttp2Session & { [kStreams]: H2Streams };

/** An HTTP listener bound to one address, serving whatever table it currently holds. */
export class HttpListener {
  readonly #server: NodeServer;
  /** `http`, or `https` on a TLS address. */
  readonly #scheme: string;
  /** Certificates and client certificates of a TLS address; null on a plain one. */
  readonly #tls: TlsTerminator | null;
  /** HTTP/2 connections, closed with GOAWAY on drain. */
  readonly #sessions = new SlotSet<http2.ServerHttp2Session>('sluice.sessions');
  /** HTTP/2 answers whose stream is open, for the send_timeout sweep. */
  readonly #h2Answers = new SlotSet<H2Answer>('sluice.h2Answers');
  #table: ListenerTable;
  readonly #observer: ExchangeObserver;
  readonly #logError: ListenerErrorLog;
  /** Requests being served, so a graceful close knows when it is done. */
  #inflight = 0;
  #draining = false;
  #idle: (() => void) | null = null;
  readonly #h2Refused: ListenerHooks['h2Refused'];
  readonly #staleTlsGraceMs: ListenerHooks['staleTlsGraceMs'];
  readonly #tlsClientCertsChanged: ListenerHooks['tlsClientCertsChanged'];
  readonly #h2StreamRefused: ListenerHooks['h2StreamRefused'];

  readonly #listenOptions: ListenOptions;

  /** Reads the certificates of a TLS address now: a missing or broken one throws SLUICE_E_RUNTIME_LISTEN. */
  constructor(
    table: ListenerTable,
    observer: ExchangeObserver,
    logError: ListenerErrorLog,
    listen: ListenOptions = {},
    hooks: ListenerHooks = {},
  ) {
    this.#listenOptions = listen;
    this.#h2Refused = hooks.h2Refused;
    this.#h2StreamRefused = hooks.h2StreamRefused;
    this.#staleTlsGraceMs = hooks.staleTlsGraceMs;
    this.#tlsClientCertsChanged = hooks.tlsClientCertsChanged;
    const self = this;
    this.#onResponseClose = function (this: http.ServerResponse) {
      self.#responseClosed(this);
    };
    this.#table = table;
    this.#observer = observer;
    this.#logError = logError;
    const limits = table.limits;
    const http1 = {
      maxHeaderSize: limits.maxHeader,
      // request-head.ts refuses HTTP/1.1 without Host (HTTP/1.0 may omit it, as nginx allows).
      // Node's own check answered a bare 400 of its own: no problem document, no error id, no
      // access line, no count and no ban strike.
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      noDelay: true,
      // How often Node enforces header_timeout and request_timeout (its default is 30 s, which
      // would let a slowloris client hold a connection 30 s past a 10 s header_timeout): a quarter
      // of the shorter of the two, at most a second. Reckoned from header_timeout alone, a 2 s
      // request_timeout beside the default 10 s one fired up to 1 s late.
      connectionsCheckingInterval: checkingInterval(limits),
    };
    // `Expect: 100-continue` is served like any request ('checkContinue'); the 100 goes out only
    // once the body is wanted, so a body over max_body or for a refused request is never invited.
    // Any other expectation is ignored and the request served, as nginx does ('checkExpectation';
    // without a listener Node answered a bare 417 itself, unlogged). Expect is never forwarded.
    if (!table.mode.tls) {
      this.#scheme = 'http';
      this.#tls = null;
      this.#server = http.createServer(http1);
      this.#server.on('request', this.#onRequest);
      this.#server.on('checkContinue', this.#onRequest);
      this.#server.on('checkExpectation', this.#onRequest);
      this.#server.on('connection', this.#onConnection);
    } else {
      this.#scheme = 'https';
      this.#tls = newTerminator(table, logError, hooks, () => this.#endStaleTls());
      const tlsOptions = this.#tls.serverOptions();
      if (table.mode.http2) {
        const server = http2.createSecureServer({
          ...tlsOptions,
          allowHTTP1: true,
          noDelay: true,
          Http2ServerRequest: H2Request,
          Http2ServerResponse: H2Response,
          settings: {
            maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
            maxHeaderListSize: h2HeaderListBound(limits.maxHeader),
          },
          // Node resets a stream of more fields than this (ENHANCE_YOUR_CALM), with no answer and
          // no log line. Every field costs at least 32 octets of the RFC 9113 size, so any list
          // within h2HeaderListBound fits: its size alone decides between serving, 431
          // (request-head.ts) and a reset, never its count (520 small fields, 20.8 KB against a
          // 16 KB max_header, were reset at a cap of max_header / 32 = 512 rather than answered
          // 431). A flood of fields is still bounded: at most 2048 for a 16 KB max_header.
          maxHeaderListPairs: Math.max(128, Math.ceil(h2HeaderListBound(limits.maxHeader) / 32)),
        });
        // The HTTP/1.1 side of an http2 server reads these from the server object.
        Object.assign(server as unknown as Http1Settings, http1);
        server.on('session', this.#onSession);
        this.#tls.attach(server);
        this.#server = server;
      } else {
        const server = https.createServer({ ...tlsOptions, ...http1 });
        this.#tls.attach(server);
        this.#server = server;
      }
      this.#server.on('request', this.#onSecureRequest);
      this.#server.on('checkContinue', this.#onSecureRequest);
      this.#server.on('checkExpectation', this.#onSecureRequest);
      this.#server.on('connection', this.#onTlsConnection);
      this.#server.on('secureConnection', this.#onSecureConnection);
    }
    this.#applyTimeouts(table);
    if (hooks.firstConnection !== undefined) this.#server.once('connection', hooks.firstConnection);
    this.#server.on('clientError', this.#onClientError);
    // WebSocket and other Upgrade requests: HTTP/1.1 only (also on an HTTP/2 address, by ALPN).
    this.#server.on('upgrade', this.#onUpgrade);
    // CONNECT is only for the egress proxy; on a gateway listener it is a bad request. On an
    // HTTP/2 address the second argument is the stream's response, not a socket.
    this.#server.on('connect', (req: http.IncomingMessage, socket: Socket | http2.Http2ServerResponse) => {
      if (socket instanceof http2.Http2ServerResponse) this.#refuseConnectStream(req, socket);
      else this.#refuse(socket, 'SLUICE_E_CLIENT_BAD_REQUEST', { method: 'CONNECT', url: req.url ?? '' });
    });
  }

  /** Binds the address. */
  async listen(): Promise<void> {
    const { host, port } = this.#table.address;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.#tls?.close();
        reject(listenError(this.#table.address.key, err));
      };
      this.#server.once('error', onError);
      // `[::]` is bound IPv6-only, as nginx does, so ":8080" (0.0.0.0) and "[::]:8080" can coexist.
      const reusePort = this.#listenOptions.reusePort === true;
      const options = {
        host,
        port,
        backlog: this.#table.limits.backlog,
        ipv6Only: host === '::',
        exclusive: reusePort,
        reusePort,
      };
      this.#server.listen(options, () => {
        this.#sendSweep = setInterval(() => this.#sweepStalledSends(), SEND_SWEEP_MS);
        this.#sendSweep.unref();
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#logError(err, { listener: this.#table.address.key }));
        resolve();
      });
    });
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a !== null ? a.port : this.#table.address.port;
  }

  /** Open client connections. */
  get connections(): number {
    return this.#connections;
  }
  #connections = 0;

  /**
   * Swaps in the table of a new config generation (same address, same mode). Certificates were
   * loaded once already (compileTables); should one fail now all the same (changed on disk in
   * between), it is logged and the previous certificates stay, so a reload never stops half-way.
   */
  update(table: ListenerTable): void {
    if (this.#tls !== null) {
      try {
        this.#tls.update(table);
      } catch (err) {
        this.#logError(err, {
          listener: table.address.key,
          event: 'tls_reload_failed',
          detail: 'the certificates of the new config cannot be loaded; the previous ones stay in use',
        });
      }
    }
    this.#table = table;
    this.#applyTimeouts(table);
  }

  #applyTimeouts(table: ListenerTable): void {
    const limits = table.limits;
    const s = this.#server as unknown as Http1Settings;
    // Node requires headersTimeout <= requestTimeout when both are set.
    s.requestTimeout = limits.requestTimeoutMs;
    s.headersTimeout =
      limits.requestTimeoutMs > 0
        ? Math.min(limits.headerTimeoutMs, limits.requestTimeoutMs)
        : limits.headerTimeoutMs;
    s.keepAliveTimeout = limits.keepaliveTimeoutMs;
    s.maxHeadersCount = 0;
    // max_requests_per_connection is counted in #onRequest, not with Node's maxRequestsPerSocket:
    // Node only marks the last answer `Connection: close` and keeps the connection open, answering
    // 503 to every later request, which a client that ignores the header (autocannon does) takes
    // by the thousand, unlogged. nginx's keepalive_requests closes the connection instead.
    s.maxRequestsPerSocket = 0;
  }

  /** Requests being served, for /debug/handles. */
  readonly #active = new SlotSet<Exchange>('sluice.active');

  /** The requests being served. */
  active(): Iterable<Exchange> {
    return this.#active;
  }

  /** Open client connections, for a drain that waits for them. */
  readonly #sockets = new SlotSet<Socket>('sluice.sockets');

  readonly #onConnection = (socket: Socket): void => {
    // Already counted: the same connection given back to HTTP parsing.
    if ((socket as ClientSocket)[kReparsed]) return;
    // Node reads the peer address on first use and keeps it: read now, while the connection is
    // surely there. Read at the request, a client that reset the connection right after sending it
    // had no address (getpeername fails), and access rules, bans and rate limits matched nothing.
    void socket.remoteAddress;
    this.#connections++;
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#connections--;
      this.#sockets.delete(socket);
      if (this.#sockets.size === 0) this.#idle?.();
    });
    if (this.#connections > this.#table.limits.maxConnections || this.#draining) {
      // Over max_connections: answer 503 at once and close, rather than queueing the client.
      (socket as ClientSocket)[kRefused] = true;
      this.#refuse(socket, this.#draining ? 'SLUICE_E_RUNTIME_DRAINING' : 'SLUICE_E_RUNTIME_OVERLOADED');
    }
  };

  /**
   * A TCP connection to a TLS address. Over max_connections (or draining) it is closed at once:
   * a 503 cannot be written before a handshake, which is the costly part to refuse.
   */
  readonly #onTlsConnection = (socket: Socket): void => {
    // Read now and kept (see #onConnection): a handshake that fails destroys the TLS socket, whose
    // address goes with it, and the report of the refusal names the client by this one.
    void socket.remoteAddress;
    this.#connections++;
    this.#handshaking.add(socket);
    socket.once('close', () => {
      this.#connections--;
      this.#handshaking.delete(socket);
      if (this.#handshaking.size === 0 && this.#sockets.size === 0) this.#idle?.();
    });
    if (this.#connections > this.#table.limits.maxConnections || this.#draining) socket.destroy();
  };

  /** TCP connections of a TLS address whose handshake is not done yet. */
  readonly #handshaking = new SlotSet<Socket>('sluice.handshaking');

  /** A TLS connection after its handshake: tracked like a plain one (drain, sweeps). */
  readonly #onSecureConnection = (socket: tls.TLSSocket): void => {
    if (socket.destroyed || (socket as ClientSocket)[kReparsed]) return;
    // Node made the connection's HTTP/2 session just before (#onSession): its close gets the socket.
    handOverSocket(socket);
    void socket.remoteAddress; // kept for the requests to come (see #onConnection)
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      if (this.#sockets.size === 0 && this.#handshaking.size === 0) this.#idle?.();
    });
  };

  /**
   * An HTTP/2 connection: closed with GOAWAY after keepalive_timeout with no stream open, or on
   * drain, and cut header_timeout after its GOAWAY once no stream is open (h2-idle-close.ts).
   */
  readonly #onSession = (session: http2.ServerHttp2Session): void => {
    (session as CountedSession)[kStreams] = { live: 0, started: 0, refused: 0 };
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    // Marks the TLS socket (the session's socket is a proxy to it) so drain sweeps leave it to GOAWAY.
    (session.socket as ClientSocket)[kH2] = true;
    const limits = this.#table.limits;
    closeWhenIdle(session, { idleMs: limits.keepaliveTimeoutMs, graceMs: limits.headerTimeoutMs });
    if (this.#draining) goAway(session);
  };

  /** A request on a TLS address: HTTP/1.1 takes the plain path, HTTP/2 its own. */
  readonly #onSecureRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // By the stream, not the version: `HTTP/2.0` in an HTTP/1.1 request line is refused as HTTP/1.
    if (isH2Request(req)) this.#onH2Request(req, res);
    else this.#onRequest(req, res);
  };

  /**
   * An HTTP/2 request. Its `req.socket` is a proxy that throws once the session is gone, so no
   * per-connection marks are kept on it; the response's 'close' still counts it out.
   */
  #onH2Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const h2 = req as unknown as H2Request;
    const session = h2.stream.session as CountedSession;
    const streams = session[kStreams];
    // nghttp2 counts the streams open on the wire, and a stream the client reset is closed at once;
    // what the reset stream started (an upstream connection still being opened) goes on. So new
    // streams are refused while 128 exchanges are live, however many streams are open (a reset
    // loop on one connection held 982 upstream connections at once before, 128 now). Starting a
    // body-less request's upstream one turn later would let the reset in the same read cancel it
    // first (0 upstream connections), but costs every request a turn and writes a 499 line for
    // each reset stream (556 against 128 here): not done.
    if (streams.live >= H2_MAX_CONCURRENT_STREAMS) {
      this.#refuseOverLimit(session, h2.stream, streams);
      return;
    }
    // Streams the client sent past the GOAWAY of max_requests_per_connection (below), in the same
    // read as the last one: refused, so the client sends them again on a new connection.
    const max = this.#table.limits.maxRequestsPerConnection;
    if (max > 0 && streams.started >= max) {
      h2.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      this.#h2StreamRefused?.('max_requests');
      return;
    }
    streams.started++;
    // As nginx's keepalive_requests over HTTP/2 (1.19.7 on): GOAWAY once the last stream has
    // started; the streams open finish, then the session closes itself.
    if (streams.started === max) goAway(session);
    this.#inflight++;
    res.once('close', this.#onResponseClose);
    try {
      const x = handleRequest(req, res, this.#table, this.#scheme, this.#observer);
      x.countLiveIn(streams);
      // Once answered, its line may still wait for the stream to send it: cuts find it among the
      // HTTP/2 answers (#cuttable).
      if (!x.finished) this.#active.add(x);
      // Kept even once logged (unlike HTTP/1.x): the send_timeout sweep reads the stream's progress in it.
      (res as TrackedResponse)[kResExchange] = x;
      this.#h2Answers.add(res as unknown as H2Answer);
      if (!h2.endStream) armH2RequestTimeout(h2, x, this.#table.limits.requestTimeoutMs);
    } catch (err) {
      this.#logError(err, { listener: this.#table.address.key, url: req.url });
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  }

  /**
   * Refuses a stream over the live-exchange limit with REFUSED_STREAM (RFC 9113 8.7: not
   * processed, safe to retry), with no access line; past H2_REFUSALS_BEFORE_GOAWAY the connection
   * is closed with ENHANCE_YOUR_CALM and reported once (the hook logs it, rate-limited).
   */
  #refuseOverLimit(session: CountedSession, stream: http2.ServerHttp2Stream, streams: H2Streams): void {
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    this.#h2StreamRefused?.('concurrency');
    if (++streams.refused !== H2_REFUSALS_BEFORE_GOAWAY + 1) return;
    this.#h2Refused?.({
      listener: this.#table.address.key,
      remoteAddr: unmapIpv4(session.socket?.remoteAddress ?? ''),
      refused: streams.refused,
    });
    // GOAWAY first, then closed on the next turn: destroyed at once, the session dropped its
    // queued GOAWAY and the client saw only the connection close.
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(destroySession, session);
  }

  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const socket = req.socket as ClientSocket;
    if (socket[kRefused]) {
      socket.destroy();
      return;
    }
    // The answer before it closes the connection (its unread body was too large to drop, see
    // Exchange.respond): Node still parses what follows the body, which is not served.
    if (socket.writableEnded) return;
    // A pipelined request waits until the answer before it is out, as nginx reads the next request
    // only then: Node hands over every request it parses at once, and one that followed an answer
    // closing the connection (a 400, max_requests_per_connection, a drain) went upstream all the
    // same and was never answered nor counted out. See #responseClosed.
    if ((socket[kBusy] ?? 0) > 0) {
      socket[kLastWaiting] = req;
      this.#defer(socket, () => this.#serveInTurn(req, res, socket));
      return;
    }
    this.#serve(req, res, socket);
  };

  /**
   * Serves a pipelined request in its turn. A parser error in its body that came while it waited
   * is then its own, as if its body had come only now (nginx reads a body only in its request's
   * turn): a proxied request is answered 400 before anything goes to its target, logged with its
   * method and path. Dropped with the connection instead, it had no answer, no access line and no
   * count.
   */
  #serveInTurn(req: WaitingRequest, res: http.ServerResponse, socket: ClientSocket): void {
    if (socket[kLastWaiting] === req) socket[kLastWaiting] = undefined;
    this.#serve(req, res, socket);
    const err = req[kBodyError];
    if (err !== undefined) this.#readError(socket, err);
  }

  /** Queues a pipelined step until the answers before it are out (see #servePipelined). */
  #defer(socket: ClientSocket, step: () => void): void {
    let queue = socket[kPipelined];
    if (queue === undefined) {
      queue = [];
      socket[kPipelined] = queue;
    }
    // Past max_requests_per_connection the connection closes before it would be served: not held,
    // and nothing more is read from it.
    if (this.#pastMax(socket, queue.length)) {
      pausePipeline(socket);
      return;
    }
    queue.push(step);
    if (queue.length >= PIPELINE_PAUSE_AT) pausePipeline(socket);
  }

  /** Whether `waiting` more requests take `socket` to max_requests_per_connection. */
  #pastMax(socket: ClientSocket, waiting: number): boolean {
    const max = this.#table.limits.maxRequestsPerConnection;
    return max > 0 && (socket[kRequests] ?? 0) + waiting >= max;
  }

  #serve(req: http.IncomingMessage, res: http.ServerResponse, socket: ClientSocket): void {
    this.#inflight++;
    socket[kBusy] = (socket[kBusy] ?? 0) + 1;
    const requests = (socket[kRequests] ?? 0) + 1;
    socket[kRequests] = requests;
    (res as http.ServerResponse & { [kSocket]?: ClientSocket })[kSocket] = socket;
    // 'on', not 'once' (no wrapper per request): Node emits a ServerResponse's 'close' once.
    res.on('close', this.#onResponseClose);
    // Closing a keep-alive connection after N requests makes long-lived clients reconnect, and
    // the new connection may land on another worker: requests spread, not just connections.
    const max = this.#table.limits.maxRequestsPerConnection;
    if (this.#draining || (max > 0 && requests >= max)) res.shouldKeepAlive = false;
    try {
      const x = handleRequest(req, res, this.#table, this.#scheme, this.#observer);
      // Kept while it runs or its body is unread (dropped in #responseClosed, or when that body
      // ends), so an idle keep-alive connection does not hold its last request and response.
      socket[kExchange] = x;
      if (!x.finished) {
        this.#active.add(x);
        (res as TrackedResponse)[kResExchange] = x;
      }
    } catch (err) {
      // A bug must cost one request, never the process.
      this.#logError(err, { listener: this.#table.address.key, url: req.url });
      if (!res.headersSent) {
        res.shouldKeepAlive = false;
        res.writeHead(500).end();
      } else {
        res.destroy();
      }
    }
  }

  /**
   * An Upgrade request (WebSocket). Node hands over the raw socket; a ServerResponse bound to it
   * lets the gateway answer errors and non-proxied routes as usual, and a proxied one may become a
   * tunnel. The connection never returns to HTTP, so it closes after a plain answer.
   */
  readonly #onUpgrade = (req: http.IncomingMessage, socket: Socket, head: Buffer): void => {
    if ((socket as ClientSocket)[kRefused]) {
      socket.destroy();
      return;
    }
    // Closing after the answer before it (see #onRequest).
    if (socket.writableEnded) return;
    // Behind a request still being answered (pipelined), the upgrade waits for that answer: the
    // socket is still that response's, and a new parser would queue its answers apart from it.
    if (((socket as ClientSocket)[kBusy] ?? 0) > 0) {
      this.#defer(socket as ClientSocket, () => this.#onUpgrade(req, socket, head));
      return;
    }
    const offered = req.headers.upgrade;
    if (offered !== undefined && H2C_TOKEN.test(offered)) {
      // h2c is never taken (see #reparseWithoutUpgrade); with other protocols offered beside it
      // (`h2c, websocket`), the upgrade goes on for those, as Envoy drops h2c from the list.
      const others = withoutH2c(offered);
      if (others === '') {
        this.#reparseWithoutUpgrade(req, socket, head);
        return;
      }
      setUpgrade(req, others);
    }
    // An Upgrade request with a body: Node stops parsing at the head, so the body would reach the
    // target after its 101, as tunnel bytes (a WebSocket client read its own body back as data).
    // It is served as a plain request, body and all, without its Upgrade: WebSocket handshakes
    // (GET, no body) are untouched, and a target that wants the upgrade refuses it as usual.
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) !== 0) {
      this.#reparseWithoutUpgrade(req, socket, head);
      return;
    }
    const res = new http.ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    res.once('finish', () => socket.end());
    socket.on('error', () => socket.destroy());
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    this.#inflight++;
    (socket as ClientSocket)[kBusy] = ((socket as ClientSocket)[kBusy] ?? 0) + 1;
    (res as http.ServerResponse & { [kSocket]?: ClientSocket })[kSocket] = socket;
    res.once('close', this.#onResponseClose);
    try {
      const x = handleRequest(req, res, this.#table, this.#scheme, this.#observer, head);
      (socket as ClientSocket)[kExchange] = x;
      if (!x.finished) {
        this.#active.add(x);
        (res as TrackedResponse)[kResExchange] = x;
        readUntilUpgraded(socket, x);
      }
    } catch (err) {
      this.#logError(err, { listener: this.#table.address.key, url: req.url });
      socket.destroy();
    }
  };

  /**
   * `Upgrade: h2c` is not an upgrade sluice makes (there is no h2c, as in nginx and Envoy): the
   * request is served as a plain HTTP/1.1 one without its Upgrade and HTTP2-Settings. Node has
   * already taken the connection off HTTP parsing without reading the body (a POST from Java's
   * HttpClient lost it, and an upstream answering 101 would have opened a tunnel past every route):
   * the head, rebuilt from what Node parsed minus those fields, and the bytes after it go back in
   * front of the socket's input, for a new parser that reads the request whole, body and all.
   */
  #reparseWithoutUpgrade(req: http.IncomingMessage, socket: Socket, rest: Buffer): void {
    let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      let value = raw[i + 1]!;
      const lower = headerName(name);
      if (lower === 'upgrade' || lower === 'http2-settings') continue;
      if (lower === 'connection') {
        value = value
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '' && !/^(?:upgrade|http2-settings)$/i.test(t))
          .join(', ');
        if (value === '') continue;
      }
      head += `${name}: ${value}\r\n`;
    }
    (socket as ClientSocket)[kReparsed] = true;
    socket.unshift(Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), rest]));
    this.#server.emit(this.#tls === null ? 'connection' : 'secureConnection', socket);
  }

  /** Sockets that left HTTP (Upgrade): Node no longer tracks them, so a close deadline must. */
  readonly #tunnels = new SlotSet<Socket>('sluice.tunnels');

  /** Shared by every response ('close' listeners get the response as `this`): no closure per request. */
  readonly #onResponseClose: (this: http.ServerResponse) => void;

  #responseClosed(res: http.ServerResponse): void {
    this.#inflight--;
    const tracked = res as TrackedResponse;
    const socket = tracked[kSocket];
    if (socket !== undefined) socket[kBusy] = (socket[kBusy] ?? 1) - 1;
    const x = tracked[kResExchange];
    if (x !== undefined) {
      this.#active.delete(x);
      x.responseClosed();
    }
    // No connection marks: an HTTP/2 answer.
    if (socket === undefined) this.#h2Answers.delete(res as unknown as H2Answer);
    const last = socket?.[kExchange];
    // Forgotten once its request was read whole. Answered before its body was (a refusal, a
    // respond route), it stays while that body is read: a framing error in it is its request's
    // (see #onClientError), not a new one.
    if (last != null && (last === x || last.finished)) {
      if (last.req.complete) socket![kExchange] = null;
      // Node reads and drops the rest of that body: forgotten once it is read (else the idle
      // connection held the request, the response and its route until its next request).
      else last.req.once('end', forgetAnswered);
    }
    if (socket?.[kPipelined] !== undefined && socket[kBusy] === 0) this.#servePipelined(socket);
    if (this.#inflight === 0) this.#idle?.();
  }

  /**
   * The next pipelined request of a connection whose answer is out; none when that answer closed
   * the connection (its end is written, or it is gone): they are dropped unread, as nginx does.
   */
  #servePipelined(socket: ClientSocket): void {
    const queue = socket[kPipelined]!;
    if (socket.destroyed || socket.writableEnded) {
      socket[kPipelined] = undefined;
      return;
    }
    const step = queue.shift()!;
    if (queue.length === 0) socket[kPipelined] = undefined;
    // Paused with PIPELINE_PAUSE_AT waiting: reading goes on once fewer wait (a chunk read then
    // adds up to 2,400 more), and never once the connection is to close at its last request.
    if (
      socket[kPipelinePaused] &&
      queue.length < PIPELINE_PAUSE_AT &&
      !this.#pastMax(socket, queue.length + 1)
    ) {
      resumePipeline(socket);
    }
    step();
  }

  readonly #onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ERR_SSL_HTTP_REQUEST') {
      // Plain HTTP sent to a TLS address (OpenSSL recognises the request line): answered 400 in
      // plain text on the TCP connection under the TLS one, as nginx answers "The plain HTTP
      // request was sent to HTTPS port", where the client saw the connection close unanswered.
      const raw = (socket as Socket & { _parent?: Socket | null })._parent;
      if (raw?.writable) this.#refuse(raw, 'SLUICE_E_CLIENT_BAD_REQUEST');
      else socket.destroy();
      return;
    }
    // A TLS connection whose handshake failed or timed out (header_timeout) cannot carry an HTTP
    // answer: the plain-text 400 never flushed, so the socket stayed open for ever, still counted
    // against max_connections after its client had gone, and held every drain to its deadline.
    if (err.code === 'ECONNRESET' || !socket.writable || (this.#tls !== null && !this.#sockets.has(socket))) {
      socket.destroy();
      return;
    }
    // Node's parser stops at its error and reports it again for every later piece of input, which
    // is not a request of its own.
    if ((socket as ClientSocket)[kRefusalDue]) return;
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      // Bytes after a request that asked to close the connection: ignored, as nginx does; the
      // request's answer still goes out (it was answered 400 instead), then the connection closes.
      const x = (socket as ClientSocket)[kExchange];
      if (x && !x.finished) socket.pause();
      else socket.destroySoon();
      return;
    }
    if ((socket as ClientSocket)[kPipelined] !== undefined) {
      (socket as ClientSocket)[kRefusalDue] = true;
      // The parser reads on after the last request waiting only once its body is whole: an error
      // while that body is not is in it, and that request's when its turn comes (#serveInTurn).
      const waiting = (socket as ClientSocket)[kLastWaiting];
      if (waiting !== undefined && !waiting.complete) {
        waiting[kBodyError] = err;
        return;
      }
      // The error is in a request after those waiting behind the one being answered: they are
      // served first, each in its turn, then it is refused (nginx reads it only then). The
      // connection closed after the answer in progress instead, dropping valid requests with it.
      this.#refuseInTurn(socket as ClientSocket, clientErrorCode(err));
      return;
    }
    this.#readError(socket as ClientSocket, err);
  };

  /**
   * A parser error in the body of the last request served on `socket`, or in the request after
   * it: that request's answer, its body's failure, or the refusal of the next one in its turn.
   */
  #readError(socket: ClientSocket, err: NodeJS.ErrnoException): void {
    // The client half-closed its connection (FIN) before the end of its body: Node's parser, told
    // the input ended, reports HPE_INVALID_EOF_STATE. The client left, as with a reset: 499 (the
    // exchange sees its connection close), not a 400 "Parse Error" that a ban on 400 would strike.
    if (err.code === 'HPE_INVALID_EOF_STATE') {
      const x = socket[kExchange];
      if (x && !x.finished && !x.req.complete) {
        socket.destroy();
        return;
      }
    }
    const code = clientErrorCode(err);
    const x = socket[kExchange];
    if (x && !x.req.complete && !x.finished) {
      // Bad framing inside a body arrives while its exchange is running (reading the body, or
      // streaming it upstream): the exchange answers, logs, and aborts the upstream attempt.
      x.fail(code, err);
      socket.destroySoon();
      // Node drops a request from its connection's list once its answer is out (this error
      // answer), so the connection's close no longer aborts its body: whoever still reads it (a
      // handler, the proxy reading or streaming it) would wait for ever. End it as Node does.
      socket.once('close', () => abortBody(x.req));
    } else if (x && !x.req.complete) {
      // The error is in a request already answered: a Transfer-Encoding not ending in chunked,
      // which llhttp refuses just after the head sluice answered 400 for it, or bad framing in a
      // body dropped after an early answer. That answer and its access line were the request's
      // one; refused again, it was logged, counted and struck twice (and a 400 followed a 200).
      socket.destroySoon();
    } else {
      // The last request read is whole (or there is none): the error is in the one after it,
      // pipelined, which is refused in its turn. Taken for the request before it, it replaced
      // that request's answer (already run at its target) with a 400 saying it was not forwarded.
      this.#refuseInTurn(socket, code);
    }
  }

  /**
   * Refuses a request Node's parser could not read (see #refuse) once the answers before it are
   * out, as nginx does: an answer still going out on the connection (pipelining) goes out whole
   * first, with its own access line. When that answer closes the connection, the refusal is
   * dropped with it, unanswered and unlogged. Written at once under an answer in progress, the
   * refusal could not go out (the connection was closed under that answer) yet was logged.
   */
  #refuseInTurn(socket: ClientSocket, code: ErrorCode): void {
    if ((socket[kBusy] ?? 0) === 0) {
      this.#refuse(socket, code);
      return;
    }
    socket[kRefusalDue] = true;
    this.#defer(socket, () => this.#refuse(socket, code));
  }

  /**
   * Answers a connection with no request to serve (see refuse), and logs and counts that answer. A
   * request refused from a client the default server bans is answered 403 SLUICE_E_AUTH_BANNED, as
   * the gateway answers its own refusals (a 400 or 431 said the ban was not in force).
   */
  #refuse(socket: Socket, code: ErrorCode, request: { method: string; url: string } | null = null): void {
    const server = this.#table.hosts.defaultValue;
    const peer = BANNED_INSTEAD.has(code) ? unmapIpv4(socket.remoteAddress ?? '') : '';
    const answer =
      peer !== '' && isBanned(server.guards, this.#observer.guards, peer) ? 'SLUICE_E_AUTH_BANNED' : code;
    Exchange.refused(socket, request, this.#scheme, server, answer, this.#observer, (id) =>
      refuse(socket, answer, id),
    );
  }

  /**
   * An HTTP/2 CONNECT, refused as over HTTP/1.1 (#refuse): a banned client gets its ban's 403, and
   * the refusal is logged and counted (it went unlogged, and was never a strike).
   */
  #refuseConnectStream(req: http.IncomingMessage, res: http2.Http2ServerResponse): void {
    const server = this.#table.hosts.defaultValue;
    const peer = unmapIpv4(req.socket.remoteAddress ?? '');
    const code: ErrorCode = isBanned(server.guards, this.#observer.guards, peer)
      ? 'SLUICE_E_AUTH_BANNED'
      : 'SLUICE_E_CLIENT_BAD_REQUEST';
    Exchange.refused(
      req.socket,
      { method: 'CONNECT', url: req.url ?? '' },
      this.#scheme,
      server,
      code,
      this.#observer,
      (id) => refuseStream(res, code, id),
    );
  }

  /**
   * Stops accepting and drains: requests in flight finish and their connections close after the
   * answer (`Connection: close`); an idle keep-alive connection gets a moment to send one more
   * request (answered, then closed) and is closed once it stays silent for two sweeps 100 ms
   * apart. Closing idle connections at once, as Node's `server.close()` does, resets a client
   * whose next request is already on the wire. WebSocket tunnels stay until they close or the
   * deadline; at `deadlineMs` whatever is left is closed.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#draining = true;
    // HTTP/2: GOAWAY; streams in flight finish, then each session closes itself.
    for (const session of this.#sessions) goAway(session);
    const server = this.#server as NodeServer & { closeIdleConnections: () => void };
    // Node >= 19 closes idle connections inside close(); the sweep below does it gracefully.
    const closeIdle = server.closeIdleConnections;
    server.closeIdleConnections = () => undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections = closeIdle;
    const sweep = setInterval(() => this.#sweepIdle(), DRAIN_SWEEP_MS);
    await new Promise<void>((resolve) => {
      const done = () => {
        if (this.#sockets.size > 0 || this.#handshaking.size > 0 || this.#inflight > 0) return;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(resolve, deadlineMs);
      timer.unref();
      this.#idle = done;
      done();
    });
    clearInterval(sweep);
    clearInterval(this.#sendSweep);
    this.#idle = null;
    // What is still in flight (open tunnels included) is cut by the deadline, and logged as such
    // before its connection closes: the instance destroys its upstream pools next, which may fail
    // the attempts before the connections' 'close' events have been seen (see Exchange.cut).
    for (const x of this.#cuttable()) x.cut('SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT');
    // The RST_STREAMs of cut HTTP/2 streams are written on the next turn: a connection closed now
    // dropped them, and the client saw its stream end with the connection, not as reset.
    if (this.#sessions.size > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const socket of this.#sockets) socket.destroy();
    for (const socket of this.#handshaking) socket.destroy();
    for (const socket of this.#tunnels) socket.destroy();
    this.#tls?.close();
    await closed;
  }

  #sendSweep: NodeJS.Timeout | undefined = undefined;

  /**
   * nginx's send_timeout: closes a connection whose client took no byte of an answer for
   * `limits.send_timeout`. Nothing else did: a client that stopped reading held its connection,
   * the upstream connection behind it and the buffered answer for as long as it liked (79 s in a
   * test, and counting). A sweep, not a timer per write: nothing is added to the request path.
   * Progress is the bytes the kernel took (`bytesWritten` counts what is still queued, so the
   * queue's length is taken off). HTTP/2 streams are timed one by one (#sweepStalledStreams).
   * A WebSocket tunnel's client is timed the same way: one that sent but read nothing held its
   * tunnel for good (its own traffic kept `timeouts.read` from firing), with what the target sent
   * it queued.
   */
  #sweepStalledSends(): void {
    const limit = this.#table.limits.sendTimeoutMs;
    if (limit === 0) return;
    const now = performance.now();
    if (this.#h2Answers.size > 0) this.#sweepStalledStreams(limit, now);
    for (const socket of this.#sockets as Iterable<ClientSocket>) {
      const queued = socket.writableLength;
      if (queued === 0 || socket[kH2] === true) {
        socket[kSendSince] = undefined;
        continue;
      }
      if (stalled(socket, socket.bytesWritten - queued, now, limit)) {
        const x = socket[kExchange];
        if (x?.status === 101 && this.#tunnels.has(socket)) {
          // A WebSocket (proxied or a handler's) whose client reads nothing: nginx's upgraded
          // connections time their client's writes with send_timeout too. Logged at the cut, still
          // 101, as a tunnel cut by shutdown_timeout is.
          x.cut('SLUICE_E_CLIENT_SEND_TIMEOUT');
        } else {
          // The answer in progress is logged with why its client was cut and the status it was
          // sent, as over HTTP/2 and in nginx (Node's own reference to it); it was a 499, as if the
          // client left.
          const res = (socket as { _httpMessage?: TrackedResponse | null })._httpMessage;
          res?.[kResExchange]?.sendTimedOut();
        }
        socket.destroy();
      }
    }
  }

  /**
   * send_timeout per HTTP/2 stream. Its connection is shared, so the progress is the stream's own:
   * the bytes written to it (`bytesOut`) less those still waiting in it (`writableLength`). A write
   * is done once nghttp2 has sent all of it, which a shut flow-control window, the stream's or the
   * connection's, holds back; a proxied answer is written an upstream read (at most 64 KB) at a
   * time, so a client taking 1 KB/s keeps its stream under the 60 s default. A stream that made no
   * progress for send_timeout is reset (Exchange.sendTimedOut), and its close cancels the upstream
   * request. Before, nothing timed them: a client that advertised a window of 0 held 10 streams,
   * and their 10 upstream connections, for 150 s and counting (10 connections of 128 streams held
   * 1,280, and 100 MB), and a session sent GOAWAY (keepalive_timeout, drain) waited for them. A
   * reset the connection does not carry either (a client that reads nothing at all: nghttp2 sends
   * nothing more, and closes the stream only once its RST_STREAM is out) has the stream destroyed
   * a send_timeout later.
   */
  #sweepStalledStreams(limit: number, now: number): void {
    for (const res of this.#h2Answers) {
      const stream = res.stream;
      if (stream === undefined || stream.destroyed) continue;
      if (res[kSendReset] === true) {
        if (now - res[kSendSince]! >= limit) stream.destroy();
        continue;
      }
      const waiting = stream.writableLength;
      if (waiting === 0) {
        res[kSendSince] = undefined;
        continue;
      }
      const x = res[kResExchange]!;
      if (stalled(res, x.bytesOut - waiting, now, limit)) {
        res[kSendReset] = true;
        res[kSendSince] = now;
        x.sendTimedOut();
      }
    }
  }

  /**
   * Ends the TLS connections whose client certificate was checked under a policy their server no
   * longer has (tls-terminator.ts), as nginx's retiring workers end theirs on a reload: an idle
   * HTTP/1.1 connection is closed at once, a busy one once its answer is out, without serving
   * another request; an HTTP/2 connection gets GOAWAY (its streams in flight finish, no new one
   * starts). A WebSocket tunnel, an answer that never ends, is closed at once: a client whose CA
   * was taken out of the bundle keeps nothing open.
   */
  #endStaleTls(): void {
    const terminator = this.#tls!;
    let ended = 0;
    for (const session of this.#sessions) {
      // A session closing already needs no GOAWAY, and its socket may be gone.
      if (session.closed || session.destroyed) continue;
      if (!terminator.stale(session.socket as tls.TLSSocket)) continue;
      goAway(session);
      ended++;
    }
    for (const socket of this.#sockets as Iterable<ClientSocket & tls.TLSSocket>) {
      if (socket[kH2] === true || !terminator.stale(socket)) continue;
      if (this.#tunnels.has(socket)) socket.destroy();
      else closeAfterAnswer(socket);
      ended++;
    }
    // An answer that never ends (server-sent events, a long poll, a streamed download) would keep
    // its connection for good: what is left at shutdown_timeout is cut, as a drain cuts it.
    const graceMs = this.#staleTlsGraceMs?.() ?? STALE_TLS_GRACE_MS;
    const timer = setTimeout(() => this.#cutStaleTls(), graceMs);
    timer.unref();
    // Said once per change, so that a wave of reconnections has its cause in the log.
    this.#tlsClientCertsChanged?.({
      listener: this.#table.address.key,
      connections: ended,
      grace_ms: graceMs,
    });
  }

  /** Cuts what is still open of the connections #endStaleTls ended (a drain cuts them itself). */
  #cutStaleTls(): void {
    const terminator = this.#tls;
    if (terminator === null || this.#draining) return;
    // (An HTTP/2 request's socket is Node's proxy of its session's, which throws once that is gone.)
    const stale = (socket: unknown) => {
      try {
        return socket != null && terminator.stale(socket as tls.TLSSocket);
      } catch {
        return false;
      }
    };
    for (const x of this.#cuttable()) if (stale(x.req.socket)) x.cut('SLUICE_E_AUTH_CLIENT_CERT_CHANGED');
    for (const session of this.#sessions) if (!session.destroyed && stale(session.socket)) session.destroy();
    for (const socket of this.#sockets) if (stale(socket)) socket.destroy();
  }

  /**
   * What a cut may end: the exchanges in flight, and the HTTP/2 answers whose line waits for their
   * stream to send them (Exchange.responseClosed). Those are not put in #active, which cost every
   * HTTP/2 request 0.9 µs of worker CPU (27.7 against 28.7 µs: a respond route, 64 streams on one
   * connection, medians of 10 runs). Exchange.cut passes over one logged already.
   */
  *#cuttable(): Generator<Exchange> {
    yield* this.#active;
    for (const res of this.#h2Answers) {
      const x = res[kResExchange];
      if (x !== undefined) yield x;
    }
  }

  /** Closes connections with no request in progress that received nothing since the last sweep. */
  #sweepIdle(): void {
    for (const socket of this.#sockets as Iterable<ClientSocket>) {
      if (this.#tunnels.has(socket) || socket[kH2] === true || (socket[kBusy] ?? 0) > 0) continue;
      if (socket[kSeen] === socket.bytesRead) socket.destroy();
      else socket[kSeen] = socket.bytesRead;
    }
  }
}

/**
 * Closes an HTTP/1.1 connection once the answer in progress is out, at once when there is none;
 * the requests waiting behind that answer (pipelined) are dropped unanswered, as nginx drops them.
 */
function closeAfterAnswer(socket: ClientSocket): void {
  socket[kPipelined] = undefined;
  const current = socket[kExchange];
  if (!current || current.finished) {
    socket.destroySoon();
    return;
  }
  if (!current.res.headersSent) current.res.shouldKeepAlive = false;
  // With its head out, the answer keeps the connection, and Node hands it the next request it
  // reads: behind a refused pipelined request, which nothing answered, the connection stayed open
  // for ever (25 s and counting in a test). It closes once that answer is out; a request read after
  // it finds the connection's end written and is dropped (#onRequest).
  current.res.once('finish', () => socket.destroySoon());
}

/** 'end' of a request answered before its body was read (`this`): its connection lets it go. */
function forgetAnswered(this: http.IncomingMessage): void {
  const socket = this.socket as ClientSocket | null;
  if (socket?.[kExchange]?.req === this) socket[kExchange] = null;
}

function newTerminator(
  table: ListenerTable,
  logError: ListenerErrorLog,
  hooks: ListenerHooks,
  clientCertsChanged: () => void,
): TlsTerminator {
  const events: TlsTerminatorHooks = {
    failed: logError,
    clientCertsChanged,
    ...(hooks.tlsReloaded === undefined ? {} : { reloaded: hooks.tlsReloaded }),
    ...(hooks.tlsCopyInUse === undefined ? {} : { copyInUse: hooks.tlsCopyInUse }),
    ...(hooks.tlsRefused === undefined ? {} : { refused: hooks.tlsRefused }),
  };
  try {
    return new TlsTerminator(table, events, hooks.tlsWatchIntervalMs);
  } catch (err) {
    throw tlsListenError(table, err);
  }
}

/** A certificate that cannot be loaded, as a listen failure. */
function tlsListenError(table: ListenerTable, err: unknown): SluiceError {
  const reason = err instanceof Error ? err.message : String(err);
  return new SluiceError('SLUICE_E_RUNTIME_LISTEN', `cannot serve TLS on ${table.address.key}: ${reason}`, {
    cause: err,
  });
}

/** Bytes a client may send before the target answers its upgrade; past them it is read no further. */
const EARLY_UPGRADE_BYTES = 64 * 1024;

/**
 * Reads an upgrading client until the target answers. Node leaves the socket unread after
 * 'upgrade', so a client that gave up during the handshake was noticed only at the target's answer:
 * the attempt held its target (least_conn, max_conns) for up to timeouts.read and was logged 101.
 * Read, its end destroys the socket and so closes the response: the attempt is cancelled, logged 499.
 * Bytes a client sends before the 101 are kept for the tunnel, which writes `upgradeHead` first.
 */
function readUntilUpgraded(socket: Socket, x: Exchange): void {
  const onData = (chunk: Buffer): void => {
    // From the 101 on, the tunnel reads the socket itself (it starts synchronously after the status).
    if (x.status === 101 || x.finished) {
      socket.off('data', onData);
      return;
    }
    x.upgradeHead = x.upgradeHead === null ? chunk : Buffer.concat([x.upgradeHead, chunk]);
    // A client that sends much before the answer is read no further until the tunnel starts.
    if (x.upgradeHead.length > EARLY_UPGRADE_BYTES) socket.pause();
  };
  socket.on('data', onData);
  // The server is half-open (allowHalfOpen), and Node's own 'end' handling left with the upgrade.
  socket.once('end', () => {
    if (x.status !== 101 && !x.finished) socket.destroy();
  });
}

/** `h2c` as one of the protocols of an Upgrade value. */
const H2C_TOKEN = /(?:^|,)\s*h2c\s*(?:,|$)/i;

/** An Upgrade value without its `h2c` entries ('' when nothing else was offered). */
function withoutH2c(upgrade: string): string {
  return upgrade
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '' && p.toLowerCase() !== 'h2c')
    .join(', ');
}

/** Replaces the request's Upgrade value, in the parsed headers and the raw ones the gateway reads. */
function setUpgrade(req: http.IncomingMessage, value: string): void {
  req.headers.upgrade = value;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (headerName(raw[i]!) === 'upgrade') raw[i + 1] = value;
}

function destroySession(session: http2.ServerHttp2Session): void {
  session.destroy();
}

/**
 * Answers an HTTP/2 stream that cannot be served with the code's problem document and the id of
 * its access line; the body bytes sent.
 */
function refuseStream(res: http2.Http2ServerResponse, code: ErrorCode, requestId: string): number {
  const body = problemBody(code, requestId);
  const bytes = Buffer.byteLength(body);
  res.writeHead(ERROR_CATALOGUE[code].status, {
    'content-type': 'application/problem+json',
    'content-length': bytes,
    'x-sluice-error-id': requestId,
  });
  res.end(body);
  return bytes;
}

/**
 * The refusals of a request (not of a connection: 503 over max_connections or while draining, 408
 * for a head that never came) that a banned client gets as its ban's 403.
 */
const BANNED_INSTEAD: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SLUICE_E_CLIENT_BAD_REQUEST',
  'SLUICE_E_CLIENT_URI_TOO_LONG',
  'SLUICE_E_CLIENT_HEADERS_TOO_LARGE',
  'SLUICE_E_CLIENT_BODY_TOO_LARGE',
]);

/**
 * Writes a canned error answer with the id of its access line to a socket whose request cannot be
 * served, then closes it; the body bytes sent (none when the socket could only be closed).
 */
function refuse(socket: Socket, code: ErrorCode, requestId: string): number {
  const current = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
  if (socket.writable && (current === undefined || current === null || !current.headersSent)) {
    const answer = rawRefusal(code, requestId);
    socket.end(answer.text, () => socket.destroy());
    return answer.bodyBytes;
  }
  socket.destroy();
  return 0;
}
