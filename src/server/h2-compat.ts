/**
 * Node's HTTP/2 compatibility request and response, shaped so the gateway (written against
 * HTTP/1.1's `IncomingMessage` and `ServerResponse`) serves HTTP/2 requests unchanged:
 *
 * - `rawHeaders` of a request lists HTTP/1.1-style fields: no pseudo-headers, a `host` taken from
 *   `:authority` when the client sent none, and the cookie crumbs of RFC 9113 8.2.3 joined into
 *   one `cookie` field, so the headers forwarded to an HTTP/1.1 upstream are valid there;
 *   `h2RawHeaders` keeps the fields as received for the strictness checks (request-head.ts).
 * - `writeHead(status, statusText, headers)` drops the reason phrase (HTTP/2 has none; Node would
 *   warn) and the connection-specific fields HTTP/2 forbids, and keeps the last value of a field
 *   Node's HTTP/2 sends once at most (h2-response-fields.ts); `shouldKeepAlive`
 *   is a no-op (an HTTP/2 connection closes with GOAWAY, not per response).
 *
 * The listener passes these classes to `http2.createSecureServer`; HTTP/1.1 connections on the
 * same port get Node's usual classes, so the HTTP/1.1 path pays nothing for HTTP/2.
 */
import http2 from 'node:http2';
import type { ReadableOptions } from 'node:stream';
import { connectionTokens, headerName } from '../core/header-names.js';
import { abortBody } from './abort-body.js';
import { refusedHead, sendableFields, withoutConnectionFields } from './h2-response-fields.js';

const kAssigned = Symbol('sluice.h2RawHeaders');

/** Node's own `rawHeaders` accessor (a getter on the prototype in Node 20 to 24). */
const receivedRawHeaders = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'rawHeaders')
  ?.get as ((this: http2.Http2ServerRequest) => string[]) | undefined;

/** An HTTP/2 request whose `rawHeaders` read as HTTP/1.1 fields. */
export class H2Request extends http2.Http2ServerRequest {
  #fields: string[] | null = null;

  /** The client sent END_STREAM: the body, if any, is whole. */
  #clientEnded: boolean;

  /** Body bytes received so far (DATA of this stream). */
  #bodyBytes = 0;

  /** Body bytes received so far: the handler deadline is postponed while they grow (exchange.ts). */
  get bodyBytesReceived(): number {
    return this.#bodyBytes;
  }

  constructor(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    options: ReadableOptions | undefined,
    rawHeaders: string[],
  ) {
    // Node emits the request's 'close' itself when the stream closes; a destroy must not add a second.
    super(stream, headers, { ...options, emitClose: false }, rawHeaders);
    this.#clientEnded = stream.endAfterHeaders;
    if (!this.#clientEnded) {
      watchEndStream(stream, () => {
        this.#clientEnded = true;
      });
      // A reset or a lost connection before the answer was complete: Node says 'aborted' to the
      // request before it ends the body, and a stream reader (`for await`, `Readable.toWeb`) takes
      // an 'aborted' before the end for ERR_STREAM_PREMATURE_CLOSE. HTTP/1.1 errs first, then says
      // 'aborted', and its readers get ECONNRESET: so here, ahead of Node's listener.
      stream.prependListener('aborted', () => {
        if (!this.readableEnded) abortBody(this);
      });
    }
  }

  /**
   * Node ends the request's body when its stream ends, and also when the stream closes before the
   * client finished sending (a reset by the client, or by request_timeout once its 408 is out): a
   * reader would take a body cut short for a whole one. A body whose END_STREAM never came ends
   * with an error instead, as HTTP/1.1 does when a connection closes mid-body.
   */
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Uint8Array) this.#bodyBytes += chunk.byteLength;
    if (chunk === null && !this.#clientEnded) {
      abortBody(this);
      return false;
    }
    return super.push(chunk, encoding);
  }

  /** As HTTP/1.1's IncomingMessage: the abort is an 'error' only for a reader that listens for one. */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    callback(err !== null && this.listenerCount('error') > 0 ? err : null);
  }

  /** The header fields as received, pseudo-headers (`:method`, `:path`, `:authority`…) included. */
  get h2RawHeaders(): string[] {
    return receivedRawHeaders?.call(this) ?? (this as { [kAssigned]?: string[] })[kAssigned] ?? [];
  }

  /** The client ended the stream with its headers: the request has no body. */
  get endStream(): boolean {
    return this.stream.endAfterHeaders;
  }

  static {
    // `rawHeaders` is declared as a data property in Node's typings; an accessor must be defined.
    Object.defineProperty(H2Request.prototype, 'rawHeaders', {
      configurable: true,
      get(this: H2Request): string[] {
        this.#fields ??= http1Fields(this.h2RawHeaders);
        return this.#fields;
      },
      // Only if a Node version assigned `rawHeaders` in its constructor (before private fields exist).
      set(this: { [kAssigned]?: string[] }, value: string[]) {
        this[kAssigned] = value;
      },
    });
  }
}

/**
 * Calls `onEnd` when the client's END_STREAM arrives on `stream`. Node delivers it as the end of
 * the stream's readable side, but ends that side the same way when the stream closes early; only the
 * order tells them apart: END_STREAM ends it while the stream is still open. Node has no event for
 * it, so the stream's own `push` is wrapped (streams with a body only).
 */
function watchEndStream(stream: http2.ServerHttp2Stream, onEnd: () => void): void {
  const push = stream.push;
  stream.push = function (this: http2.ServerHttp2Stream, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null && !stream.closed) onEnd();
    return push.call(this, chunk, encoding);
  };
}

/** An HTTP/2 response that accepts the HTTP/1.1 calls the gateway makes. */
export class H2Response extends http2.Http2ServerResponse<H2Request> {
  static {
    const writeHead = http2.Http2ServerResponse.prototype.writeHead as (
      this: http2.Http2ServerResponse,
      status: number,
      headers?: unknown,
    ) => http2.Http2ServerResponse;
    const { setHeader, appendHeader } = http2.Http2ServerResponse.prototype;
    Object.defineProperties(H2Response.prototype, {
      writeHead: {
        configurable: true,
        writable: true,
        value(this: H2Response & Named, status: number, textOrHeaders?: unknown, headers?: unknown) {
          const statusText = typeof textOrHeaders === 'string' || textOrHeaders === undefined;
          const fields = (statusText ? headers : textOrHeaders) as Parameters<
            typeof withoutConnectionFields
          >[1];
          try {
            // Only a handler's answer is checked first: the proxy's and sluice's own rarely hold such fields.
            if (this[kHandlerAnswer] !== true) return writeHead.call(this, status, fields);
            // A 204's Content-Length (RFC 9110 8.6 forbids it) beside END_STREAM on the head makes
            // curl and Node's client reset the stream as malformed; nginx drops it, and so does the proxy.
            const named = this[kNamed] ?? null;
            const drop = status === 204 ? [...(named ?? []), 'content-length'] : named;
            return writeHead.call(this, status, withoutConnectionFields(this, fields, drop));
          } catch (err) {
            // Node refused the head before sending any of it, after storing its fields on `this`:
            // a single-value field given twice (an upstream's two Content-Types, a handler's
            // appendHeader), or an upstream's HTTP2-Settings. Sent without them, as HTTP/1.1 sends it.
            if (!refusedHead(err) || this.stream.headersSent) throw err;
            sendableFields(this);
            return writeHead.call(this, status);
          }
        },
      },
      // Node drops a `Connection` without a trace: the names it lists are kept for writeHead.
      setHeader: { configurable: true, writable: true, value: noteConnection(setHeader) },
      appendHeader: { configurable: true, writable: true, value: noteConnection(appendHeader) },
      shouldKeepAlive: { configurable: true, get: () => true, set: () => undefined },
    });
  }
}

/** The names a `Connection` given to `setHeader` listed (h2-response-fields.ts). */
const kNamed = Symbol('sluice.connectionNamed');
/** Set on a response a handler writes: only its fields are checked (see handlerAnswer). */
const kHandlerAnswer = Symbol('sluice.handlerAnswer');
interface Named {
  [kNamed]?: string[] | null;
  [kHandlerAnswer]?: true;
}

/**
 * Marks an HTTP/2 response as a handler's: its head goes out without the connection-specific
 * fields (h2-response-fields.ts). Proxied answers are not checked before their head goes out (the
 * check cost a scan per answer): response-headers.ts drops the hop-by-hop fields, which are all of
 * them but `HTTP2-Settings`, kept on HTTP/1.1 as nginx keeps it. When Node refuses a proxied head
 * for it (or for a single-value field given twice), writeHead drops it then (sendableFields).
 */
export function handlerAnswer(res: http2.Http2ServerResponse): void {
  (res as Named)[kHandlerAnswer] = true;
}

/**
 * `set` (Node's setHeader or appendHeader), which keeps a `Connection` to itself: the names it lists
 * are noted, and Node, which would drop it with a process warning, never sees it.
 */
function noteConnection<F extends (this: H2Response, name: string, value: never) => unknown>(set: F): F {
  return function (this: H2Response & Named, name: string, value: never) {
    // (Once the head is out, Node's own call throws its error.)
    if (typeof name !== 'string' || headerName(name) !== 'connection' || this.headersSent)
      return set.call(this, name, value);
    this[kNamed] = connectionTokens(String(value), this[kNamed] ?? null);
    return this;
  } as F;
}

/** HTTP/1.1-style fields of an HTTP/2 header list (see the file comment). */
export function http1Fields(raw: readonly string[]): string[] {
  const out: string[] = [];
  let authority: string | null = null;
  let hasHost = false;
  let cookie = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'host') hasHost = true;
    if (name === 'cookie') {
      if (cookie !== -1) {
        out[cookie] = `${out[cookie]}; ${value}`;
        continue;
      }
      cookie = out.length + 1;
    }
    out.push(name, value);
  }
  if (!hasHost && authority !== null) out.unshift('host', authority);
  return out;
}
