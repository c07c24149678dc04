/**
 * Forwarding one absolute-form request (`GET http://api.example.com/v1 HTTP/1.1`) to its origin
 * through the proxy's shared undici agent, streaming both ways with back-pressure:
 *
 *   client body ──(undici pulls the stream)──▶ origin
 *   origin head ─▶ onHeaders ─▶ writeHead ─▶ onData ─(res.write false: pause, resume on drain)─▶ onComplete ─▶ end
 *        └── onError before the head: 502 (connect, reset), 504 (timeout), 403 (loop); after it: the client connection is cut
 *
 * `EgressCall` implements undici's handler interface in its original form (raw `Buffer` headers),
 * as `src/proxy/forward.ts` does, to skip the header parsing undici's newer interface costs.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { writeTargetHead } from '../proxy/response-headers.js';
import { flushAtTurnEnd } from '../proxy/turn-batch.js';
import { isBodylessLengthMismatch, REFUSED_BY_UNDICI, upstreamErrorCode } from '../proxy/upstream-error.js';
import { nextRequestId } from '../server/request-id.js';
import type { EgressContext, EgressInFlight } from './egress-context.js';
import { type EgressAnswerCode, egressProblemBody, egressStatus } from './egress-errors.js';
import { egressRequestHeaders, egressResponseHeaders } from './egress-headers.js';
import { logDenied, logEgress } from './egress-log.js';
import type { AbsoluteTarget } from './egress-target.js';

/** Raised by the agent's connector when a new connection reached this proxy itself. */
export class EgressLoopError extends Error {
  readonly code = 'SLUICE_EGRESS_LOOP';
}

/** The client went away; the origin request is abandoned. */
class ClientGoneError extends Error {
  readonly code = 'SLUICE_CLIENT_GONE';
}

/**
 * Forwards an allowed absolute-form request. Never throws: failures become answers and log lines.
 * `expectContinue`: the client waits for a `100 Continue` before its body, sent here, now that the
 * body is wanted.
 */
export function forwardEgress(
  ctx: EgressContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: AbsoluteTarget,
  source: string,
  policy: string,
  expectContinue: boolean,
): EgressRequest {
  if (expectContinue) res.writeContinue();
  const call = new EgressCall(ctx, req, res, target, source, policy);
  call.send();
  return call;
}

/** A request being forwarded, as its connection's error handler sees it. */
export interface EgressRequest {
  /**
   * Node's parser refused the request's body framing (`code`, from clientErrorCode): answers it
   * (400 with an id, or a cut when the answer had started), logs it with that code, and abandons
   * the origin request. False when the error cannot be this request's: it is complete (the error
   * is in a request behind it) or already answered.
   */
  badRequest(code: EgressAnswerCode): boolean;
}

/** Answers an error as `application/problem+json`; the id ties it to the log line. */
export function answerProblem(
  res: http.ServerResponse,
  code: EgressAnswerCode,
  errorId: string,
  close: boolean,
): void {
  const body = egressProblemBody(code, errorId);
  if (close) res.shouldKeepAlive = false;
  res.writeHead(egressStatus(code), {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'x-sluice-error-id': errorId,
  });
  res.end(body);
}

/** Whether a request has a body (a length above 0, or chunked). */
export function hasBody(req: http.IncomingMessage): boolean {
  const h = req.headers;
  return (
    h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
  );
}

class EgressCall implements EgressInFlight, EgressRequest {
  readonly #ctx: EgressContext;
  readonly #req: http.IncomingMessage;
  readonly #res: http.ServerResponse;
  readonly #target: AbsoluteTarget;
  readonly #source: string;
  readonly #policy: string;
  readonly #startedAt = performance.now();
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #done = false;
  #clientGone = false;
  #status = 0;
  #bytesSent = 0;
  #bytesReceived = 0;

  constructor(
    ctx: EgressContext,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: AbsoluteTarget,
    source: string,
    policy: string,
  ) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#target = target;
    this.#source = source;
    this.#policy = policy;
  }

  send(): void {
    this.#ctx.inFlight.add(this);
    this.#res.once('close', this.#onClientClose);
    // Node's parser reports bad body framing (a Transfer-Encoding not ending in chunked, a bad
    // chunk) after it emitted the request, in the same read when the bytes came with the head:
    // waiting for the end of that read (setImmediate) refuses those before anything is opened to
    // the origin. A later chunk's error finds the request under way (badRequest).
    if (hasBody(this.#req)) setImmediate(this.#dispatch);
    else this.#dispatch();
  }

  readonly #dispatch = (): void => {
    if (this.#done) return;
    if (this.#clientGone) {
      // Gone before the dispatch (setImmediate above): 499, as nginx logs it, and nothing opened.
      this.#status = 499;
      this.#finish('client_gone', null);
      return;
    }
    const req = this.#req;
    const options: Dispatcher.DispatchOptions = {
      origin: this.#target.origin,
      path: this.#target.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: egressRequestHeaders(req.rawHeaders, this.#target.hostHeader),
      // undici writes a stream body with back-pressure; no body at all is sent without framing.
      body: hasBody(req) ? req : null,
      headersTimeout: this.#ctx.timeouts.headersMs,
      bodyTimeout: this.#ctx.timeouts.idleMs,
    };
    this.#ctx.agent.dispatch(options, this as unknown as Dispatcher.DispatchHandler);
  };

  badRequest(code: EgressAnswerCode): boolean {
    if (this.#done || this.#req.complete) return false;
    const res = this.#res;
    let id: string | null = null;
    if (res.headersSent) {
      // The origin's answer had started: it cannot become an error answer; cut it.
      res.destroy();
    } else {
      id = nextRequestId();
      this.#status = egressStatus(code);
      answerProblem(res, code, id, true);
    }
    this.#finish(code, id);
    this.#abort?.(new ClientGoneError());
    return true;
  }

  cut(code: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT'): void {
    if (this.#done) return;
    // 499 whatever was sent, as the gateway logs its cuts: the client did not get all of it.
    this.#status = 499;
    this.#clientGone = true;
    this.#finish(code, null);
    this.#abort?.(new ClientGoneError());
    this.#res.destroy();
  }

  readonly #onClientClose = (): void => {
    if (this.#done) return;
    this.#clientGone = true;
    this.#abort?.(new ClientGoneError());
  };

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone || this.#done) abort(new ClientGoneError());
  }

  onBodySent(chunk: Buffer | string): void {
    this.#bytesSent += chunk.length;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx answers are not relayed (the client's Expect was answered by forwardEgress).
    if (status < 200) return true;
    const headers = egressResponseHeaders(rawHeaders);
    // Throws on a reason or header value Node refuses; undici catches it, aborts, and onError answers 502.
    writeTargetHead(this.#res, status, statusText, headers);
    this.#status = status;
    this.#resume = resume;
    // Node sends the head only with the first body write: a head the origin sends before a body
    // that waits (Server-Sent Events, long polls) goes out at the turn's end, unless the body or
    // the end came in the same turn and took it along.
    this.#headUnsent = true;
    flushAtTurnEnd(this);
    return true;
  }

  #headUnsent = false;

  /** Sends a head still waiting for its body (turn-batch.ts). */
  flushTurn(): void {
    if (!this.#headUnsent) return;
    this.#headUnsent = false;
    if (!this.#res.destroyed && !this.#res.writableEnded) this.#res.flushHeaders();
  }

  onData(chunk: Buffer): boolean {
    this.#headUnsent = false;
    this.#bytesReceived += chunk.length;
    if (this.#res.write(chunk)) return true;
    this.#res.once('drain', this.#onDrain);
    return false;
  }

  readonly #onDrain = (): void => {
    this.#resume?.();
  };

  onComplete(): void {
    this.#res.end();
    this.#finish(null, null);
  }

  onError(err: Error): void {
    if (this.#done) return;
    if (isBodylessLengthMismatch(this.#status, err)) {
      this.onComplete();
      return;
    }
    const res = this.#res;
    if (this.#clientGone || err instanceof ClientGoneError) {
      // 499, as nginx logs a client that left before its answer was complete.
      if (this.#status === 0) this.#status = 499;
      res.destroy();
      this.#finish('client_gone', null);
      return;
    }
    const id = nextRequestId();
    if (err instanceof EgressLoopError) {
      this.#done = true;
      this.#ctx.inFlight.delete(this);
      this.#res.off('close', this.#onClientClose);
      answerProblem(res, 'SLUICE_E_CLIENT_EGRESS_LOOP', id, hasBody(this.#req));
      const t = this.#target;
      logDenied(this.#ctx.log, {
        source: this.#source,
        host: t.host,
        port: t.port,
        method: this.#req.method ?? '',
        reason: 'loop',
        error_id: id,
      });
      return;
    }
    const code = requestErrorCode(err);
    if (res.headersSent) {
      // The answer had started: it cannot become an error answer; cut it, so the client sees it broken.
      res.destroy();
    } else {
      this.#status = egressStatus(code);
      answerProblem(res, code, id, !this.#req.complete);
    }
    this.#finish(code, id);
  }

  #finish(error: string | null, errorId: string | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#ctx.inFlight.delete(this);
    this.#res.off('close', this.#onClientClose);
    const t = this.#target;
    logEgress(this.#ctx.log, {
      source: this.#source,
      host: t.host,
      port: t.port,
      method: this.#req.method ?? '',
      policy: this.#policy,
      status: this.#status,
      bytes_sent: this.#bytesSent,
      bytes_received: this.#bytesReceived,
      duration_ms: Math.round(performance.now() - this.#startedAt),
      error,
      error_id: errorId,
    });
  }
}

/**
 * undici refuses some requests before sending them (a header value it cannot send). Egress passes
 * the client's own headers on, so here that is the client's fault.
 */
function requestErrorCode(err: Error): EgressAnswerCode {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && REFUSED_BY_UNDICI.has(code)) return 'SLUICE_E_CLIENT_BAD_REQUEST';
  return upstreamErrorCode(err);
}
