/**
 * autocannon's client reconnects after a connection ends or fails under a request, but keeps the
 * unanswered request in its queue: the next answer on the new connection is matched to it, so every
 * later latency on that client is measured from the wrong start (a server dropping 1 request in 50
 * turned a 0.1 ms p50 into 7 ms), and a connection the server simply closed (a FIN, no reset) is not
 * counted as an error at all. This empties the queue on such a reconnect and reports the closure.
 */
import type { AutocannonClient } from './autocannon.js';

/** The code a closure by the server with a request unanswered is counted under (a reset is ECONNRESET). */
export const CLOSED_UNDER_REQUEST = 'EOF';

/**
 * Makes one autocannon client drop the requests a broken connection lost, and calls `onClosed` when
 * the server closed the connection cleanly under one (a socket error is reported by autocannon).
 */
export function dropLostRequests(client: AutocannonClient, onClosed: () => void): void {
  let failed = false;
  client.on('connError', () => {
    failed = true;
  });
  const connect = client._connect;
  client._connect = function (this: AutocannonClient, ...args: unknown[]) {
    // Requests still queued here were written on the connection that just ended: none will be answered.
    // (A deliberate reset, a timeout or Connection: close empties the queue before it reconnects.)
    if (this.pipelinedRequests.size() > 0) {
      this.pipelinedRequests.clear();
      if (!failed) onClosed();
    }
    failed = false;
    return connect.apply(this, args);
  };
}
