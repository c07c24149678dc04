/**
 * Forwarding one request to an upstream target with undici's `dispatch` API and streaming the
 * answer back with back-pressure both ways.
 *
 *   pick target ─▶ headers ─▶ body? ─no──────────────────────────────▶ dispatch
 *                              └─yes─▶ buffer ≤ 64 KiB ─ended──▶ Buffer ─▶ dispatch
 *                                              └─more─▶ stream the rest ─▶ dispatch
 *   onHeaders ─▶ writeHead · onData ─▶ res.write (false pauses undici until 'drain') · onComplete ─▶ end
 *
 * `UpstreamCall` implements undici's handler interface in its original form (`onConnect`,
 * `onHeaders` with raw `Buffer` headers): handlers with `onRequestStart` are wrapped by undici in
 * an adapter that parses every response header into an object first, a cost the proxy never needs.
 */
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors/catalogue.js';
import type { ProxyExchange } from './proxy-exchange.js';
import { type ProxyRoute, upstreamPath } from './proxy-route.js';
import { upstreamRequestHeaders } from './request-headers.js';
import { clientResponseHeaders } from './response-headers.js';
import type { UpstreamTarget } from './upstream.js';
import { upstreamErrorCode } from './upstream-error.js';

/**
 * Request bodies up to this size are read completely before the upstream is contacted: framing
 * errors in them are answered 400 with nothing forwarded, and (with retries) they can be replayed.
 * Larger bodies are streamed, so a 1 GB upload keeps memory flat.
 */
export const BODY_BUFFER_LIMIT = 64 * 1024;

/** Forwards the request of `x` along `route`. Never throws: every failure becomes `x.fail(...)`. */
export function forward(x: ProxyExchange, route: ProxyRoute): void {
  const upstream = route.upstream;
  x.upstream = upstream.name;
  if (x.bodyKind === 'length' && x.contentLength > x.maxBody) {
    x.fail('SLUICE_E_CLIENT_BODY_TOO_LARGE');
    return;
  }
  const target = upstream.pick();
  if (target === null) {
    x.fail('SLUICE_E_UPSTREAM_NO_LIVE');
    return;
  }
  if (x.bodyKind === 'none') {
    new UpstreamCall(x, route, target).send(null);
  } else {
    readBodyThenDispatch(x, route, target).catch((err: unknown) =>
      x.fail('SLUICE_E_CLIENT_BAD_REQUEST', err),
    );
  }
}

async function readBodyThenDispatch(
  x: ProxyExchange,
  route: ProxyRoute,
  target: UpstreamTarget,
): Promise<void> {
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
    if (size > BODY_BUFFER_LIMIT) {
      const call = new UpstreamCall(x, route, target);
      call.send(streamRest(chunks, it, size, x.maxBody, call, route.sendTimeoutMs));
      return;
    }
  }
  new UpstreamCall(x, route, target).send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
}

/**
 * The body of a large request: the chunks already read, then the rest as undici pulls it.
 * undici pulls the next chunk only once the previous one is written, so a target that stops
 * reading stalls this generator; `sendTimeoutMs` bounds such a stall (nginx `proxy_send_timeout`).
 */
async function* streamRest(
  first: Buffer[],
  it: AsyncIterator<Buffer>,
  size: number,
  maxBody: number,
  call: UpstreamCall,
  sendTimeoutMs: number,
): AsyncGenerator<Buffer> {
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    if (sendTimeoutMs > 0) timer = setTimeout(() => call.timeOutSend(), sendTimeoutMs).unref();
  };
  const disarm = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  try {
    for (const chunk of first) {
      arm();
      yield chunk;
      disarm();
    }
    let total = size;
    for (;;) {
      const step = await it.next();
      if (step.done) return;
      total += step.value.length;
      if (total > maxBody) throw new BodyTooLargeError();
      arm();
      yield step.value;
      disarm();
    }
  } finally {
    disarm();
  }
}

/** Thrown into undici by the body stream; mapped back to 413. */
class BodyTooLargeError extends Error {
  readonly code = 'SLUICE_BODY_TOO_LARGE';
}

/** Thrown into undici when the target stops reading the body for `timeouts.send`. */
class SendTimeoutError extends Error {
  readonly code = 'SLUICE_SEND_TIMEOUT';
}

/** undici's handler for one upstream attempt; also watches the client for going away. */
export class UpstreamCall {
  readonly #x: ProxyExchange;
  readonly #route: ProxyRoute;
  readonly #target: UpstreamTarget;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #done = false;
  #clientGone = false;
  #onClientClose: (() => void) | null = null;

  constructor(x: ProxyExchange, route: ProxyRoute, target: UpstreamTarget) {
    this.#x = x;
    this.#route = route;
    this.#target = target;
    this.#onClientClose = () => {
      if (this.#done) return;
      this.#clientGone = true;
      this.#abort?.(new ClientGoneError());
    };
    x.res.once('close', this.#onClientClose);
  }

  /** Sends the request to the target; `body` is null, a buffered body, or a stream. */
  send(body: Buffer | AsyncIterable<Buffer> | null): void {
    const x = this.#x;
    const route = this.#route;
    const target = this.#target;
    x.target = target.origin;
    x.attempts++;
    target.inflight++;
    const options: Dispatcher.DispatchOptions = {
      path: upstreamPath(route, x.path, x.query),
      method: x.method as Dispatcher.HttpMethod,
      headers: upstreamRequestHeaders(x, route, target.hostPort),
      // undici writes async iterables with back-pressure (client-h1 writeIterable); its typings
      // list only streams and buffers.
      body: body as Dispatcher.DispatchOptions['body'],
      headersTimeout: route.readTimeoutMs,
      bodyTimeout: route.readTimeoutMs,
      reset: !route.upstream.reuseConnections,
    };
    target.pool(route.connectTimeoutMs).dispatch(options, this as unknown as Dispatcher.DispatchHandler);
  }

  /** Aborts the attempt because the target stopped reading the request body. */
  timeOutSend(): void {
    this.#abort?.(new SendTimeoutError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort(new ClientGoneError());
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx answers (other than 101, handled by upgrade tunnelling) are not relayed.
    if (status < 200) return true;
    const x = this.#x;
    const headers = clientResponseHeaders(rawHeaders, this.#route, x);
    // Throws on a header value Node refuses (CR/LF smuggled in by the target); undici catches
    // it, aborts the attempt, and `onError` answers 502.
    if (statusText) x.res.writeHead(status, statusText, headers);
    else x.res.writeHead(status, headers);
    x.status = status;
    this.#resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const x = this.#x;
    x.bytesOut += chunk.length;
    if (x.res.write(chunk)) return true;
    x.res.once('drain', this.#resumeUpstream);
    return false;
  }

  readonly #resumeUpstream = (): void => {
    this.#resume?.();
  };

  onComplete(): void {
    this.#finish();
    this.#x.res.end();
    this.#x.complete();
  }

  onError(err: Error): void {
    this.#finish();
    const x = this.#x;
    if (this.#clientGone || err instanceof ClientGoneError) {
      x.clientGone();
      return;
    }
    x.fail(errorCode(err), err);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#target.inflight--;
    if (this.#onClientClose !== null) this.#x.res.off('close', this.#onClientClose);
    this.#onClientClose = null;
  }
}

function errorCode(err: Error): ErrorCode {
  if (err instanceof BodyTooLargeError) return 'SLUICE_E_CLIENT_BODY_TOO_LARGE';
  if (err instanceof SendTimeoutError) return 'SLUICE_E_UPSTREAM_TIMEOUT';
  return upstreamErrorCode(err);
}

/** The client closed its connection; the attempt is abandoned without an answer. */
class ClientGoneError extends Error {
  readonly code = 'SLUICE_CLIENT_GONE';
}
