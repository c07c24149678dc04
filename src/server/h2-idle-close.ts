import type http2 from 'node:http2';
import type { Socket } from 'node:net';

/** How long an HTTP/2 connection may stay idle, and how long it may take to close after GOAWAY. */
export interface H2CloseLimits {
  /** keepalive_timeout, ms; 0: no GOAWAY for idleness. */
  readonly idleMs: number;
  /** header_timeout, ms: how long a connection with no stream open may outlive its GOAWAY. */
  readonly graceMs: number;
}

/**
 * How an HTTP/2 connection closes, on one Timeout of its own:
 *
 *   idle ──keepalive_timeout──▶ GOAWAY ──header_timeout──▶ cut   (the clocks run while no stream is open)
 *   goAway(): drain, max_requests_per_connection, stale TLS ──▶ GOAWAY
 *
 * keepalive_timeout is timed as nginx times it: the clock runs only while no stream the client
 * opened is open, from the connection's start or from its last stream's close, and GOAWAY
 * (`session.close()`) goes when it reaches `idleMs`; the streams in flight then (none, or one
 * opened in the same turn) finish first. Frames outside streams (PING, SETTINGS, WINDOW_UPDATE)
 * do not restart it, as in nginx: a client that only pings is still closed. Node's
 * `session.setTimeout` counted silence on the socket instead, and sent GOAWAY to a connection whose
 * streams waited on a slow upstream or a slow upload, so the client's next request had to be
 * retried on a new connection. A stream held by its client's flow-control window is open, and
 * send_timeout ends it.
 *
 * After GOAWAY, Node closes the session once its streams are done, and then ends the socket and
 * waits for the client to end its side. Neither wait had a bound: a header block the client never
 * finishes (HEADERS without END_HEADERS) is a stream to nghttp2 and none to Node, and the session
 * waited for it for ever; a client that keeps its side open after GOAWAY held the socket as long.
 * So once no stream is open past the GOAWAY, the connection has `graceMs` (header_timeout: the
 * time a request head may take) left, and is then cut, as nginx's client_header_timeout ends a
 * header block that does not come. Streams in flight are never cut here: each is bounded on its
 * own (request_timeout, send_timeout, a drain's shutdown_timeout), and the grace starts when the
 * last of them closes.
 *
 * Cost: one counter and one Timeout per connection, refreshed as its last stream closes; per
 * stream, one 'close' listener shared by the connection's streams.
 */
class H2Close {
  readonly #session: http2.ServerHttp2Session;
  readonly #graceMs: number;
  #open = 0;
  #timer: NodeJS.Timeout | null = null;
  /** GOAWAY has gone (from sluice or the client): the timer counts the grace. */
  #closing = false;
  /** The session and its socket are gone. */
  #closed = false;
  /** The TLS socket, handed over after the session (handOverSocket): the session's own is a proxy that refuses destroy(). */
  socket: Socket | null = null;

  constructor(session: http2.ServerHttp2Session, limits: H2CloseLimits) {
    this.#session = session;
    this.#graceMs = limits.graceMs;
    if (limits.idleMs > 0) this.#arm(limits.idleMs);
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      this.#open++;
      stream.on('close', this.#onStreamClose);
    });
    session.once('close', () => {
      this.#closed = true;
      if (this.#timer !== null) clearTimeout(this.#timer);
    });
  }

  /** GOAWAY, unless one went already; the connection then closes within the grace once no stream is open. */
  goAway(): void {
    const session = this.#session;
    if (!session.closed && !session.destroyed) session.close();
    this.#startGrace();
  }

  readonly #onStreamClose = (): void => {
    // refresh() re-arms a timer that has fired; after the session's clearTimeout it does nothing.
    if (--this.#open === 0) this.#timer?.refresh();
  };

  /** Fired while streams are open, it does nothing: the last one to close starts the clock again. */
  readonly #fire = (): void => {
    if (this.#open > 0) return;
    if (this.#closing) this.#cut();
    else this.goAway();
  };

  #startGrace(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    this.#arm(this.#graceMs);
  }

  #arm(ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#fire, ms);
    this.#timer.unref();
  }

  /** Closes the connection now; the session goes with its socket. */
  #cut(): void {
    if (this.socket !== null) this.socket.destroy();
    else this.#session.destroy();
  }
}

const kClose = Symbol('sluice.h2Close');
type Closable = { [kClose]?: H2Close };

/** Closes `session` after keepalive_timeout with no stream open, and bounds its close after any GOAWAY (see H2Close). */
export function closeWhenIdle(session: http2.ServerHttp2Session, limits: H2CloseLimits): void {
  const close = new H2Close(session, limits);
  (session as Closable)[kClose] = close;
  // Set through the session's socket proxy, so on the TLS socket itself (handOverSocket).
  (session.socket as unknown as Closable)[kClose] = close;
}

/**
 * GOAWAY on `session` (drain, max_requests_per_connection, a client-certificate policy change):
 * its streams finish, and it is closed within header_timeout once none is open.
 */
export function goAway(session: http2.ServerHttp2Session): void {
  const close = (session as Closable)[kClose];
  if (close !== undefined) close.goAway();
  else if (!session.closed && !session.destroyed) session.close();
}

/**
 * Hands the TLS socket of an HTTP/2 connection to its close: Node emits 'secureConnection' with it
 * right after the session it made for it ('session'), whose `socket` is a proxy that refuses
 * `destroy()`. A socket that carries no HTTP/2 session is left alone.
 */
export function handOverSocket(socket: Socket): void {
  const close = (socket as Closable)[kClose];
  if (close !== undefined) close.socket = socket;
}
