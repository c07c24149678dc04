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
 * - the connection is the client's: hop-by-hop fields of the `Response` are not copied;
 * - Node frames the answer: a declared Content-Length is never sent unchecked (see `framing`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { CONNECTION_FIELDS, connectionTokens, withoutNamed } from '../core/header-names.js';
import type { ErrorCode } from '../errors/catalogue.js';
import { flushAtTurnEnd, type TurnFlush } from '../proxy/turn-batch.js';
import type { FetchApp } from './load-handler.js';
import type { HandlerExchange } from './serve-handler.js';

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
 * made only when the app (or undici, for a copy of the request) reads it (see `lazySignal`).
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

  /**
   * The client left, or (with `reason`) sluice answered in the app's place (handler_timeout): the
   * signal aborts with the reason, and what writeResponse reads or waits for ends.
   */
  leave(reason?: Error): void {
    if (this.gone) return;
    this.gone = true;
    if (reason !== undefined) this.#reason = reason;
    this.#controller?.abort(this.#reason ?? new ClientGoneError());
    this.onGone?.();
  }

  #reason: Error | null = null;

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.gone) this.#controller.abort(this.#reason ?? new ClientGoneError());
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

/**
 * Where undici keeps a Request's signal when it is an own symbol property (undici 6: Node 20 and
 * 22), which `signal`, `new Request(request)` and `fetch(request)` read; null when it is not (a
 * private field, undici 7).
 */
function findSignalSlot(): symbol | null {
  const probe = new Request('http://localhost/');
  const own = probe.signal;
  const slots = Object.getOwnPropertySymbols(probe);
  return slots.find((s) => (probe as unknown as Record<symbol, unknown>)[s] === own) ?? null;
}

/**
 * How requests get their signal, decided at the first fetch request (`signalMode()`), not when
 * this module loads: `Request` is undici's, which Node loads on first use, and a worker that
 * serves no fetch route (a proxy) held 4 MB more for it.
 */
interface SignalMode {
  readonly slot: symbol | null;
  /** See `lazySignal`. */
  readonly lazy: boolean;
  readonly cloneRequest: Request['clone'];
}
let mode: SignalMode | null = null;
function signalMode(): SignalMode {
  if (mode !== null) return mode;
  const slot = findSignalSlot();
  // Set before the probe: the probe's clones (cloneFollowing) read the slot from here.
  mode = { slot, lazy: false, cloneRequest: Request.prototype.clone };
  if (slot !== null && lazySignal(slot)) mode = { ...mode, lazy: true };
  return mode;
}

/**
 * `clone()` of a request whose signal is lazy (`lazySignal`): a clone that follows the same
 * signal. undici's own clone follows a signal only through the follower undici made for a Request
 * given one, which a lazy signal is not. One function and one descriptor for every request: a
 * closure per request cost 5 µs more per request, a subclass of Request 9 µs.
 */
function cloneFollowing(this: Request): Request {
  const signal = this.signal;
  const { cloneRequest, slot } = signalMode();
  const copy = cloneRequest.call(this);
  Object.defineProperty(copy, slot!, { value: signal, configurable: true });
  Object.defineProperty(copy, 'clone', FOLLOWING_CLONE);
  return copy;
}
const FOLLOWING_CLONE: PropertyDescriptor = { value: cloneFollowing, configurable: true, writable: true };

/** Makes `request.signal` the one `signal()` makes when first read; its copies follow it. */
function followLazily(request: Request, slot: symbol, signal: () => AbortSignal): void {
  Object.defineProperty(request, slot, { get: signal, configurable: true });
  Object.defineProperty(request, 'clone', FOLLOWING_CLONE);
}

/**
 * Whether `request.signal` can be the client's, made only when read (`followLazily`), with its
 * copies following it as undici's follow the signal of the request they copy. Checked once, on a
 * probe: the signal, a copy, a clone and a clone's clone all abort with it.
 *
 * Otherwise the request is given the client's signal, and undici makes a follower of it: that
 * costs a quarter more worker CPU per hello-world request (a follower controller, listener
 * bookkeeping, a finalization entry; 150 against 117 µs, medians of wrk -c64 against one worker on
 * a busy 2-core VM).
 */
function lazySignal(slot: symbol): boolean {
  const controller = new AbortController();
  const probe = new Request('http://localhost/');
  followLazily(probe, slot, () => controller.signal);
  const copies = [new Request(probe), probe.clone(), probe.clone().clone()];
  controller.abort();
  return probe.signal === controller.signal && copies.every((r) => r.signal.aborted);
}

/** Builds the web `Request` for a Node request; its `signal` aborts when the client leaves. */
function toRequest(req: IncomingMessage, scheme: string, host: string, watch: ClientWatch): FetchRequest {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  const { lazy, slot } = signalMode();
  if (!lazy) init.signal = watch.signal;
  let body: ReadableStream<Uint8Array> | null = null;
  if (method !== 'GET' && method !== 'HEAD') {
    body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.body = body;
    init.duplex = 'half';
  }
  const url = `${scheme}://${host || 'localhost'}${req.url ?? '/'}`;
  let request: Request;
  try {
    request = new Request(url, init);
  } catch (err) {
    throw unfetchable(method, url) ?? err;
  }
  if (lazy) followLazily(request, slot!, () => watch.signal);
  return { request, body };
}

/**
 * Methods the fetch standard forbids (`new Request` throws for them, whatever their case): TRACE is
 * answered 405 before routing (gateway.ts) only as sent upper-case, CONNECT and TRACK over HTTP/2.
 */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * Why `new Request` refused a request for the client's sake, or null when the client is not why:
 * a method the fetch standard forbids (405), or a Host that sluice takes but no URL can have (400:
 * `1.2.3.256`, `a.1`, `xn--zz`, which the WHATWG URL parser refuses). Looked at only once `new
 * Request` has thrown: nothing is added to a request it takes.
 */
function unfetchable(method: string, url: string): RequestRefusedError | null {
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    return new RequestRefusedError(
      'SLUICE_E_CLIENT_METHOD_NOT_ALLOWED',
      `the method ${method} cannot reach a fetch handler (the fetch standard forbids it)`,
    );
  }
  if (!URL.canParse(url)) {
    return new RequestRefusedError(
      'SLUICE_E_CLIENT_BAD_REQUEST',
      'the request names a host (Host or :authority) that no URL can have, so it cannot be given to a fetch handler',
    );
  }
  return null;
}

/** A request a fetch handler cannot be given: the client's fault, answered with `code` instead. */
export class RequestRefusedError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
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
 * A Response's `Content-Length` as a number, or null when it has none or none that can be used:
 * not digits, or a list of different values (Headers joins repeated fields with ", "; a list of one
 * value repeated is that value, RFC 9110 8.6).
 */
function declaredLength(value: string | null): number | null {
  if (value === null) return null;
  let length: number | null = null;
  for (const part of value.split(',')) {
    const v = part.trim();
    if (!/^\d{1,15}$/.test(v) || (length !== null && Number(v) !== length)) return null;
    length = Number(v);
  }
  return length;
}

/**
 * At most this many chunks are gathered before the head: a stream that produces without ever
 * waiting would otherwise be read for ever. A body given whole is one chunk per part.
 */
const AT_ONCE_CHUNKS = 64;
/**
 * Once the chunks gathered hold this many bytes, a further chunk sends the head: a stream that
 * produces whenever asked (a `pull` source) was read 64 chunks deep in its first turn whatever
 * their size, 64 MiB of 1 MiB chunks held for a client that reads nothing. So at most this much
 * and two chunks are read ahead of the client (1 MiB chunks: 2 MiB). A body given whole is one
 * chunk per part (a string, buffer or Blob of any size), so it still goes with its length; a stream
 * that gives more than this before its end goes chunked.
 */
const AT_ONCE_BYTES = 1024 * 1024;

/** A body that does not match the Content-Length the app gave it. */
class LengthMismatchError extends Error {}

/**
 * Writes a web `Response` to the Node response, counting its body bytes into `sent`; rejects with
 * ClientGoneError when the client left first (the body is cancelled then).
 *
 * The head goes with what the body gives in the turn the answer came (turn-batch.ts), as the reverse
 * proxy sends a target's head: a body whole by then (a string, buffer or Blob: undici enqueues one
 * in a chunk per part, one for a 10 MB string on Node 20) goes with its length in one write, as
 * Deno, Bun and @hono/node-server send it; a stream (fed by I/O or timers: a file, a relayed
 * fetch() body, server-sent events) sends its head at the turn's end with the chunks it gave, or
 * alone when it gave none (Node would hold it for them: an event stream's client waited for the
 * first event, and handler_timeout took the head for sent). A body that fails in that turn fails
 * before any byte went out: a 500, not an empty reply. With a declared length, the turn starts at
 * the first chunk.
 *
 * Framing: the app's `Content-Length` is a claim about its body, and sent unchecked it corrupted
 * the connection (`new Response('abcdefghijkl', { headers: { 'content-length': '3' } })` sent 12
 * bytes after `content-length: 3`: a keep-alive client read the other 9 as the next answer; 10 for
 * `'abc'` left the client waiting). With one declared:
 * - a body whole at once is sent with its real length;
 * - a stream that has given more than declared by then (the head waits for its first chunk) is
 *   framed by Node (chunked on HTTP/1.1);
 * - any other stream keeps the declared length, checked as it goes: a body longer or shorter than
 *   it breaks the answer (SLUICE_E_HANDLER_ERROR), and the chunk that would complete the declared
 *   length waits for the stream's end, so a body found longer is never seen whole;
 * - HEAD, 204 and 304 answers have no body: their length is the one the body would have (RFC 9110
 *   8.6), kept as declared.
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
  let declared: string | null = null;
  // (Names arrive lower-case from Headers.)
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie') return;
    if (name === 'content-length') {
      declared = value;
      return;
    }
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
  let length = declaredLength(declared);
  const noBody = bodyless(req.method, response.status);
  if (response.body === null || noBody) {
    // A null body is empty, whatever was declared.
    if (length !== null) headers.push('content-length', noBody ? String(length) : '0');
    res.writeHead(response.status, response.statusText || undefined, headers);
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
  const write = async (chunk: Uint8Array): Promise<void> => {
    sent.bytesOut += chunk.byteLength;
    if (res.write(chunk) || watch.gone) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        wake = null;
        resolve();
      };
      wake = done;
      res.once('drain', done);
    });
  };
  // What the declared length still allows, and the chunk that completes it, held back.
  let left = Number.POSITIVE_INFINITY;
  let held: Uint8Array | null = null;
  /** A chunk taken against the declared length: the chunk to write now, or null when held back. */
  const take = (chunk: Uint8Array): Uint8Array | null => {
    if (held !== null || chunk.byteLength > left) throw longer(length!, response.headers);
    left -= chunk.byteLength;
    if (left === 0 && length !== null) {
      held = chunk;
      return null;
    }
    return chunk;
  };
  // The body read before the head, which goes with it.
  const gathered: Uint8Array[] = [];
  let bytes = 0;
  let headSent = false;
  let finished = false;
  let failure: unknown = null;
  /** Sends the head of a stream, with the chunks gathered so far (alone when none came). */
  const startStream = (): void => {
    headSent = true;
    // Known to be wrong before any of it was sent (a relayed fetch() body, decoded, is longer
    // than the length of its encoded form), or a stream that would end its answer with the head.
    if (length !== null && (bytes > length || length === 0)) length = null;
    if (length !== null) {
      headers.push('content-length', String(length));
      left = length;
    }
    res.writeHead(response.status, response.statusText || undefined, headers);
    let wrote = false;
    for (const chunk of gathered) {
      const out = chunk.byteLength === 0 ? null : take(chunk);
      if (out === null) continue;
      sent.bytesOut += out.byteLength;
      res.write(out);
      wrote = true;
    }
    gathered.length = 0;
    // Node sends an HTTP/1.1 head only with body bytes: a stream with none yet (server-sent
    // events, a long poll) would hold its head, and its client, until it has some.
    if (!wrote) res.flushHeaders();
  };
  const turnEnd: TurnFlush = {
    flushTurn: () => {
      if (headSent || finished || watch.gone) return;
      try {
        startStream();
      } catch (err) {
        // (A field Node refuses in the head.) Told to the read in progress, which it ends.
        failure = err;
        reader.cancel(err).catch(ignore);
      }
    },
  };
  try {
    // With a declared length, the turn starts at the first chunk, which the head waits for (to
    // check it against the length).
    if (length === null) flushAtTurnEnd(turnEnd);
    for (;;) {
      const next = await reader.read();
      if (failure !== null) throw failure;
      if (watch.gone) throw new ClientGoneError();
      if (!headSent) {
        if (next.done) {
          // The whole body, with its length: head and body in one write.
          headSent = true;
          headers.push('content-length', String(bytes));
          res.writeHead(response.status, response.statusText || undefined, headers);
          const last = gathered.pop();
          for (const chunk of gathered) await write(chunk);
          if (watch.gone) throw new ClientGoneError();
          if (last !== undefined) sent.bytesOut += last.byteLength;
          res.end(last);
          return;
        }
        const full = bytes >= AT_ONCE_BYTES;
        gathered.push(next.value);
        bytes += next.value.byteLength;
        if (length !== null && gathered.length === 1) flushAtTurnEnd(turnEnd);
        else if (full || gathered.length === AT_ONCE_CHUNKS) startStream();
        continue;
      }
      if (next.done) break;
      const chunk = next.value;
      if (chunk.byteLength === 0) continue;
      const out = take(chunk);
      if (out === null) continue;
      await write(out);
      if (watch.gone) break;
    }
    if (watch.gone) throw new ClientGoneError();
    if (length !== null && left > 0)
      throw new LengthMismatchError(
        `the response body ended after ${length - left} of the ${length} bytes its Content-Length declares`,
      );
    if (held !== null) await write(held);
    if (watch.gone) throw new ClientGoneError();
  } catch (err) {
    if (err instanceof LengthMismatchError) reader.cancel(err).catch(ignore);
    throw err;
  } finally {
    finished = true;
    watch.onGone = null;
  }
  res.end();
}

/** The error for a body longer than its declared `length`. */
function longer(length: number, headers: Headers): LengthMismatchError {
  // A relayed fetch() body is decoded by undici, which keeps the upstream's encoding and length.
  const relay = headers.has('content-encoding')
    ? ' (a fetch() body arrives decoded: delete content-encoding and content-length from headers relayed with it)'
    : '';
  return new LengthMismatchError(
    `the response body is longer than the ${length} bytes its Content-Length declares${relay}`,
  );
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
  sent: BodyBytes & Pick<HandlerExchange, 'abandon'>,
): Promise<void> {
  const watch = new ClientWatch(res);
  sent.abandon = (reason) => watch.leave(reason);
  const { request, body } = toRequest(req, scheme, host, watch);
  const response: unknown = await app.fetch(request);
  const wrong = notAResponse(response);
  if (wrong !== null) throw new TypeError(wrong);
  await writeResponse(req, res, response as Response, watch, sent);
  finishRequestBody(req, body);
}

/**
 * Why `value` cannot be sent as a fetch app's answer, or null when it can. Duck-typed: a Response
 * from another copy of undici (or a framework's subclass) is fine. What does not look like one, or
 * one whose body someone read, failed later with what the failure happened to be ("Cannot read
 * properties of undefined (reading 'forEach')" for `{ status: 200, body: 'hi' }`, "Invalid state:
 * ReadableStream is locked" for a used body).
 */
function notAResponse(value: unknown): string | null {
  const response = value as Partial<Response> | null;
  if (
    typeof response !== 'object' ||
    response === null ||
    typeof response.status !== 'number' ||
    typeof response.headers?.forEach !== 'function'
  ) {
    return `fetch() must return a Response, got ${kindOf(value)}`;
  }
  if (response.bodyUsed === true || response.body?.locked === true) {
    return 'fetch() returned a Response whose body was already used (read, or held by a reader): return a new Response, or response.clone() before reading it';
  }
  return null;
}

/** `value` in a message: null, undefined, "a string", "an Object (a plain object: ...)", "a Request". */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return withArticle(typeof value);
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
  if (proto === null || proto === Object.prototype) {
    return 'an Object (a plain object: wrap it, new Response(body, { status, headers }))';
  }
  return withArticle(proto.constructor?.name || 'object');
}

function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;
}

function ignore(): void {}
