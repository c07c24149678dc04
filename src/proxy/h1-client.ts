/**
 * The proxy's own HTTP/1.1 client for http and https targets: keep-alive connections on raw (or
 * TLS) sockets, the request head written as one string, the response read by a strict parser
 * (h1-response-parser.ts) whose body slices go to the handler without copies.
 *
 * Why not undici here: on this path undici's general machinery (request objects, header
 * validation and normalisation, its wasm parser's callbacks, kQueue bookkeeping and per-request
 * timers) cost 8–9 µs of CPU per proxied request on a 2-core Xeon; a minimal Node proxy over
 * undici's `dispatch` spent 39 µs per request, the same proxy over these sockets 31 µs (same
 * upstream, `wrk -c64`). undici still carries what this client does not: Upgrade (WebSocket)
 * requests (forward.ts chooses).
 *
 * Semantics follow undici's and nginx's where the proxy relies on them:
 * - a connection is reused only after a complete response that allows it (HTTP/1.1 without
 *   `Connection: close`, or HTTP/1.0 with `keep-alive`) and no extra bytes; at most `maxIdle`
 *   idle connections are kept (nginx `keepalive N`), each for `keepaliveTimeoutMs`, shortened by
 *   a target's `Keep-Alive: timeout=` hint less a second (so sluice closes first, not the target);
 * - the handler learns whether its connection was reused (the keep-alive race rule);
 * - timeouts: connect (`timeouts.connect`, 504) and read, between two reads (`timeouts.read`, 504);
 * - a streamed body (h1-body-writer.ts) goes out with back-pressure, framed by the client's
 *   Content-Length or else chunked; it goes on while an early answer streams (a target echoing as
 *   it reads needs it all) and stops once that answer is complete, and its connection is not reused;
 * - https: TLS with the upstream's options (upstream-tls.ts: CA, client certificate, SPIFFE
 *   pinning), the target's fixed SNI name (none for an IP address without `server_name`), ALPN
 *   `http/1.1`, and the last session the target gave offered again (resumption), as undici's
 *   connector does; `timeouts.connect` covers the handshake, and a failed one is a connect failure.
 */
import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import { headerName } from '../core/header-names.js';
import { SlotSet } from '../core/slot-set.js';
import { BodyWriter } from './h1-body-writer.js';
import { InvalidResponseError, ResponseParser, type ResponseSink } from './h1-response-parser.js';
import { flushAtTurnEnd, type TurnFlush } from './turn-batch.js';
import { isLocalFailure, upstreamErrorCode } from './upstream-error.js';

/** What a request needs from its caller (forward.ts's UpstreamCall). */
export interface H1Handler {
  /** The request is about to be written on a connection; `reused` when it carried one before. */
  onConnect(abort: (err?: Error) => void, reused: boolean): void;
  /** The final response head; returning false pauses reading until `resume` is called. */
  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean;
  /** A body slice; returning false pauses reading until `resume` is called. */
  onData(chunk: Buffer): boolean;
  onComplete(trailers: null): void;
  /** The exchange failed (or was aborted); called once, never after `onComplete`. */
  onError(err: Error): void;
}

export interface H1Request {
  readonly method: string;
  readonly path: string;
  /** A flat `[name, value, ...]` list; a Host header is added from the target when absent. */
  readonly headers: readonly string[];
  /**
   * Null; the whole body (sent with its Content-Length); or a body streamed as it comes, sent
   * with the Content-Length in `headers`, else chunked.
   */
  readonly body: Buffer | AsyncIterable<Buffer> | null;
  /** `timeouts.read`: the longest wait between two reads of the response; 0 for none. */
  readonly readTimeoutMs: number;
  /** Close the connection after this request (`keepalive: 0`). */
  readonly reset: boolean;
  /**
   * Open a new connection for it rather than take an idle one: the keep-alive race's retry, which
   * on the next idle connection could meet the same race (every idle connection of a target that
   * restarted is stale).
   */
  readonly fresh?: boolean;
}

const KEEPALIVE = { keepAlive: true, keepAliveInitialDelay: 60_000 } as const;

/** TLS to an https target. */
export interface H1Tls {
  /** The upstream's secure context, verification and pinning (`checkServerIdentity`). */
  readonly options: ConnectionOptions;
  /** Sent in SNI and verified; undefined: no SNI, the certificate is checked against the address. */
  readonly servername: string | undefined;
}

export interface H1PoolOptions {
  readonly connectTimeoutMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Idle connections kept at most. */
  readonly maxIdle: number;
  /** For an https target; null or absent: plain TCP. */
  readonly tls?: H1Tls | null;
}

/** A failure with a code upstream-error.ts maps to a status. */
class UpstreamSocketError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * An error before the connection was ready, a TLS handshake's included, is a connect failure
 * whatever its code (nginx: "SSL_do_handshake() failed ... while SSL handshaking to upstream"):
 * OpenSSL's `ERR_SSL_*` and verification codes (`CERT_NOT_YET_VALID`) were logged as a reset of a
 * connection that never carried a request. The code and message are kept in the message. A
 * failure of this host's (no file descriptor) keeps its code: it is not the target's.
 */
function connectFailure(err: Error): Error {
  const code = (err as { code?: unknown }).code;
  const mapped = upstreamErrorCode(err);
  if (typeof code === 'string' && (mapped === 'SLUICE_E_UPSTREAM_CONNECT' || isLocalFailure(mapped)))
    return err;
  const named = typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  return new UpstreamSocketError('SLUICE_CONNECT_FAILED', named);
}

// Request head values must not carry controls (CR and LF above all: header injection), nor
// characters above U+00FF, whose low byte latin1 would write (U+010A is an LF). Values from the
// client were checked by Node's parser; set_headers templates may yield anything.
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_TARGET = /[^\x21-\x7e\x80-\xff]/;
/** Methods whose requests normally carry a body: one without is sent `Content-Length: 0`. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Keep-alive connections to one `host:port`. */
export class H1Pool {
  readonly #host: string;
  readonly #port: number;
  /** `host:port` as sent in Host when the request has none. */
  readonly #authority: string;
  readonly #options: H1PoolOptions;
  readonly #idle: H1Connection[] = [];
  readonly #busy = new SlotSet<H1Connection>('sluice.busy');
  #closing = false;
  #closed: (() => void) | null = null;
  /**
   * One timer for the pool's idle deadlines, set for the earliest (`#sweep`). Giving each idle
   * connection its own socket timeout, and the read timeout back at its next request, was two
   * `socket.setTimeout` calls per proxied request (a new Timeout and a bound callback each): 2.6 %
   * of a proxy worker's CPU under `wrk -c64`.
   */
  #sweepTimer: NodeJS.Timeout | null = null;
  #sweepAt = Number.POSITIVE_INFINITY;
  /** The last TLS session the target gave: a new connection offers it (resumption). */
  #session: Buffer | undefined = undefined;
  readonly #keepSession = (session: Buffer): void => {
    this.#session = session;
  };

  /** `origin` is `http://host:port` or `https://host:port` (then `options.tls` says how). */
  constructor(origin: string, options: H1PoolOptions) {
    const url = new URL(origin);
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    this.#authority = url.host;
    this.#options = options;
  }

  /** A new connection's socket: TCP, or TLS for an https target. */
  #open(): Socket {
    const secure = this.#options.tls;
    // TCP keep-alive after 60 s idle, as undici's connector sets it: a target that vanished
    // (rebooted, a NAT entry dropped) is found out on an idle pooled connection too.
    if (secure == null) return connect({ ...KEEPALIVE, host: this.#host, port: this.#port, noDelay: true });
    const socket = connectTls({
      ...secure.options,
      host: this.#host,
      port: this.#port,
      ...(secure.servername === undefined ? {} : { servername: secure.servername }),
      session: this.#session,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE.keepAliveInitialDelay);
    socket.on('session', this.#keepSession);
    return socket;
  }

  /** Connections open (busy and idle), for tests and the status page. */
  get connections(): number {
    return this.#idle.length + this.#busy.size;
  }

  /** Sends a request. Never throws: failures reach `handler.onError`. */
  request(req: H1Request, handler: H1Handler): void {
    if (this.#closing) {
      queueMicrotask(() =>
        handler.onError(new UpstreamSocketError('SLUICE_POOL_CLOSED', 'upstream pool closed')),
      );
      return;
    }
    const head = requestHead(req, this.#authority);
    if (typeof head !== 'string') {
      queueMicrotask(() => handler.onError(head));
      return;
    }
    let conn = req.fresh === true ? undefined : this.#idle.pop();
    if (conn !== undefined) {
      // Past its deadline is as good as closed: the sweep timer runs late when the event loop is
      // busy (a blocked turn of 300 ms), and the target may be closing it at that very moment.
      const now = performance.now();
      while (conn !== undefined && (conn.gone || conn.idleUntil <= now)) {
        if (!conn.gone) conn.destroy();
        conn = this.#idle.pop();
      }
    }
    if (conn === undefined) {
      conn = new H1Connection(this, this.#open(), this.#options.tls != null, this.#options.connectTimeoutMs);
    }
    this.#busy.add(conn);
    conn.start(req, head, handler);
  }

  /**
   * A connection finished its exchange and may be kept: true when it was. `hintMs` is how long
   * the target's `Keep-Alive: timeout=` lets it idle (less a second), or -1 without a hint.
   */
  release(conn: H1Connection, hintMs: number): boolean {
    this.#busy.delete(conn);
    const timeout = this.#options.keepaliveTimeoutMs;
    const ms = hintMs < 0 ? timeout : Math.min(hintMs, timeout);
    const keep = !this.#closing && ms > 0 && this.#idle.length < this.#options.maxIdle;
    if (keep) {
      const until = performance.now() + ms;
      conn.idleUntil = until;
      this.#idle.push(conn);
      // Deadlines mostly come in order: the timer is moved only for a shorter one (a target's hint).
      if (until < this.#sweepAt) this.#armSweep(until);
    }
    this.#maybeClosed();
    return keep;
  }

  #armSweep(at: number): void {
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer);
    this.#sweepAt = at;
    this.#sweepTimer = setTimeout(() => this.#sweep(), Math.max(0, at - performance.now()));
    this.#sweepTimer.unref();
  }

  /** Closes the idle connections past their deadline, and waits for the next one. */
  #sweep(): void {
    this.#stopSweep();
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const c of this.#idle) {
      if (c.gone) continue;
      if (c.idleUntil <= now) c.destroy();
      else if (c.idleUntil < next) next = c.idleUntil;
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armSweep(next);
  }

  #stopSweep(): void {
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer);
    this.#sweepTimer = null;
    this.#sweepAt = Number.POSITIVE_INFINITY;
  }

  /** A connection closed (busy or idle). */
  forget(conn: H1Connection): void {
    this.#busy.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#maybeClosed();
  }

  #maybeClosed(): void {
    if (this.#closing && this.#busy.size === 0 && this.#closed !== null) {
      this.#closed();
      this.#closed = null;
    }
  }

  /** Closes idle connections now and busy ones once their exchange is done. */
  close(): Promise<void> {
    this.#closing = true;
    this.#stopSweep();
    for (const c of this.#idle.splice(0)) c.destroy();
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#closed = resolve;
    });
  }

  /** Closes every connection at once, failing the exchanges in flight. */
  destroy(): Promise<void> {
    this.#closing = true;
    this.#stopSweep();
    for (const c of this.#idle.splice(0)) c.destroy();
    for (const c of [...this.#busy])
      c.fail(new UpstreamSocketError('SLUICE_POOL_CLOSED', 'upstream pool destroyed'));
    this.#busy.clear();
    this.#maybeClosed();
    return Promise.resolve();
  }
}

/** The request head, or the error that keeps it from being sent. */
function requestHead(req: H1Request, authority: string): string | Error {
  if (BAD_TARGET.test(req.path))
    return new UpstreamSocketError('SLUICE_INVALID_REQUEST', 'invalid request target');
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  let host = false;
  let length = false;
  const body = req.body;
  const whole = body !== null && Buffer.isBuffer(body);
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    const lower = headerName(name);
    if (lower === 'host') host = true;
    else if (lower === 'content-length') {
      if (whole) continue; // replaced by the body's own length below
      length = true;
    } else if (lower === 'transfer-encoding' || lower === 'connection') {
      // Framing is this client's (a body goes with its Content-Length), and so is the connection:
      // a set_headers entry naming either would desynchronise the connection.
      continue;
    }
    if (BAD_HEADER_VALUE.test(value)) {
      return new UpstreamSocketError('SLUICE_INVALID_REQUEST', `invalid value for request header ${name}`);
    }
    head += `${name}: ${value}\r\n`;
  }
  if (!host) head += `host: ${authority}\r\n`;
  if (whole) head += `content-length: ${body.length}\r\n`;
  else if (body !== null) {
    // A streamed body without a length (the client's was chunked): chunked, as undici sent it.
    if (!length) head += 'transfer-encoding: chunked\r\n';
  } else if (!length && BODY_METHODS.has(req.method)) head += 'content-length: 0\r\n';
  if (req.reset) head += 'connection: close\r\n';
  return `${head}\r\n`;
}

/**
 * The Content-Length among `headers` (a streamed body's, as the client sent it and its parser
 * checked it), or -1 when there is none.
 */
function declaredLength(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headerName(headers[i]!) === 'content-length') return Number(headers[i + 1]);
  }
  return -1;
}

/** One connection to a target, carrying one exchange at a time. */
class H1Connection implements ResponseSink, TurnFlush {
  readonly #pool: H1Pool;
  readonly #socket: Socket;
  readonly #parser: ResponseParser;
  #connected = false;
  #requests = 0;
  #handler: H1Handler | null = null;
  #request: H1Request | null = null;
  #head = '';
  /** Counts exchanges, so an abort or resume from a finished one does nothing. */
  #exchange = 0;
  #reusable = false;
  /** How long the target lets this connection idle, from its Keep-Alive hint; -1 without one. */
  #idleHintMs = -1;
  #paused = false;
  #received = false;
  /** The streamed body still going out, if any. */
  #writer: BodyWriter | null = null;
  /** The socket's timeout as last set: set again only when it changes (the pool's note on timers). */
  #timeoutMs = 0;
  /**
   * While idle in the pool: when it is to be closed, on the monotonic clock (`performance.now()`):
   * a wall clock set back would keep idle connections past keepalive_timeout.
   */
  idleUntil = 0;

  /** `secure`: a TLS socket, ready once its handshake is done. */
  constructor(pool: H1Pool, socket: Socket, secure: boolean, connectTimeoutMs: number) {
    this.#pool = pool;
    this.#parser = new ResponseParser(this);
    this.#socket = socket;
    this.#setTimeout(connectTimeoutMs);
    socket.on(secure ? 'secureConnect' : 'connect', () => this.#onConnect());
    socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.fail(this.#connected ? err : connectFailure(err)));
    socket.on('close', () => this.#onClose());
    socket.on('timeout', () => this.#onTimeout());
  }

  /** Closed, or closing: not to be used. */
  get gone(): boolean {
    return this.#socket.destroyed;
  }

  start(req: H1Request, head: string, handler: H1Handler): void {
    this.#handler = handler;
    this.#request = req;
    this.#head = head;
    this.#received = false;
    this.#reusable = false;
    this.#exchange++;
    this.#parser.reset(req.method === 'HEAD');
    if (this.#connected) this.#send();
  }

  #onConnect(): void {
    this.#connected = true;
    if (this.#handler !== null) this.#send();
  }

  #send(): void {
    const req = this.#request!;
    const handler = this.#handler!;
    const reused = this.#requests > 0;
    this.#requests++;
    const id = this.#exchange;
    // Unchanged since the last request, it is left as is: the write below restarts its countdown.
    this.#setTimeout(req.readTimeoutMs);
    handler.onConnect((err) => {
      if (id === this.#exchange && this.#handler !== null)
        this.fail(err ?? new UpstreamSocketError('SLUICE_ABORTED', 'aborted'));
    }, reused);
    if (this.#handler !== handler) return; // aborted in onConnect
    flushAtTurnEnd(this);
  }

  /** Writes the request (held to the end of the turn: turn-batch.ts). */
  flushTurn(): void {
    const req = this.#request;
    const head = this.#head;
    this.#head = '';
    if (req === null || head === '' || this.#socket.destroyed) return;
    const body = req.body;
    if (body === null) {
      this.#socket.write(head, 'latin1');
    } else if (Buffer.isBuffer(body)) {
      this.#socket.cork();
      this.#socket.write(head, 'latin1');
      this.#socket.write(body);
      this.#socket.uncork();
    } else {
      this.#socket.write(head, 'latin1');
      this.#stream(body, declaredLength(req.headers));
    }
  }

  /** Sends a streamed body after its head; `length` is its Content-Length, or -1 (chunked). */
  #stream(body: AsyncIterable<Buffer>, length: number): void {
    const id = this.#exchange;
    const writer = new BodyWriter(this.#socket, body, length, (err) => {
      if (this.#writer !== writer) return;
      this.#writer = null;
      if (err !== null && id === this.#exchange && this.#handler !== null) this.fail(err);
      // The whole body is out: the target's silence counts from now. The timer may have run out
      // (and been passed over, see #onTimeout) while the client held back its body's end, and a
      // Content-Length body ends with no write that would have started it again.
      else if (err === null && this.#handler !== null) this.#socket.setTimeout(this.#timeoutMs);
    });
    this.#writer = writer;
    writer.start();
  }

  /**
   * The answer is complete before the streamed body is all out: nothing more of it is sent, and
   * the connection, left mid-body, is not reused. (Until then the body goes on, as undici sent it:
   * a target answering while it reads, `req.pipe(res)`, needs the rest of the body to finish.)
   */
  #stopBody(): void {
    this.#reusable = false;
    this.#writer!.stop();
    this.#writer = null;
  }

  #onData(data: Buffer): void {
    if (this.#handler === null) {
      // Bytes nobody asked for on an idle connection: it cannot be trusted with a request.
      this.destroy();
      return;
    }
    this.#received = true;
    try {
      this.#parser.feed(data);
    } catch (err) {
      this.fail(err instanceof InvalidResponseError ? err : new InvalidResponseError(String(err)));
    }
  }

  onHead(status: number, reason: string, headers: string[], keepAlive: boolean, keepAliveMs: number): void {
    const handler = this.#handler!;
    this.#reusable = keepAlive && !this.#request!.reset;
    this.#idleHintMs = keepAliveMs < 0 ? -1 : Math.max(0, keepAliveMs - 1000);
    const id = this.#exchange;
    const resume = () => {
      if (id === this.#exchange) this.#resume();
    };
    try {
      if (!handler.onHeaders(status, headers, resume, reason) && this.#handler === handler) this.#pause();
    } catch (err) {
      // The handler refused the head (Node rejects a header value): a bad answer, 502.
      this.fail(new InvalidResponseError(err instanceof Error ? err.message : String(err)));
    }
  }

  onBody(chunk: Buffer): void {
    const handler = this.#handler!;
    if (!handler.onData(chunk) && this.#handler === handler) this.#pause();
  }

  onEnd(extra: number): void {
    const handler = this.#handler!;
    if (this.#writer !== null) this.#stopBody();
    this.#handler = null;
    this.#request = null;
    // The read timeout stays armed while idle (the pool times idleness), so the next request on
    // this connection need not set it again.
    if (this.#paused) this.#resume();
    const keep = this.#reusable && extra === 0 && !this.#socket.readableEnded;
    if (!(keep && this.#pool.release(this, this.#idleHintMs))) {
      this.#pool.forget(this);
      this.destroy();
    }
    handler.onComplete(null);
  }

  /**
   * Stops reading while the client is behind. The read timeout is off meanwhile: it bounds the
   * target's silence, not a slow client's (undici's body timeout likewise skips a paused parser).
   */
  #pause(): void {
    this.#paused = true;
    this.#setTimeout(0);
    this.#socket.pause();
  }

  #resume(): void {
    this.#paused = false;
    if (this.#request !== null) this.#setTimeout(this.#request.readTimeoutMs);
    this.#socket.resume();
  }

  #setTimeout(ms: number): void {
    if (ms === this.#timeoutMs) return;
    this.#timeoutMs = ms;
    this.#socket.setTimeout(ms);
  }

  #onEnd(): void {
    // The target closed its side: a body that runs to the close ends here; else the answer was cut short.
    if (this.#handler !== null && !this.#parser.finish()) {
      this.fail(
        new UpstreamSocketError(
          'SLUICE_UPSTREAM_CLOSED',
          this.#received ? 'upstream closed the connection mid-response' : 'upstream closed the connection',
        ),
      );
    }
    this.destroy();
  }

  #onTimeout(): void {
    if (this.#handler === null) {
      // The read timeout, run out while idle: the pool's deadline decides (a keepalive_timeout
      // longer than timeouts.read keeps the connection). It starts again with the next write.
      if (performance.now() >= this.idleUntil) this.destroy();
      return;
    }
    // Taken from the pool with its read timer about to run out from the idle time, which the
    // request's write (held to the turn's end) has not restarted yet: the target has not been
    // asked anything, so it cannot be late. The write re-arms the timer.
    if (this.#connected && this.#head !== '') return;
    // Waiting for the client's next piece of a streamed body: the target is not late. (undici's
    // headers timeout, which timed these bodies before, likewise held off while one was written.)
    // The countdown starts again now (a socket's timer fires once, then waits for activity) and
    // when the body is all out.
    if (this.#writer !== null && !this.#writer.waitingForTarget) {
      this.#socket.setTimeout(this.#timeoutMs);
      return;
    }
    this.fail(
      this.#connected
        ? new UpstreamSocketError('SLUICE_READ_TIMEOUT', 'upstream read timed out')
        : new UpstreamSocketError('SLUICE_CONNECT_TIMEOUT', 'upstream connect timed out'),
    );
  }

  #onClose(): void {
    if (this.#handler !== null) {
      this.fail(new UpstreamSocketError('SLUICE_UPSTREAM_CLOSED', 'upstream connection closed'));
    }
    this.#pool.forget(this);
  }

  /** Ends the exchange in flight (if any) with `err` and closes the connection. */
  fail(err: Error): void {
    const handler = this.#handler;
    this.#handler = null;
    this.#request = null;
    this.#parser.stop();
    this.#writer?.stop();
    this.#writer = null;
    this.destroy();
    handler?.onError(err);
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
