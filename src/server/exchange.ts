/**
 * One request and its answer: the per-request state the gateway, the proxy and the access log
 * share. One object per request; its fields are filled as the request moves through the gateway,
 * and `finish` hands it to the observer (access log, metrics) exactly once (an HTTP/2 answer once
 * its stream has sent it, or failed to).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as h2,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { formatDuration } from '../core/duration.js';
import { unmapIpv4 } from '../core/ip-set.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import type { HandlerExchange } from '../handlers/serve-handler.js';
import { newSpanId, newTraceId, parseTraceparent } from '../observability/trace-context.js';
import type { RequestSpan, Tracer } from '../observability/tracer.js';
import type { AttemptCode, AttemptObserver, ProxyExchange } from '../proxy/proxy-exchange.js';
import type { LocalFailureCode } from '../proxy/upstream-error.js';
import type { GuardServices } from '../security/guard-services.js';
import { clientSpiffeId } from './client-identity.js';
import { problemBody } from './error-response.js';
import type { CompiledGuards, CompiledRoute, CompiledServer } from './gateway-tables.js';
import { stopUpload, unsentAtUploadStop } from './h2-stop-upload.js';
import { nextRequestId } from './request-id.js';
import { silenceResponse } from './silence-response.js';

/** Receives what exchanges report: every finished one (access log, metrics), and events on the way. */
export interface ExchangeObserver {
  finished(x: Exchange): void;
  /** A target reached `max_fails` and rests for `fail_timeout` (nginx: "upstream server temporarily disabled"). */
  targetDisabled(x: Exchange, target: string): void;
  /** An upstream attempt failed on this host's side (nginx: "socket() failed ... while connecting to upstream"). */
  localFailure(x: Exchange, code: LocalFailureCode, err: Error): void;
  /** A user handler threw or rejected. */
  handlerError(x: Exchange, err: unknown): void;
  /** An upstream attempt ended (`key` identifies the target). */
  attemptDone(
    key: object,
    upstream: string,
    target: string,
    code: number | AttemptCode,
    seconds: number,
  ): void;
  /** A request is passed on to another attempt. */
  retrying(x: Exchange): void;
  /** Exports spans, when `tracing.otlp_endpoint` is set. */
  readonly tracer: Tracer | null;
  /** Bans, rate limits and strikes. */
  readonly guards: GuardServices;
}

/**
 * A count of the exchanges that still hold something (their stream, an upstream connection), kept
 * per HTTP/2 connection by the listener to bound what one connection runs at once.
 */
export interface LiveCount {
  live: number;
}

/** The state of one request. */
export class Exchange implements ProxyExchange, HandlerExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId = nextRequestId();
  readonly startedAt = performance.now();
  readonly method: string;
  readonly requestUri: string;
  readonly scheme: string;
  readonly #observer: ExchangeObserver;

  /** W3C trace context: this request's trace and span, and the flags and state passed on. */
  traceId = '';
  spanId = '';
  traceFlags = '00';
  tracestate: string | null = null;
  #span: RequestSpan | null = null;
  /** Headers `failWithHeaders` adds to the error answer. */
  #extraHeaders: readonly string[] | null = null;

  server: CompiledServer | null = null;
  /** The security checks that applied (the route's, else the server's). */
  guards: CompiledGuards | null = null;
  route: CompiledRoute | null = null;
  path = '';
  /** The path routes matched: `path` with `%2F` and path characters decoded (routePathOf); usually `path` itself. */
  routePath = '';
  /** The Host header as sent ('' when absent). */
  hostHeader = '';
  query = '';
  hostName = '';
  remoteAddr = '';
  forwardedFor = '';
  forwardedProto = '';
  forwardedHost = '';
  connectionTokens: readonly string[] | null = null;
  bodyKind: 'none' | 'length' | 'chunked' = 'none';
  contentLength = 0;
  /** Upgrade header value (WebSocket), or null. */
  upgrade: string | null = null;
  /** For requests that arrived as an Upgrade (Node's 'upgrade' event): bytes after the head. */
  upgradeHead: Buffer | null = null;
  /** Some attempt was passed on to another target. */
  retried = false;
  expectContinue = false;
  maxBody = 0;

  status = 0;
  bytesOut = 0;
  /** The socket's `bytesWritten` when a Node listener started (HTTP/1.1; -1 otherwise). */
  wireBytesBefore = -1;
  /** A Node listener wrote on the socket of its Upgrade request itself (raw-answer.ts). */
  rawAnswer = false;
  upstream: string | null = null;
  target: string | null = null;
  attempts = 0;
  errorCode: ErrorCode | null = null;
  errorMessage: string | null = null;
  durationMs = 0;
  #finished = false;
  /** The HTTP/2 stream still sending this answer, whole on this side; its line waits for it (#answered). */
  #unsent: ServerHttp2Stream | null = null;
  /** Upstream attempts started and not yet ended (their connection not yet released). */
  #attemptsOpen = 0;
  /** Where this exchange is counted while it holds something (HTTP/2), or null. */
  #liveIn: LiveCount | null = null;
  /** The handler's answer deadline (handler_timeout), cleared when the exchange finishes. */
  #deadline: NodeJS.Timeout | null = null;
  /** Request body bytes received when the deadline was armed (see #overdue). */
  #bodyMark = 0;
  /**
   * Tells the handler that sluice answered in its place (handler_timeout), as a client that left
   * would: set by serve-handler.ts, called with the exchange as `this`.
   */
  abandon: ((this: HandlerExchange, reason: Error) => void) | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, scheme: string, observer: ExchangeObserver) {
    this.req = req;
    this.res = res;
    this.method = req.method ?? 'GET';
    this.requestUri = req.url ?? '/';
    this.scheme = scheme;
    this.#observer = observer;
  }

  /**
   * Logs and counts (through `observer.finished`) an answer written before a request existed: a
   * request head Node's parser refused (400, 431, 408), a connection over max_connections (503),
   * a CONNECT on a gateway listener. Such answers went to the client with no access line, no
   * metric and no ban strike, so a client sending malformed requests was never banned for them.
   * `answer` writes the refusal with this exchange's request id (as `x-sluice-error-id` and the
   * body's `request_id`, as on any error answer) and says how many body bytes it sent.
   */
  static refused(
    socket: Socket,
    request: { readonly method: string; readonly url: string } | null,
    scheme: string,
    server: CompiledServer,
    code: ErrorCode,
    observer: ExchangeObserver,
    answer: (requestId: string) => number,
  ): void {
    const req = {
      method: request?.method ?? '-',
      url: request?.url ?? '',
      socket,
    } as unknown as IncomingMessage;
    const x = new Exchange(req, null as unknown as ServerResponse, scheme, observer);
    x.server = server;
    x.guards = server.guards;
    x.remoteAddr = unmapIpv4(socket.remoteAddress ?? '');
    x.forwardedFor = x.remoteAddr;
    x.status = ERROR_CATALOGUE[code].status;
    x.bytesOut = answer(x.requestId);
    x.errorCode = code;
    x.#finish();
  }

  /** The SPIFFE id of the client's verified certificate ('' when none); computed on first use. */
  get clientSpiffeId(): string {
    return clientSpiffeId(this.req.socket);
  }

  /** First value of a request header by lower-case name (linear scan; headers are few). */
  header(lowerName: string): string | undefined {
    const raw = this.req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
    }
    return undefined;
  }

  /** Answers with a complete response and finishes. */
  respond(status: number, headers: readonly string[], body: Buffer | string): void {
    const res = this.res;
    this.status = status;
    if (this.bodyKind !== 'none' && !this.req.complete && res.shouldKeepAlive) this.#leaveUnreadBody();
    res.writeHead(status, headers as string[]);
    res.end(body);
    // Set, not added: nothing went out before this head, and a Node listener's writes are counted
    // as they go (serve-handler.ts), this `end` among them: added, an HTTP/2 500 counted twice.
    this.bytesOut =
      this.method === 'HEAD' ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    this.#answered();
  }

  /**
   * An answer goes out before the request body was read (a respond route, a redirect, a refusal;
   * answered in the turn that parsed the head, even a `Content-Length: 0` body is not complete
   * yet). Node reads and drops what is left before the next request, as nginx discards a body
   * it does not need, however large: the connection is kept only while that is cheap. A body
   * someone started reading (a proxy attempt, a handler) is theirs, and its connection closes.
   */
  #leaveUnreadBody(): void {
    const req = this.req;
    // An HTTP/2 stream's body is its own: no connection to keep or close, but its upload is stopped.
    if (req.httpVersionMajor !== 1) {
      stopUpload((req as unknown as Http2ServerRequest).stream);
      return;
    }
    if (req.readableFlowing !== null) this.res.shouldKeepAlive = false;
    else if (this.bodyKind === 'chunked') discardChunked(req);
    else if (this.contentLength > UNREAD_BODY_LIMIT) this.res.shouldKeepAlive = false;
    if (this.res.shouldKeepAlive) dropWithin(req, UNREAD_BODY_MS);
  }

  /**
   * The answer is complete while the client is still sending a body someone started reading (a
   * target that answered before it had all of a streamed upload): the reader drops the rest
   * (forward.ts), for at most UNREAD_BODY_MS before the connection closes, as nginx's lingering
   * close; the connection serves the next request if the rest came in time. An HTTP/2 upload is
   * stopped instead.
   */
  dropUnreadBody(): void {
    const req = this.req;
    if (this.bodyKind === 'none' || req.complete) return;
    if (req.httpVersionMajor !== 1) stopUpload((req as unknown as Http2ServerRequest).stream);
    else dropWithin(req, UNREAD_BODY_MS);
  }

  /** Like `fail`, with extra response headers (Retry-After and RateLimit-* on 429). */
  failWithHeaders(code: ErrorCode, headers: readonly string[]): void {
    this.#extraHeaders = headers;
    this.fail(code);
  }

  fail(code: ErrorCode, cause?: unknown): void {
    if (this.#finished) return;
    this.errorCode = code;
    if (cause instanceof Error) this.errorMessage = cause.message;
    const res = this.res;
    if (res.headersSent || res.destroyed || this.rawAnswer) {
      // The answer already started: break it, so the client sees a broken response, never a
      // wrong one (a truncated body with a clean end would look complete). The log says which
      // status the client had been sent. An HTTP/2 stream is reset with INTERNAL_ERROR. One a
      // listener wrote on the socket itself (a WebSocket's 101) is closed with what it wrote, as
      // an answer of sluice's after it would be read as part of it (a 500 as WebSocket frames);
      // its status is its own, or this failure's when its bytes said none.
      if (res.headersSent) this.status = res.statusCode;
      else if (this.rawAnswer && this.status === 0) this.status = ERROR_CATALOGUE[code].status;
      this.#breakAnswer(h2.NGHTTP2_INTERNAL_ERROR, true);
      this.#finish();
      return;
    }
    const status = ERROR_CATALOGUE[code].status;
    const body = problemBody(code, this.requestId);
    if (CLOSING_STATUSES.has(status)) res.shouldKeepAlive = false;
    const headers = [
      'content-type',
      'application/problem+json',
      'content-length',
      String(Buffer.byteLength(body)),
      'x-sluice-error-id',
      this.requestId,
      ...(this.#extraHeaders ?? []),
    ];
    try {
      this.respond(status, headers, body);
    } catch {
      // Node refused the head for a field a handler stored on `res` before it failed (HTTP/2 throws
      // when the head is sent, for two ETags, say): the same throw had left the stream unanswered.
      // The answer goes without the handler's fields; if even that is refused, the answer is broken
      // as any other (an HTTP/2 reset with INTERNAL_ERROR, not destroy()'s NO_ERROR).
      try {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        this.respond(status, headers, body);
      } catch {
        this.#breakAnswer(h2.NGHTTP2_INTERNAL_ERROR);
        this.#finish();
      }
    }
  }

  handlerFailed(err: unknown): void {
    if (this.#finished) {
      // Rejected after the whole answer went out and was logged: said, and nothing else changes.
      // After a client left (499), a rejection is what leaving does to a stream (`pipeline()`'s
      // premature close): not said, as before.
      if (this.res.writableFinished) this.#observer.handlerError(this, err);
      return;
    }
    this.#observer.handlerError(this, err);
    const res = this.res;
    if (res.writableEnded && !res.destroyed) {
      // Thrown once the answer was complete (`res.end()`, then `res.writeHead()`): the answer
      // stands and goes out whole, its access line written as it finishes, with the error. Broken
      // like one cut short, it lost what was still queued (8 MB ended, 4.4 MB reached curl).
      this.errorCode = 'SLUICE_E_HANDLER_ERROR';
      if (err instanceof Error) this.errorMessage = err.message;
      return;
    }
    this.fail('SLUICE_E_HANDLER_ERROR', err);
  }

  /**
   * Answers 504 SLUICE_E_HANDLER_TIMEOUT unless the handler has started its answer (sent its head)
   * within `ms`, as nginx answers 504 for an app behind it after proxy_read_timeout. A handler that
   * never answered (a listener with no `res.end()`, or whose callback threw: the worker logs that and
   * goes on) left its client waiting until the client gave up, logged 499 only then. A stream (SSE)
   * has sent its head and is not timed. The deadline is postponed while a request body is still
   * arriving (the client's time, bounded by request_timeout; nginx starts its timer once it has passed
   * the body on): checked when it passes, so one that made progress gives the handler another `ms`.
   * A timer per handler request that did not answer at once (serve-handler.ts), cleared as it
   * finishes: about 0.3 µs for setTimeout and clearTimeout with 64 in flight, against some 19 µs of
   * worker CPU for a hello-world request.
   */
  answerWithin(ms: number): void {
    if (this.#finished) return;
    this.#bodyMark = this.#bodyReceived();
    this.#deadline = setTimeout(() => this.#overdue(ms), ms);
  }

  #overdue(ms: number): void {
    this.#deadline = null;
    const res = this.res;
    if (this.#finished || res.headersSent) return;
    const received = this.#bodyReceived();
    if (received !== this.#bodyMark) {
      this.answerWithin(ms);
      return;
    }
    // Fields the handler stored (setHeader) before it stalled belong to an answer it never gave.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const reason = new Error(`the handler sent no answer within handler_timeout (${formatDuration(ms)})`);
    reason.name = 'TimeoutError';
    this.fail('SLUICE_E_HANDLER_TIMEOUT', reason);
    this.abandon?.(reason);
  }

  /**
   * Request body bytes received so far, to tell a body still arriving: the connection's on HTTP/1.1
   * (one request at a time), the stream's on HTTP/2 (h2-compat.ts). 0 without a body.
   */
  #bodyReceived(): number {
    if (this.bodyKind === 'none') return 0;
    const req = this.req as IncomingMessage & { bodyBytesReceived?: number };
    return req.httpVersionMajor === 2 ? (req.bodyBytesReceived ?? 0) : (req.socket?.bytesRead ?? 0);
  }

  targetDisabled(target: string): void {
    this.#observer.targetDisabled(this, target);
  }

  localFailure(code: LocalFailureCode, err: Error): void {
    this.#observer.localFailure(this, code, err);
  }

  complete(): void {
    this.#answered();
  }

  /**
   * The answer is whole on this side. Over HTTP/2 its line waits until the stream has sent it: the
   * stream takes an answer that fits in its buffer (a small one, or the end of a large one) at
   * once, so logged now, one whose client kept its flow-control window shut was a clean 200 with
   * its bytes though none of it went (the send_timeout sweep then only reset the stream). The
   * stream's close logs it (responseClosed), sent or not; the sweep, as a send timeout
   * (sendTimedOut). An HTTP/1.x answer is logged now: the kernel takes a small one whether the
   * client reads or not, and nginx counts it sent then.
   */
  #answered(): void {
    if (this.#finished) return;
    const stream = this.#h2Stream();
    if (stream !== undefined && !stream.writableFinished) {
      // Closed already: a Node listener's answer is done with its stream's close.
      if (stream.destroyed) this.#notSent(stream);
      else this.#unsent = stream;
    }
    this.#finish();
  }

  /**
   * The response closed (the listener's 'close' of it, which over HTTP/2 is its stream's): the line
   * of an answer that waited for its stream (#answered) is written now, sent or not. The listener
   * watches every response already: no listener of its own on the stream.
   */
  responseClosed(): void {
    const stream = this.#unsent;
    if (stream === null) return;
    this.#unsent = null;
    if (!stream.writableFinished) this.#notSent(stream);
    this.#log();
  }

  /** The HTTP/2 stream of this answer (undefined over HTTP/1.x). */
  #h2Stream(): ServerHttp2Stream | undefined {
    return this.req.httpVersionMajor === 2 ? (this.res as unknown as Http2ServerResponse).stream : undefined;
  }

  /**
   * The stream of a whole answer closed before it sent all of it: the client reset it or its
   * connection went (a 499, as for any answer it left), or sluice gave up on a stopped upload
   * whose client kept its window shut (a send timeout, with the status it was sent). Only what
   * went out is counted.
   */
  #notSent(stream: ServerHttp2Stream): void {
    const unsent = unsentAtUploadStop(stream);
    if (unsent === null) {
      this.#countSent(stream.writableLength);
      this.status = 499;
    } else {
      this.#countSent(unsent);
      this.errorCode = 'SLUICE_E_CLIENT_SEND_TIMEOUT';
    }
  }

  /**
   * Counts in `bytesOut` only what an HTTP/2 stream sent of the answer: the `unsent` bytes of the
   * writes still queued on it did not go out (whole writes, as Node counts them: one sent in part
   * counts for none).
   */
  #countSent(unsent: number): void {
    this.bytesOut = Math.max(0, this.bytesOut - unsent);
  }

  /** Whether the line is written: the exchange is over, and no HTTP/2 stream holds its answer (#answered). */
  get #logged(): boolean {
    return this.#finished && this.#unsent === null;
  }

  /** Breaks the answer (#breakAnswer) and writes its line now, that of an answer held for its stream too. */
  #breakAndLog(h2Code: number): void {
    const held = this.#unsent !== null;
    this.#unsent = null;
    this.#breakAnswer(h2Code);
    if (held) this.#log();
    else this.#finish();
  }

  /** Whether the client's side of this exchange is gone (its connection or HTTP/2 stream closed). */
  get clientLeft(): boolean {
    const res = this.res as ServerResponse & { stream?: { destroyed: boolean } };
    return res.destroyed === true || res.stream?.destroyed === true;
  }

  clientGone(): void {
    if (this.#logged) return;
    if (this.#unsent !== null) {
      // A whole answer its stream had not sent yet.
      this.#countSent(this.#unsent.writableLength);
      this.status = 499;
    } else if (this.#malformedStream()) {
      // nghttp2 reset the stream as malformed (RST_STREAM with PROTOCOL_ERROR): a request whose
      // DATA disagrees with its content-length, reset before sluice could answer. nginx logs 400 for
      // a malformed request; 499 said the client had left.
      this.status = 400;
      this.errorCode = 'SLUICE_E_CLIENT_BAD_REQUEST';
      this.errorMessage = 'HTTP/2 stream reset with PROTOCOL_ERROR: malformed request';
    } else {
      // nginx's 499: the client closed the connection before the answer was complete.
      this.status = 499;
    }
    this.#breakAndLog(h2.NGHTTP2_CANCEL);
  }

  /**
   * Whether this HTTP/2 request's stream was reset with PROTOCOL_ERROR before its answer began.
   * nghttp2 resets a malformed stream so; a client's own reset with that code reads the same (Node
   * tells them apart nowhere), and it too says the request went wrong, not that the client left.
   */
  #malformedStream(): boolean {
    if (this.req.httpVersionMajor !== 2 || this.res.headersSent) return false;
    const stream = (this.res as unknown as Http2ServerResponse).stream;
    return stream?.rstCode === h2.NGHTTP2_PROTOCOL_ERROR;
  }

  /**
   * Ends an answer that will not be complete so that no client takes it for one: HTTP/1.1 closes
   * the connection (a body short of its length, or with no last chunk), HTTP/2 resets the stream
   * with `h2Code` (RFC 9113 8.1: only END_STREAM completes an answer). Node's `destroy()` resets an
   * HTTP/2 stream with NO_ERROR, which curl and Node's client read as a clean end (curl exited 0).
   * With `flush` (the answer failed on this side), what was written to an HTTP/1.1 connection goes
   * out before it closes, as when an upstream is cut mid-body (the client is not what stopped it).
   */
  #breakAnswer(h2Code: number, flush = false): void {
    const res = this.res;
    if (this.req.httpVersionMajor !== 2) {
      const socket = this.req.socket;
      // Node corks the socket while a response writes, and uncorks it a tick later: a listener that
      // wrote its head and a part and threw in the same tick had them destroyed unsent (the client
      // got nothing, curl's "empty reply", while the log said 200 and 167 bytes). Uncorked, they go
      // to the kernel now; what it cannot take yet is waited for (a write's callback comes once
      // those before it are out), bounded by send_timeout as any answer.
      if (flush && !res.destroyed && socket !== null && !socket.destroyed) {
        while (socket.writableCorked > 0) socket.uncork();
        if (socket.writableLength > 0) {
          this.#countWire();
          // Nothing more may join the queue: a write or end() the handler still makes would go out
          // before the close, and a cut body would end cleanly (4 of 4 runs with a 32 MB write to a
          // client reading late: a complete chunked 200).
          silenceResponse(res, new Error('the answer was broken'));
          socket.write(EMPTY, () => res.destroy());
          return;
        }
      }
      this.#countWire();
      if (!res.destroyed) res.destroy();
      return;
    }
    const stream = (res as unknown as Http2ServerResponse).stream;
    if (stream === undefined || stream.destroyed) return;
    // Not a close with NO_ERROR: that would wait for the queued data to go out first.
    if (!stream.closed) stream.close(h2Code);
    else res.destroy();
  }

  /**
   * A Node listener's answer is counted on the wire (serve-handler.ts): what the socket took so
   * far (HTTP/1.1; `wireBytesBefore` is -1 otherwise).
   */
  #countWire(): void {
    if (this.wireBytesBefore >= 0) this.bytesOut = this.req.socket.bytesWritten - this.wireBytesBefore;
  }

  /**
   * sluice closes the connection of this request, unanswered or part-way (`shutdown_timeout` ran
   * out): logged at once with `code`, as a client that left is (499, nothing more sent; an HTTP/2
   * stream is reset with CANCEL, the stream no longer being served, RFC 9113 7). Left to
   * the closing socket and upstream pools, the cut was logged as a failure of a healthy target,
   * retried on another, or, for a handler, not at all. An open tunnel (WebSocket) is logged now
   * with the 101 its client got, `code`, and its duration and bytes so far; its sockets are closed
   * next by the listener. Left to their 'close' events, its line came after the instance had
   * stopped logging (a worker exits then): none at all.
   */
  cut(code: ErrorCode): void {
    if (this.#logged) return;
    this.errorCode = code;
    if (this.status === 101) {
      // A WebSocket a Node listener accepted is counted on the wire (serve-handler.ts).
      this.#countWire();
      this.#finish();
    } else this.clientGone();
  }

  /**
   * The client took nothing of the answer for send_timeout (http-listener.ts): logged with
   * SLUICE_E_CLIENT_SEND_TIMEOUT and the status it was sent (not 499: the client did not leave), as
   * nginx logs it. HTTP/1.x closes the connection; an HTTP/2 stream is reset with CANCEL, as a stopped
   * upload whose window stays shut is
   * (RFC 9113 7: no longer served; nothing failed on this side, which INTERNAL_ERROR would say).
   * The stream's close cancels the upstream request behind it (forward.ts). Only what the stream
   * sent is counted; a whole answer it had not sent was not logged yet (#answered), and is now.
   * An HTTP/1.x answer logged already (whole, its end still queued) keeps its line.
   */
  sendTimedOut(): void {
    if (!this.#logged) {
      this.errorCode = 'SLUICE_E_CLIENT_SEND_TIMEOUT';
      this.status = this.res.statusCode;
      const stream = this.#h2Stream();
      if (stream !== undefined) this.#countSent(stream.writableLength);
    }
    this.#breakAndLog(h2.NGHTTP2_CANCEL);
  }

  /**
   * Whether the exchange is over: answered, failed, or cut. Its line is written then, or, for an
   * HTTP/2 answer whose stream has not sent it all yet, once that is settled (#answered).
   */
  get finished(): boolean {
    return this.#finished;
  }

  /** Continues the client's trace (or starts one), with a span when spans are exported. */
  startTrace(traceparent: string | null, tracestate: string | null): void {
    const parent = parseTraceparent(traceparent);
    this.tracestate = parent === null ? null : tracestate;
    const tracer = this.#observer.tracer;
    if (tracer !== null) {
      const span = tracer.startRequest(this.method, this.path, parent, this.tracestate);
      this.#span = span;
      this.traceId = span.traceId;
      this.spanId = span.spanId;
      this.traceFlags = span.flags;
    } else {
      this.traceId = parent?.traceId ?? newTraceId();
      this.spanId = newSpanId();
      this.traceFlags = parent?.flags ?? '00';
    }
  }

  attemptStarted(upstream: string, target: { readonly origin: string }): AttemptObserver {
    const started = performance.now();
    const span = this.#span?.attempt(upstream, target.origin) ?? null;
    const observer = this.#observer;
    this.#attemptsOpen++;
    const x = this;
    return {
      traceparent: `00-${this.traceId}-${span?.spanId ?? this.spanId}-${this.traceFlags}`,
      done(code, failure) {
        observer.attemptDone(target, upstream, target.origin, code, (performance.now() - started) / 1000);
        span?.end(code, failure);
        x.#attemptsOpen--;
        if (x.#finished) x.#release();
      },
    };
  }

  /**
   * Counts this exchange in `count` until it is finished and its upstream attempts have released
   * their connections. A client that resets its stream finishes the exchange at once (499), while
   * the attempt behind it holds an upstream connection until that connection is open and can be
   * aborted: counting streams alone let one HTTP/2 connection hold 982 upstream connections
   * (Rapid Reset, CVE-2023-44487) under a limit of 128 streams.
   */
  countLiveIn(count: LiveCount): void {
    if (this.#finished && this.#attemptsOpen === 0) return;
    count.live++;
    this.#liveIn = count;
  }

  /** Leaves the live count once nothing is held any more. */
  #release(): void {
    const count = this.#liveIn;
    if (count === null || this.#attemptsOpen > 0) return;
    this.#liveIn = null;
    count.live--;
  }

  retrying(): void {
    this.#observer.retrying(this);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#deadline !== null) {
      clearTimeout(this.#deadline);
      this.#deadline = null;
    }
    if (this.#unsent === null) this.#log();
  }

  /** Hands the exchange to the observer (access log, metrics, span), once. */
  #log(): void {
    this.durationMs = performance.now() - this.startedAt;
    // Answered before its trace started (a refused head, 431, 408, a CONNECT, a 414): a fresh
    // trace id, as for any request without traceparent, so that every access line has one.
    if (this.traceId === '') this.traceId = newTraceId();
    this.#span?.end(this.route?.name ?? null, this.status, this.errorCode);
    this.#observer.finished(this);
    if (this.#liveIn !== null) this.#release();
  }
}

/**
 * After a request refused with one of these the connection cannot be trusted to be in step (its
 * body, if any, was never read): it is closed, as nginx does (414 included, and 405, which only
 * TRACE gets).
 */
const CLOSING_STATUSES: ReadonlySet<number> = new Set([400, 405, 408, 413, 414, 431]);

/** Written after what is queued on a socket, to learn when that is out. */
const EMPTY = Buffer.alloc(0);

/** Bytes of an unread request body dropped to keep its connection (nginx discards any, for up to 30 s). */
const UNREAD_BODY_LIMIT = 64 * 1024;

/**
 * How long the rest of an answered request's body may take to arrive (nginx's lingering_timeout).
 * Without it, a client that announced a body and sent it slowly kept its connection (and a
 * `max_connections` place) for the whole `request_timeout`, after which Node wrote a 408 that no
 * request asked for behind the answer: a refused (403, 429) client held it for 60 s.
 */
const UNREAD_BODY_MS = 5000;

/** Closes the connection once the response is out if `req`'s body has not ended within `ms`. */
function dropWithin(req: IncomingMessage, ms: number): void {
  const timer = setTimeout(() => req.socket.destroySoon(), ms);
  timer.unref();
  const done = (): void => clearTimeout(timer);
  req.once('end', done);
  req.once('close', done);
}

/**
 * Reads and drops a chunked body whose request was answered. Its size is unknown until it ends:
 * once over UNREAD_BODY_LIMIT the connection closes after the answer, and the requests behind it
 * are not served (http-listener.ts).
 */
function discardChunked(req: IncomingMessage): void {
  let dropped = 0;
  const onData = (chunk: Buffer): void => {
    dropped += chunk.length;
    if (dropped <= UNREAD_BODY_LIMIT) return;
    req.off('data', onData);
    req.socket.destroySoon();
  };
  req.on('data', onData);
}
