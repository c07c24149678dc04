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
 *   for listener-style handlers, so the connection can carry the next request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
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

/** Builds the web `Request` for a Node request; `signal` aborts when the client leaves. */
export function toRequest(
  req: IncomingMessage,
  scheme: string,
  host: string,
  signal: AbortSignal,
): FetchRequest {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal };
  let body: ReadableStream<Uint8Array> | null = null;
  if (method !== 'GET' && method !== 'HEAD') {
    body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.body = body;
    init.duplex = 'half';
  }
  return { request: new Request(`${scheme}://${host || 'localhost'}${req.url ?? '/'}`, init), body };
}

/** Statuses whose answers have no body (RFC 9110 6.4.1). */
function bodyless(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || status < 200;
}

/**
 * Writes a web `Response` to the Node response; resolves with the body bytes written, or rejects
 * with ClientGoneError when the client left first (the body is cancelled then).
 */
export async function writeResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
): Promise<number> {
  const headers: string[] = [];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers.push(name, value);
  });
  for (const cookie of response.headers.getSetCookie()) headers.push('set-cookie', cookie);
  if (res.destroyed) {
    await response.body?.cancel(new ClientGoneError()).catch(ignore);
    throw new ClientGoneError();
  }
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (response.body === null || bodyless(req.method, response.status)) {
    await response.body?.cancel().catch(ignore);
    res.end();
    return 0;
  }
  const reader = response.body.getReader();
  let gone = false;
  // A client that leaves while the app produces its next chunk: the read in progress ends at
  // once (cancel() settles it), and the stream's cancel() runs.
  const onClose = () => {
    if (res.writableFinished) return;
    gone = true;
    reader.cancel(new ClientGoneError()).catch(ignore);
  };
  res.once('close', onClose);
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || gone) break;
      bytes += value.byteLength;
      if (!res.write(value)) await drainOrClose(res);
      if (gone) break;
    }
  } finally {
    res.off('close', onClose);
  }
  if (gone) throw new ClientGoneError();
  res.end();
  return bytes;
}

/** Waits until `res` can take more, or is closed. */
function drainOrClose(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
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

/** Calls a fetch app for one request and writes its answer. */
export async function serveFetch(
  app: FetchApp,
  req: IncomingMessage,
  res: ServerResponse,
  scheme: string,
  host: string,
): Promise<number> {
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new ClientGoneError());
  };
  res.once('close', onClose);
  const { request, body } = toRequest(req, scheme, host, abort.signal);
  try {
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
    const bytes = await writeResponse(req, res, response as Response);
    finishRequestBody(req, body);
    return bytes;
  } finally {
    res.off('close', onClose);
  }
}

function ignore(): void {}
