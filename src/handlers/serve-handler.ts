/**
 * Serves one request with a user handler. A handler that throws or rejects costs its request a
 * 500 (with an error id matching one log line carrying the stack), never the worker.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors/catalogue.js';
import { silenceResponse } from '../server/silence-response.js';
import { ClientGoneError, RequestRefusedError, serveFetch } from './fetch-adapter.js';
import type { LoadedHandler } from './load-handler.js';
import { watchRawAnswer } from './raw-answer.js';

/** What serving a handler needs from the request being served (declared here, implemented by the server). */
export interface HandlerExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly scheme: string;
  /** The Host header value as sent. */
  readonly hostHeader: string;
  /** `Expect: 100-continue`: the client waits for a 100 before it sends the body. */
  readonly expectContinue: boolean;
  /** Non-null for an Upgrade request (WebSocket), which a listener may answer on the raw socket. */
  readonly upgradeHead: Buffer | null;
  status: number;
  /** Counted as the answer goes out, so an answer cut short is logged with what was sent. */
  bytesOut: number;
  /**
   * The socket's `bytesWritten` when a Node listener started (HTTP/1.1; -1 otherwise): the
   * exchange counts a listener's answer cut short from it.
   */
  wireBytesBefore: number;
  /**
   * The listener wrote on the socket itself (raw-answer.ts; an Upgrade request only): sluice
   * writes no HTTP answer of its own after those bytes.
   */
  rawAnswer: boolean;
  /** Answers with the error `code` in the handler's place (the request was refused before it ran). */
  fail(code: ErrorCode, cause?: unknown): void;
  /** The handler failed: log it and answer 500 (or break a started answer). */
  handlerFailed(err: unknown): void;
  /** Answers 504 unless the handler sends its answer's head within `ms` (handler_timeout). */
  answerWithin(ms: number): void;
  /** Called, with the exchange as `this`, once sluice answered in the handler's place. */
  abandon: ((this: HandlerExchange, reason: Error) => void) | null;
  /** Whether the client's side is gone (its connection or HTTP/2 stream closed). */
  readonly clientLeft: boolean;
  complete(): void;
  clientGone(): void;
}

/** Runs `handler` for `x`, with `timeoutMs` to start its answer (0: no limit). */
export function serveHandler(x: HandlerExchange, handler: LoadedHandler, timeoutMs: number): void {
  const res = x.res;
  // The listener takes Expect: 100-continue requests itself (to refuse a body over max_body
  // before inviting it), so Node sends no 100: a handler reading the body waited for ever. A
  // handler may read it, so the 100 goes out now (over max_body was answered 413 before this).
  if (x.expectContinue) res.writeContinue();
  if (handler.kind === 'fetch') {
    // A client that leaves is logged (499) when it leaves, not when the app next writes, which a
    // stream waiting for events may never do.
    (res as Watched)[kWatched] = x;
    res.on('close', onClose);
    serveFetch(handler.app, x.req, res, x.scheme, x.hostHeader, x).then(
      () => {
        x.status = res.statusCode;
        x.complete();
      },
      (err: unknown) => {
        // Over HTTP/2 a client's reset fails the body the app reads before the stream's 'close'
        // (ClientWatch) is seen; that failure, rethrown by the app, is the client leaving too (499),
        // not a 500 written to no one. (`writableEnded`: a reset stream reads as finished.)
        if (err instanceof ClientGoneError || (x.clientLeft && !res.writableEnded)) x.clientGone();
        // The app never ran: the request was the client's fault, not the handler's.
        else if (err instanceof RequestRefusedError) x.fail(err.code, err);
        else x.handlerFailed(err);
      },
    );
    armDeadline(x, timeoutMs);
    return;
  }
  // A Node listener writes to `res` itself: watch the response to know how it ended. Listeners
  // shared by every response, the exchange on the response, and 'on' rather than 'once' (Node
  // emits each once per response): no closure or wrapper per request. With the same for the
  // listener's own 'close' hook: 19.6 → 19.2 µs of worker CPU per hello-world request (one
  // worker, wrk -c64, access log off, medians of 5 alternating runs).
  (res as Watched)[kWatched] = x;
  if (x.req.httpVersionMajor === 2) {
    watchH2Finish(x, res);
    withHost(x.req);
  } else {
    x.wireBytesBefore = x.req.socket.bytesWritten;
    res.on('finish', onH1Finish);
    if (x.upgradeHead !== null) watchRawAnswer(x, x.req.socket);
  }
  res.on('close', x.upgradeHead === null ? onClose : onUpgradeClose);
  x.abandon = abandonListener;
  try {
    const result: unknown = handler.listener(x.req, res);
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => refuseReturnedResponse(x, value),
        (err: unknown) => x.handlerFailed(err),
      );
    } else {
      refuseReturnedResponse(x, result);
    }
  } catch (err) {
    x.handlerFailed(err);
  }
  armDeadline(x, timeoutMs);
}

/**
 * A default export that is a bare function is a Node listener `(req, res)`; one written as a fetch
 * handler (`async (request) => new Response(...)`) returns its answer instead of writing it to
 * `res`, and its client waited for handler_timeout (60 s by default) with nothing in the log to say
 * why. Such a request is answered 500 at once, with the way to export a fetch handler in the log.
 */
function refuseReturnedResponse(x: HandlerExchange, value: unknown): void {
  // A listener that answered (most, before returning) is done with: nothing more to look at.
  if (x.res.headersSent || x.res.writableEnded || !isResponse(value)) return;
  x.handlerFailed(
    new Error(
      'the handler is a Node listener (its default export is a function, called with req and res) and it returned a Response instead of answering on res: export a fetch handler as `export default { fetch(request) { ... } }`',
    ),
  );
}

/** A fetch Response (Node's, or another implementation's). */
function isResponse(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  return (
    v instanceof Response || (v as { constructor?: { name?: unknown } }).constructor?.name === 'Response'
  );
}

/**
 * Arms handler_timeout once the handler's synchronous part has run, and only when that did not
 * answer: a listener that answers at once (most do) costs no timer. The deadline counts from here,
 * later than the call by whatever the handler did synchronously (it held the event loop then, so a
 * timer armed before could not have fired sooner either).
 */
function armDeadline(x: HandlerExchange, timeoutMs: number): void {
  if (timeoutMs > 0 && !x.res.headersSent && !x.res.writableEnded) x.answerWithin(timeoutMs);
}

/**
 * handler_timeout passed and sluice answered 504 for the listener: what the listener still does
 * with its response goes nowhere, quietly (silence-response.ts). The request says 'aborted' (its
 * 'close' and the response's follow the 504), as when a client leaves.
 */
function abandonListener(this: HandlerExchange, reason: Error): void {
  silenceResponse(this.res, reason);
  const req = this.req;
  if (!req.readableEnded && !req.destroyed) req.emit('aborted');
}

/**
 * Gives an HTTP/2 request the `host` a listener written for HTTP/1.1 reads (Express's
 * `req.hostname`, `req.get('host')`, virtual hosts): Node's `headers` has only `:authority`
 * (its `rawHeaders`, h2-compat.ts, already has `host`). For listeners only: nothing else reads
 * `headers.host`, and a client's own `host` field is kept (request-head.ts checks it matches).
 */
function withHost(req: IncomingMessage): void {
  const authority = req.headers[':authority'];
  if (req.headers.host === undefined && typeof authority === 'string') req.headers.host = authority;
}

/** The exchange a Node listener's response belongs to. */
const kWatched = Symbol('sluice.handlerExchange');
interface Watched {
  [kWatched]?: HandlerExchange;
}

/** 'finish' of an HTTP/1.1 response (`this`): its status and the bytes its socket took. */
function onH1Finish(this: ServerResponse): void {
  const x = (this as Watched)[kWatched]!;
  x.status = this.statusCode;
  // The server has detached the socket from the response by now; the request keeps it.
  x.bytesOut = x.req.socket.bytesWritten - x.wireBytesBefore;
  x.complete();
}

/** 'close' of a response (`this`) that never finished: the client went away. */
function onClose(this: ServerResponse): void {
  if (!this.writableFinished) (this as Watched)[kWatched]!.clientGone();
}

/**
 * 'close' of the response to an Upgrade request (`this`). A listener that took the handshake over
 * answered on the raw socket (ws's `handleUpgrade` writes its 101 there, its refusals too): its
 * exchange ends with that socket, logged with the status it wrote (raw-answer.ts) and its bytes,
 * after the head for a 101 as for a proxied tunnel (tunnel.ts), not as a client that left.
 */
function onUpgradeClose(this: ServerResponse): void {
  if (this.writableFinished) return;
  const x = (this as Watched)[kWatched]!;
  if (x.status === 0) {
    x.clientGone();
    return;
  }
  x.bytesOut = x.req.socket.bytesWritten - x.wireBytesBefore;
  x.complete();
}

/**
 * HTTP/2 streams share their connection's socket, so their body bytes are counted as written.
 * Node's compat response emits 'finish' (and then 'close', with `writableFinished` true: it reads
 * the stream's) whenever its stream closes, a reset by the client included: only `writableEnded`
 * (the handler called `end()`) tells an answer from a client gone, logged 200 before.
 */
function watchH2Finish(x: HandlerExchange, res: ServerResponse): void {
  countWrites(res, x);
  res.once('finish', () => {
    if (!res.writableEnded) return x.clientGone();
    x.status = res.statusCode;
    x.complete();
  });
}

/** Counts the body bytes written to a response into `counter.bytesOut` (its `write` and `end` wrapped). */
function countWrites(res: ServerResponse, counter: { bytesOut: number }): void {
  const size = (chunk: unknown, encoding: unknown): number =>
    typeof chunk === 'string'
      ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
      : chunk instanceof Uint8Array
        ? chunk.byteLength
        : 0;
  const write = res.write;
  const end = res.end;
  // Node's HTTP/2 `end(chunk)` writes the chunk through `write`: count it once.
  let ending = false;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    if (!ending) counter.bytesOut += size(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') counter.bytesOut += size(chunk, rest[0]);
    ending = true;
    try {
      return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } finally {
      ending = false;
    }
  } as ServerResponse['end'];
}
