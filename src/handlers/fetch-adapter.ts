/**
 * Serves a Node request with a fetch-style app: IncomingMessage → `Request` (the body as a web
 * stream, never buffered; a `signal` that aborts when the client leaves), `Response` →
 * ServerResponse (the body streamed with back-pressure, every Set-Cookie kept separate).
 *
 * The client's side of the exchange rules the body streams both ways:
 * - a client that leaves cancels the response body (its `cancel()` runs, so an SSE stream's timers
 *   stop) and aborts `request.signal`;
 * - a HEAD request, or a 204 or 304 answer, has no body: the response body is cancelled unread
 *   (Node discards what is written for them and never pushes back, so a stream that never ends was
 *   read for ever);
 * - a request body the app did not read is read and dropped once the answer is out, as Node does
 *   for listener-style handlers, so the connection can carry the next request;
 * - the connection is the client's: hop-by-hop fields of the `Response` are not copied.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { CONNECTION_FIELDS, connectionTokens, withoutNamed } from '../core/header-names.js';
import type { FetchApp } from './load-handler.js';

/** A `Request` and what serving it needs to finish its request body. */
interface FetchRequest {
  readonly request: Request;
  /** The request body as handed to the app; null without one. */
  readonly body: ReadableStream<Uint8Array> | null;
}

/** The reason a response body is cancelled when the client has gone. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client went away');
  }
}

/**
 * Watches the client of one exchange: whether it has gone, and the `request.signal` the app sees,
 * made only when the app reads it (undici's Request costs about 15 µs more per request when given a
 * signal: a follower controller, listener bookkeeping, a finalization entry).
 */
class ClientWatch {
  gone: boolean;
  #controller: AbortController | null = null;
  /** Called once when the client leaves (writeResponse's reader and its wait for drain). */
  onGone: (() => void) | null = null;

  constructor(res: ServerResponse) {
    // A client that left before the app was called (during a rate-limit check in Redis, say).
    this.gone = closed(res);
    // Ended by us, or left by the client. (Not writableFinished: an HTTP/2 compat response reads
    // its stream's, which a reset stream has too.)
    res.once('close', () => {
      if (!res.writableEnded) this.leave();
    });
  }

  leave(): void {
    if (this.gone) return;
    this.gone = true;
    this.#controller?.abort(new ClientGoneError());
    this.onGone?.();
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.gone) this.#controller.abort(new ClientGoneError());
    }
    return this.#controller.signal;
  }
}

/**
 * Whether a response's client is gone. An HTTP/2 compat response has no `destroyed` of its own:
 * its stream does.
 */
function closed(res: ServerResponse): boolean {
  return res.destroyed === true || (res as { stream?: { destroyed?: boolean } }).stream?.destroyed === true;
}

/** Builds the web `Request` for a Node request; its `signal` aborts when the client leaves. */
function toRequest(req: IncomingMessage, scheme: string, host: string, watch: ClientWatch): FetchRequest {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  let body: ReadableStream<Uint8Array> | null = null;
  if (method !== 'GET' && method !== 'HEAD') {
    body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.body = body;
    init.duplex = 'half';
  }
  const request = new Request(`${scheme}://${host || 'localhost'}${req.url ?? '/'}`, init);
  Object.defineProperty(request, 'signal', { get: () => watch.signal, configurable: true });
  return { request, body };
}

/** Statuses whose answers have no body (RFC 9110 6.4.1). */
function bodyless(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || status < 200;
}

/** Where the body bytes written are counted, as they go (an answer cut short is counted too). */
export interface BodyBytes {
  bytesOut: number;
}

/**
 * Writes a web `Response` to the Node response, counting its body bytes into `sent`; rejects with
 * ClientGoneError when the client left first (the body is cancelled then).
 */
async function writeResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
  watch: ClientWatch,
  sent: BodyBytes,
): Promise<void> {
  let headers: string[] = [];
  let named = null as string[] | null;
  // (Names arrive lower-case from Headers.)
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie') return;
    // Fields that describe a connection, not the answer (RFC 9110 7.6.1), are not copied, nor
    // those a `Connection` names: Node frames the answer and sets Connection and Keep-Alive itself,
    // from the client's request (a client's `Connection: close` closes it, RFC 9112 9.6). Copied,
    // an app's `Connection: keep-alive` kept a connection the client asked to close, and a relay
    // (`new Response(up.body, { headers: up.headers })`) passed on its upstream's.
    if (!CONNECTION_FIELDS.has(name)) headers.push(name, value);
    else if (name === 'connection') named = connectionTokens(value, named);
  });
  if (named !== null) headers = withoutNamed(headers, named);
  for (const cookie of response.headers.getSetCookie()) headers.push('set-cookie', cookie);
  if (watch.gone) {
    response.body?.cancel(new ClientGoneError()).catch(ignore);
    throw new ClientGoneError();
  }
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (response.body === null || bodyless(req.method, response.status)) {
    // The answer first: a cancel() that waits on the app's own work does not hold it.
    res.end();
    response.body?.cancel().catch(ignore);
    return;
  }
  const reader = response.body.getReader();
  // A client that leaves while the app produces its next chunk: the read in progress ends at
  // once (cancel() settles it), and the stream's cancel() runs.
  let wake: (() => void) | null = null;
  watch.onGone = () => {
    reader.cancel(new ClientGoneError()).catch(ignore);
    wake?.();
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || watch.gone) break;
      sent.bytesOut += value.byteLength;
      if (!res.write(value)) {
        if (watch.gone) break;
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            wake = null;
            resolve();
          };
          wake = done;
          res.once('drain', done);
        });
      }
      if (watch.gone) break;
    }
  } finally {
    watch.onGone = null;
  }
  if (watch.gone) throw new ClientGoneError();
  res.end();
}

/**
 * After the answer: a request body the app left unread (or half read) holds the connection, since
 * the web stream stopped reading the socket. One nobody reads is read here and dropped (the next
 * request on the connection follows it); one the app still holds a reader on cannot be, so the
 * connection closes once the answer is out (an HTTP/2 stream is its own: nothing to close).
 */
function finishRequestBody(req: IncomingMessage, body: ReadableStream | null): void {
  if (body === null || req.complete) return;
  if (body.locked) {
    if (req.httpVersionMajor === 1) req.socket?.destroySoon();
    return;
  }
  const reader = body.getReader();
  const drop = (): void => {
    reader.read().then((r) => {
      if (!r.done) drop();
    }, ignore);
  };
  drop();
}

/** Calls a fetch app for one request and writes its answer, counting its body bytes into `sent`. */
export async function serveFetch(
  app: FetchApp,
  req: IncomingMessage,
  res: ServerResponse,
  scheme: string,
  host: string,
  sent: BodyBytes,
): Promise<void> {
  const watch = new ClientWatch(res);
  const { request, body } = toRequest(req, scheme, host, watch);
  const response: unknown = await app.fetch(request);
  // Duck-typed: a Response from another copy of undici (or a framework's subclass) is fine.
  if (
    typeof response !== 'object' ||
    response === null ||
    typeof (response as Response).status !== 'number'
  ) {
    throw new TypeError(
      `fetch() must return a Response, got ${response === null ? 'null' : typeof response}`,
    );
  }
  await writeResponse(req, res, response as Response, watch, sent);
  finishRequestBody(req, body);
}

function ignore(): void {}
