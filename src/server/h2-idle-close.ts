import type http2 from 'node:http2';

/**
 * keepalive_timeout on an HTTP/2 connection, timed as nginx times it: the clock runs only while no
 * stream the client opened is open, from the connection's start or from its last stream's close,
 * and GOAWAY (`session.close()`) goes when it reaches `idleMs`; the streams in flight then (none,
 * or one opened in the same turn) finish first. Frames outside streams (PING, SETTINGS,
 * WINDOW_UPDATE) do not restart it, as in nginx: a client that only pings is still closed. Node's
 * `session.setTimeout` counted silence on the socket instead, and sent GOAWAY to a connection
 * whose streams waited on a slow upstream or a slow upload, so the client's next request had to be
 * retried on a new connection. A stream held by its client's flow-control window is open, and
 * send_timeout ends it. Cost: one counter, and one Timeout per connection refreshed as its last
 * stream closes; per stream, one 'close' listener shared by the connection's streams.
 */
export function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  let open = 0;
  // Fired while streams are open, it does nothing: the last one to close starts the clock again.
  const timer = setTimeout(() => {
    if (open === 0) session.close();
  }, idleMs);
  timer.unref();
  const onStreamClose = (): void => {
    // refresh() re-arms a timer that has fired; after the session's clearTimeout it does nothing.
    if (--open === 0) timer.refresh();
  };
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    open++;
    stream.on('close', onStreamClose);
  });
  session.once('close', () => clearTimeout(timer));
}
