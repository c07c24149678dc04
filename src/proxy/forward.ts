/**
 * Forwarding one request: pick a target, send, and on failure go on to the next target by
 * nginx's rules (retry-policy.ts), streaming the answer back with back-pressure both ways.
 *
 *   body? ─no──────────────────────────────────────────────┐
 *     └─yes─▶ buffer ≤ 64 KiB ─ended──▶ Buffer (replayable) ─┤
 *                  └─more─▶ stream the rest (not replayable)─┴─▶ ProxyRequest.next()
 *   next(): pick target (not yet tried) ─▶ UpstreamCall.send ─▶ onHeaders ─▶ writeHead ─▶ onData… ─▶ onComplete
 *                                              └── error / listed status ─▶ decideRetry ─▶ next() | answer
 *
 * Requests go through sluice's own HTTP/1.1 client (h1-client.ts), whatever their body and over TLS
 * for https targets, so every answer meets one strict parser; only Upgrade requests go through
 * undici. `UpstreamCall` is the handler of both: it implements undici's handler interface
 * in its original form (`onConnect`, `onHeaders` with raw `Buffer` headers): handlers with
 * `onRequestStart` are wrapped by undici in an adapter that parses every response header into an
 * object first, a cost the proxy never needs. A 101 answer to an Upgrade request turns the call
 * into a tunnel (tunnel.ts).
 */
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors/catalogue.js';
import { awaitConnection, type ReuseListener } from './connection-reuse.js';
import type { H1Handler } from './h1-client.js';
import type { AttemptBreak, AttemptCode, AttemptObserver, ProxyExchange } from './proxy-exchange.js';
import { type ProxyRoute, upstreamPath } from './proxy-route.js';
import { upstreamRequestHeaders } from './request-headers.js';
import { clientResponseHeaders, writeTargetHead } from './response-headers.js';
import { type AttemptFailure, countsAsFailure, decideRetry } from './retry-policy.js';
import { openTunnel } from './tunnel.js';
import { corkUntilTurnEnd, flushAtTurnEnd, type TurnFlush } from './turn-batch.js';
import type { Upstream, UpstreamPick } from './upstream.js';
import { isBodylessLengthMismatch, isLocalFailure, upstreamErrorCode } from './upstream-error.js';
import type { UpstreamTarget } from './upstream-target.js';

/**
 * Request bodies up to this size are read completely before the upstream is contacted: framing
 * errors in them are answered 400 with nothing forwarded, and they can be replayed on a retry.
 * Larger bodies are streamed, so a 1 GB upload keeps memory flat (and is not retried once sent).
 */
export const BODY_BUFFER_LIMIT = 64 * 1024;

type Body = Buffer | AsyncIterable<Buffer> | null;

/** Forwards the request of `x` along `route`. Never throws: every failure becomes `x.fail(...)`. */
export function forward(x: ProxyExchange, route: ProxyRoute): void {
  x.upstream = route.upstream.name;
  // A prefix matched through a decoded escape (x.routePath: `%2F`, `%40`...) is stripped from that
  // decoded form, which holds no character a path may not; a `%2F` after the prefix stays as sent.
  const strip = route.stripPrefix;
  const stripFrom =
    strip === '' || (x.path.startsWith(strip) && !x.path.startsWith('%2F', strip.length))
      ? x.path
      : x.routePath;
  const path = upstreamPath(route, stripFrom, x.query);
  if (path === null) {
    x.fail('SLUICE_E_CLIENT_BAD_REQUEST', new Error('stripping the prefix leaves a dot segment'));
    return;
  }
  // An announced body over max_body was refused before (gateway.ts); a chunked one is counted below.
  const request = new ProxyRequest(x, route, path);
  if (x.bodyKind === 'none') request.start(null, true);
  else readBody(x, request).catch((err: unknown) => x.fail('SLUICE_E_CLIENT_BAD_REQUEST', err));
}

async function readBody(x: ProxyExchange, request: ProxyRequest): Promise<void> {
  // The body is wanted (its size is within max_body, checked above): invite it now.
  if (x.expectContinue) x.res.writeContinue();
  const it = x.req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    let step: IteratorResult<Buffer>;
    try {
      step = await it.next();
    } catch {
      // The client aborted, or sent bad framing (the listener's clientError answers that).
      x.clientGone();
      return;
    }
    if (step.done) break;
    size += step.value.length;
    if (size > x.maxBody) {
      x.fail('SLUICE_E_CLIENT_BODY_TOO_LARGE');
      return;
    }
    chunks.push(step.value);
    // Answered meanwhile (an HTTP/2 request_timeout): what was read is not the whole body.
    if (x.finished) return;
    if (size > BODY_BUFFER_LIMIT) {
      request.start(streamRest(chunks, it, size, x.maxBody, request), false);
      return;
    }
  }
  request.start(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), true);
}

/**
 * The body of a large request: the chunks already read, then the rest as the upstream client
 * pulls it. The client (h1-body-writer.ts, or undici for an Upgrade request) pulls the next chunk only
 * once the previous one is written, so a target that stops reading stalls this generator;
 * `timeouts.send` bounds such a stall (nginx `proxy_send_timeout`).
 */
async function* streamRest(
  first: Buffer[],
  it: AsyncIterator<Buffer>,
  size: number,
  maxBody: number,
  request: ProxyRequest,
): AsyncGenerator<Buffer> {
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    timer = request.armSendTimer();
  };
  const disarm = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  // Whether the client has more to send: the writer stopped pulling (an answer complete before
  // the body, a failed attempt), not the body ending or failing (the catch below).
  let open = true;
  try {
    for (const chunk of first) {
      arm();
      yield chunk;
      disarm();
    }
    let total = size;
    for (;;) {
      const step = await it.next();
      // A body cut short ends with an error, never here (h2-compat.ts, http-listener.ts).
      if (step.done) {
        open = false;
        return;
      }
      total += step.value.length;
      if (total > maxBody) throw new BodyTooLargeError();
      arm();
      yield step.value;
      disarm();
    }
  } catch (err) {
    open = false;
    throw err;
  } finally {
    disarm();
    if (open) void dropRest(it);
  }
}

/**
 * Reads and drops the rest of a body nothing will send on, as nginx discards it: left unread it
 * filled the socket buffers and its client waited in its write until request_timeout. The
 * connection closes if the rest takes over 5 s (`Exchange.dropUnreadBody`), or with the failed
 * answer that stopped it, which ends this read.
 */
async function dropRest(it: AsyncIterator<Buffer>): Promise<void> {
  try {
    while (!(await it.next()).done);
  } catch {
    // The client left or sent bad framing: nothing to drop any more.
  }
}

/** Thrown by the body stream into the client writing it; mapped back to 413. */
class BodyTooLargeError extends Error {
  readonly code = 'SLUICE_BODY_TOO_LARGE';
}

/** Aborts the attempt when the target stops reading the body for `timeouts.send`. */
class SendTimeoutError extends Error {
  readonly code = 'SLUICE_SEND_TIMEOUT';
  constructor() {
    super('the upstream stopped reading the request body for timeouts.send');
  }
}

/** The client closed its connection; the attempt is abandoned without an answer. */
class ClientGoneError extends Error {
  readonly code = 'SLUICE_CLIENT_GONE';
}

/** Aborts an attempt whose status answer is discarded for a retry. */
class RetryingError extends Error {
  readonly code = 'SLUICE_RETRYING';
}

/** One proxied request across its attempts: the retry bookkeeping and the pick context. */
class ProxyRequest implements UpstreamPick {
  readonly x: ProxyExchange;
  readonly route: ProxyRoute;
  readonly upstream: Upstream;
  readonly key: string;
  /** The path and query sent to every target tried (upstreamPath). */
  readonly path: string;
  now = 0;
  #tried: Set<UpstreamTarget> | null = null;
  #body: Body = null;
  #replayable = true;
  #startedAt = 0;
  #staleRetries = 0;
  #current: UpstreamCall | null = null;

  constructor(x: ProxyExchange, route: ProxyRoute, path: string) {
    this.x = x;
    this.route = route;
    this.path = path;
    this.upstream = route.upstream;
    const u = this.upstream;
    this.key = u.config.balance === 'ip_hash' ? x.remoteAddr : u.hashKey === null ? '' : u.hashKey(x);
  }

  usable(t: UpstreamTarget): boolean {
    return this.upstream.usable(t, this.now) && (this.#tried === null || !this.#tried.has(t));
  }

  /** Starts the first attempt with the request body. */
  start(body: Body, replayable: boolean): void {
    this.#body = body;
    this.#replayable = replayable;
    this.#startedAt = Date.now();
    this.#next(null);
  }

  /**
   * Picks a target not yet tried and sends. After a `failed` attempt this is a retry, counted as
   * one (metrics, `retried`) only when another target takes the request. When no target can be
   * picked the answer is 502 NO_LIVE, after a failure too, as nginx's "no live upstreams": tries
   * remained (decideRetry stops once every target was tried, and then the failure answers), but
   * every target left is resting, down or full.
   */
  #next(failed: { code: ErrorCode; err: Error } | null): void {
    this.now = Date.now();
    const target = this.upstream.pick(this);
    if (target === null) {
      this.x.fail('SLUICE_E_UPSTREAM_NO_LIVE', failed?.err);
      return;
    }
    if (failed !== null) {
      this.x.retried = true;
      this.x.retrying();
    }
    this.#send(target);
  }

  /** Sends to `target`; on a new connection when `fresh` (the keep-alive race's retry). */
  #send(target: UpstreamTarget, fresh = false): void {
    const call = new UpstreamCall(this, target);
    this.#current = call;
    call.send(this.#body, fresh);
  }

  /** A timer that aborts the current attempt after `timeouts.send` without progress. */
  armSendTimer(): NodeJS.Timeout | null {
    const ms = this.route.sendTimeoutMs;
    if (ms <= 0) return null;
    return setTimeout(() => this.#current?.abort(new SendTimeoutError()), ms).unref();
  }

  #facts(call: UpstreamCall, failure: AttemptFailure) {
    return {
      method: this.x.method,
      failure,
      sent: call.sent,
      reusedConnection: call.reused,
      responseStarted: this.x.res.headersSent,
      replayable: this.#replayable,
      attempts: this.#tried === null ? 1 : this.#tried.size + 1,
      targets: this.upstream.triable,
      elapsedMs: Date.now() - this.#startedAt,
      staleRetries: this.#staleRetries,
    };
  }

  /**
   * The target answered with `status`: true when that answer is to be discarded and the request
   * passed on (a listed status and another target ready); false to relay it.
   *
   * A listed status counts against the target only when the request is passed on because of it,
   * as nginx counts one only in `ngx_http_upstream_next`: an answer relayed to the client (the
   * last try, a POST, no other target) is a success to nginx, whatever its status. Counted before
   * the decision, a 503 from every target of a three-target upstream (max_fails 1) took all three
   * out for fail_timeout, where nginx keeps the last one serving.
   */
  retryOnStatus(call: UpstreamCall, status: number): boolean {
    if (status < 403) {
      this.upstream.succeeded(call.target);
      return false;
    }
    const failure: AttemptFailure = { kind: 'status', status };
    const passOn =
      decideRetry(this.upstream.config.retry, this.#facts(call, failure)) === 'retry' &&
      this.#anotherTarget(call.target);
    if (passOn && countsAsFailure(this.upstream.config.retry, failure, false))
      this.#countFailure(call.target);
    else this.upstream.succeeded(call.target);
    if (!passOn) return false;
    this.#exclude(call.target);
    this.x.retried = true;
    this.x.retrying();
    return true;
  }

  /** The status answer of `call` was discarded: go on (after undici has unwound the old attempt). */
  retryDiscarded(): void {
    queueMicrotask(() => this.#next(null));
  }

  /** An attempt failed before its answer was complete. */
  attemptFailed(call: UpstreamCall, err: Error): void {
    const x = this.x;
    const code = errorCode(err);
    if (x.res.headersSent || x.finished) {
      // The answer had started: nothing can be retried; break it.
      x.fail(code, err);
      return;
    }
    // None is the target's doing: nothing to count against it, and another would fare no better
    // (without a descriptor, no target can be connected to). Out of descriptors (upstream-error.ts)
    // is said in the log, as the access line alone would not tell an operator why.
    const local = isLocalFailure(code);
    if (local || code === 'SLUICE_E_CLIENT_BODY_TOO_LARGE' || code === 'SLUICE_E_RUNTIME_INTERNAL') {
      if (local) x.localFailure(code, err);
      x.fail(code, err);
      return;
    }
    const failure: AttemptFailure = {
      kind:
        code === 'SLUICE_E_UPSTREAM_TIMEOUT'
          ? 'timeout'
          : code === 'SLUICE_E_UPSTREAM_INVALID_RESPONSE'
            ? 'invalid_header'
            : 'error',
    };
    const facts = this.#facts(call, failure);
    const stale = failure.kind === 'error' && call.reused;
    const decision = decideRetry(this.upstream.config.retry, facts);
    // A keep-alive race is forgiven only when it is re-sent: a failure on a reused connection that
    // answers the client (a POST, the race's re-sends used up) counts, as nginx counts it; forgiven
    // either way, a target resetting every POST on 32 pooled connections gave 32 502s before
    // max_fails 1 took it out, where nginx gives one.
    if (countsAsFailure(this.upstream.config.retry, failure, stale && decision === 'retry_stale'))
      this.#countFailure(call.target);
    switch (decision) {
      case 'retry_stale':
        this.#staleRetries++;
        x.retrying();
        // On a fresh connection: the next idle one may be just as stale (taking it, a target with
        // 3 stale idle connections answered 502 after MAX_STALE_RETRIES).
        this.#send(call.target, true);
        return;
      case 'retry':
        this.#exclude(call.target);
        this.#next({ code, err });
        return;
      case 'stop':
        x.fail(code, err);
        return;
    }
  }

  /** Leaves `t` out of the picks still to come for this request. */
  #exclude(t: UpstreamTarget): void {
    this.#tried ??= new Set();
    this.#tried.add(t);
  }

  #anotherTarget(current: UpstreamTarget): boolean {
    this.now = Date.now();
    return this.upstream.targets.some((t) => t !== current && this.usable(t));
  }

  #countFailure(t: UpstreamTarget): void {
    if (this.upstream.failed(t, Date.now())) this.x.targetDisabled(t.origin);
  }
}

/** The handler of one upstream attempt (sluice's client or undici); also watches the client for going away. */
export class UpstreamCall implements ReuseListener, H1Handler, TurnFlush {
  readonly request: ProxyRequest;
  readonly target: UpstreamTarget;
  /** The request started being written to the target. */
  sent = false;
  /** It went out on a reused keep-alive connection. */
  reused = false;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #done = false;
  #clientGone = false;
  #discarding = false;
  #onClientClose: (() => void) | null = null;
  #observer: AttemptObserver | null = null;
  /** The status the target answered, once it did. */
  #status = 0;
  /**
   * The answer's head was written (HTTP/1.x) and nothing of its body yet: Node sends a head only
   * with the first body write, so a target that sends its head and then waits (Server-Sent Events,
   * long polls) had its client wait for the head too. Sent at the turn's end unless body bytes or
   * the end came in the same turn (nearly every answer: no extra write for them).
   */
  #headUnsent = false;
  /** The answer is complete: `flushTurn` ends it. */
  #ending = false;
  /** In the turn's flush list (turn-batch.ts). */
  #flushQueued = false;

  constructor(request: ProxyRequest, target: UpstreamTarget) {
    this.request = request;
    this.target = target;
  }

  /** Sends the request to the target, on a new connection when `fresh`. */
  send(body: Body, fresh: boolean): void {
    const { x, route } = this.request;
    const target = this.target;
    x.target = target.origin;
    x.attempts++;
    target.conns++;
    this.#onClientClose = () => {
      if (this.#done) return;
      this.#clientGone = true;
      this.#abort?.(new ClientGoneError());
    };
    x.res.once('close', this.#onClientClose);
    this.#observer = x.attemptStarted(route.upstream.name, target);
    const path = this.request.path;
    const headers = upstreamRequestHeaders(x, route, target.hostPort, this.#observer.traceparent);
    // Requests without an Upgrade take sluice's own client, streamed bodies and https included.
    const h1 = x.upgradeHead === null ? target.h1(route.connectTimeoutMs) : null;
    if (h1 !== null) {
      h1.request(
        {
          method: x.method,
          path,
          headers,
          body,
          readTimeoutMs: route.readTimeoutMs,
          reset: !route.upstream.reuseConnections,
          fresh,
        },
        this,
      );
      return;
    }
    const options: Dispatcher.DispatchOptions = {
      path,
      method: x.method as Dispatcher.HttpMethod,
      headers,
      // undici writes async iterables with back-pressure (client-h1 writeIterable); its typings
      // list only streams and buffers.
      body: body as Dispatcher.DispatchOptions['body'],
      headersTimeout: route.readTimeoutMs,
      bodyTimeout: route.readTimeoutMs,
      reset: !route.upstream.reuseConnections,
      upgrade: x.upgradeHead === null ? null : (x.upgrade ?? 'websocket'),
      // wss: a fixed TLS name, not one undici would derive from the Host header.
      servername: target.servername,
    } as Dispatcher.DispatchOptions;
    const handler = this as unknown as Dispatcher.DispatchHandler;
    if (fresh) target.dispatchFresh(route.connectTimeoutMs, options, handler);
    else target.pool(route.connectTimeoutMs).dispatch(options, handler);
  }

  /** Aborts the attempt (send timeout). */
  abort(err: Error): void {
    this.#abort?.(err);
  }

  connectionReused(reused: boolean): void {
    this.reused = reused;
  }

  /** `reused` comes from sluice's client; undici's is learnt from its diagnostics channel. */
  onConnect(abort: (err?: Error) => void, reused?: boolean): void {
    this.#abort = abort;
    this.sent = true;
    if (reused === undefined) awaitConnection(this);
    else this.reused = reused;
    if (this.#clientGone) abort(new ClientGoneError());
  }

  onHeaders(
    status: number,
    rawHeaders: readonly (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean {
    // 1xx answers (other than 101, handled by onUpgrade) are not relayed.
    if (status < 200) return true;
    this.#status = status;
    // The exchange was cut (shutdown_timeout) before its client's connection closed: the answer
    // has nowhere to go, and a listed status must not blame the target or start a retry.
    if (this.request.x.finished) {
      this.#abort?.(new ClientGoneError());
      return false;
    }
    if (this.request.retryOnStatus(this, status)) {
      this.#discarding = true;
      this.#abort?.(new RetryingError());
      return false;
    }
    const x = this.request.x;
    const headers = clientResponseHeaders(rawHeaders, this.request.route, x, status);
    // HTTP/1.x: the answer goes out with the turn's other writes (turn-batch.ts).
    const h1 = x.req.httpVersionMajor === 1;
    if (h1 && x.res.socket !== null) corkUntilTurnEnd(x.res.socket as Socket);
    // Throws on a reason or header value Node refuses (a control character sent by the target);
    // undici catches it, aborts the attempt, and `onError` answers 502.
    writeTargetHead(x.res, status, statusText, headers);
    x.status = status;
    this.#resume = resume;
    if (h1) {
      this.#headUnsent = true;
      this.#queueFlush();
    }
    return true;
  }

  onUpgrade(status: number, rawHeaders: Buffer[], socket: Socket): void {
    this.#status = status;
    this.#finish();
    this.request.upstream.succeeded(this.target);
    const x = this.request.x;
    x.status = status;
    // The target's connection now belongs to the tunnel, which keeps `conns` until it closes.
    this.target.conns++;
    openTunnel(x, this.request.route, rawHeaders, socket, () => {
      this.target.conns--;
    });
  }

  onData(chunk: Buffer): boolean {
    const x = this.request.x;
    this.#headUnsent = false;
    x.bytesOut += chunk.length;
    if (x.res.write(chunk)) return true;
    // More chunks of the same read may follow a `false` (sluice's client delivers a read whole):
    // one drain listener is enough.
    if (!this.#waitingDrain) {
      this.#waitingDrain = true;
      x.res.once('drain', this.#resumeUpstream);
    }
    return false;
  }

  #waitingDrain = false;

  readonly #resumeUpstream = (): void => {
    this.#waitingDrain = false;
    this.#resume?.();
  };

  onComplete(): void {
    this.#finish();
    this.#ending = true;
    // Ended with the turn's other writes (turn-batch.ts): Node's `res.end()` uncorks the socket
    // fully, so ending here would send the answer at once, whatever the cork.
    if (this.request.x.req.httpVersionMajor === 1) this.#queueFlush();
    else this.flushTurn();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    flushAtTurnEnd(this);
  }

  /** At the end of the turn (HTTP/1.x): ends the answer, or sends a head still waiting for its body. */
  flushTurn(): void {
    this.#flushQueued = false;
    const x = this.request.x;
    if (this.#ending) {
      x.dropUnreadBody();
      x.res.end();
      x.complete();
      return;
    }
    if (!this.#headUnsent) return;
    this.#headUnsent = false;
    // Not after the exchange ended otherwise (a cut at shutdown_timeout, the client gone).
    if (!x.finished && !x.res.destroyed) x.res.flushHeaders();
  }

  onError(err: Error): void {
    // (sluice's own client knows a 204 or 304 has no body; undici's check made a cut-off reply of it.)
    if (isBodylessLengthMismatch(this.#status, err)) {
      this.onComplete();
      return;
    }
    // What broke the attempt, for its span: the status alone (a 200 whose body was cut off) made
    // it an OK span. None for an answer discarded to retry on its status; `aborted` for one
    // abandoned, also once the target's head came (its metric keeps that status, as nginx's
    // $upstream_status does, but a 200 whose body the client never got whole is no OK span).
    const failure: AttemptBreak | undefined = this.#discarding
      ? undefined
      : this.#abandoned(err)
        ? 'aborted'
        : errorCode(err);
    this.#finish(this.#status !== 0 ? this.#status : attemptCode(failure), failure);
    if (this.#discarding) {
      this.request.retryDiscarded();
      return;
    }
    if (this.#abandoned(err)) {
      this.request.x.clientGone();
      return;
    }
    this.request.attemptFailed(this, err);
  }

  /**
   * Ended from the client's side, or by sluice (cut at shutdown_timeout): abandoned, not failed,
   * so no target is counted against or retried for a request nobody waits for any more.
   */
  #abandoned(err: Error): boolean {
    return this.#clientGone || err instanceof ClientGoneError || this.request.x.finished;
  }

  #finish(code: number | AttemptCode = this.#status, failure?: AttemptBreak): void {
    if (this.#done) return;
    this.#done = true;
    this.target.conns--;
    this.#observer?.done(code, failure);
    const x = this.request.x;
    if (this.#onClientClose !== null) x.res.off('close', this.#onClientClose);
    this.#onClientClose = null;
  }
}

/** How an attempt that got no answer ended, for its metric. */
function attemptCode(failure: AttemptBreak | undefined): AttemptCode {
  if (failure === undefined || failure === 'aborted') return 'aborted';
  return failure === 'SLUICE_E_UPSTREAM_TIMEOUT' ? 'timeout' : 'error';
}

function errorCode(err: Error): ErrorCode {
  if (err instanceof BodyTooLargeError) return 'SLUICE_E_CLIENT_BODY_TOO_LARGE';
  if (err instanceof SendTimeoutError) return 'SLUICE_E_UPSTREAM_TIMEOUT';
  return upstreamErrorCode(err);
}
