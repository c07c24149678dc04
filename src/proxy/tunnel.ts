/**
 * A WebSocket (or any Upgrade) tunnel after the target answered 101: the 101 head is relayed to
 * the client, then bytes flow both ways with back-pressure (`pipe`) until either side ends.
 * The tunnel closes when no byte has moved either way for `timeouts.read` (nginx closes
 * WebSockets after `proxy_read_timeout` of silence the same way; WebSocket pings keep a tunnel
 * open). A FIN, an error or a close on one side closes both, as nginx does (it finalizes an
 * upgraded request when either side reaches EOF and what it sent has been passed on): what that
 * side sent is delivered, then each socket is ended and closed once flushed (at most
 * CLOSE_FLUSH_MS). Passed on as a half-close, a FIN left a target that does not close on FIN,
 * and so the tunnel and its access line, open until `timeouts.read` (60 s by default).
 *
 * A peer that reads nothing is timed as nginx times an upgraded connection's writes: a target that
 * takes no byte of what the client sends for `timeouts.send` (proxy_send_timeout) ends the tunnel
 * here, with SLUICE_E_UPSTREAM_TIMEOUT; a client that takes none for `limits.send_timeout` is the
 * listener's (its send_timeout sweep). Before, the reader's own traffic (pings) kept the idle
 * timeout from firing, and the tunnel was held for good.
 */
import type { Socket } from 'node:net';
import { connectionTokens, headerName, isHopByHop } from '../core/header-names.js';
import type { ProxyExchange } from './proxy-exchange.js';
import type { ProxyRoute } from './proxy-route.js';

/**
 * How long a tunnel being closed may take to hand what is queued to each socket before both are
 * destroyed, so that a peer that never reads cannot hold it open (nginx's lingering_timeout, 5 s).
 */
const CLOSE_FLUSH_MS = 5000;

/**
 * The 101 head relayed to the client (without its final CRLF). Hop-by-hop headers and those the
 * target's `Connection` names are the target's connection's, not the client's, and are dropped
 * (RFC 9110 7.6.1), as for any answer (response-headers.ts); `Connection: Upgrade` is sluice's own
 * and `Upgrade` is relayed, the two being the point of a 101. Two passes over the raw headers, since
 * `Connection` may come after the headers it names.
 */
function switchingHead(x: ProxyExchange, route: ProxyRoute, rawHeaders: readonly Buffer[]): string {
  let named: string[] | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (headerName(rawHeaders[i]!.toString('latin1')) === 'connection')
      named = connectionTokens(rawHeaders[i + 1]!.toString('latin1'), named);
  }
  let head = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1');
    const lower = headerName(name);
    if (lower !== 'upgrade' && (isHopByHop(lower) || route.dropResponse.has(lower) || named?.includes(lower)))
      continue;
    head += `${name}: ${rawHeaders[i + 1]!.toString('latin1')}\r\n`;
  }
  // A 101 is none of the statuses `response_headers.add` applies to; `add_always` applies.
  for (const [name, template] of [...route.responseSetHeaders, ...route.responseAddAlwaysHeaders]) {
    const value = template(x);
    if (value !== '' && !/[\r\n\0]/.test(value)) head += `${name}: ${value}\r\n`;
  }
  return head;
}

/** Relays the 101 answer and joins the client and target sockets; `onClose` runs once, when both are closed. */
export function openTunnel(
  x: ProxyExchange,
  route: ProxyRoute,
  rawHeaders: readonly Buffer[],
  upstream: Socket,
  onClose: () => void,
): void {
  const client = x.req.socket;
  client.write(`${switchingHead(x, route, rawHeaders)}\r\n`);
  const early = x.upgradeHead;
  if (early !== null && early.length > 0) upstream.write(early);

  const countOut = (chunk: Buffer): void => {
    x.bytesOut += chunk.length;
  };
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = 0;
  const done = () => {
    if (++closed < 2) return;
    clearTimeout(flushTimer);
    onClose();
    x.complete();
  };
  // Whichever side ended (or failed) first, everything it sent has been written to the other by
  // now ('end' comes after the last 'data'): no more is read either way, and both are ended.
  const closeBoth = () => {
    if (flushTimer !== undefined) return;
    stopWatch();
    flushTimer = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, CLOSE_FLUSH_MS);
    flushTimer.unref();
    client.unpipe(upstream);
    upstream.unpipe(client);
    upstream.off('data', countOut);
    for (const s of [client, upstream]) {
      s.pause();
      // Called back once flushed, or at once (with an error) when it could not be: closed either way.
      s.end(() => s.destroy());
    }
  };
  const idleMs = route.readTimeoutMs;
  for (const [a, b] of [
    [client, upstream],
    [upstream, client],
  ] as const) {
    a.on('end', closeBoth);
    a.on('error', closeBoth);
    a.on('close', () => {
      closeBoth();
      done();
    });
    // A socket's timeout counts reads and writes, so each times out only when the tunnel is
    // silent both ways.
    if (idleMs > 0) {
      a.setTimeout(idleMs, () => {
        a.destroy();
        b.destroy();
      });
    }
  }
  // A client that reads nothing stalls an echoing target, which then stops reading too: while the
  // client has bytes queued, the stall is the client's (the listener's send_timeout), not the target's.
  const clientFull = (): boolean => client.writableLength > 0;
  const stopWatch = watchStalled(client, upstream, route.sendTimeoutMs, clientFull, () => {
    x.cut('SLUICE_E_UPSTREAM_TIMEOUT');
    client.destroy();
    upstream.destroy();
  });
  upstream.on('data', countOut);
  // Not `end`: a FIN closes the tunnel (closeBoth), it is not passed on as a half-close.
  client.pipe(upstream, { end: false });
  upstream.pipe(client, { end: false });
  client.resume();
  upstream.resume();
}

/**
 * Calls `onStall` once `to` has taken no byte for `ms` while `from` is held back for it (a pipe
 * pauses its source when the destination's queue is full, and resumes it once drained), unless
 * `excused()` says the stall is another's: a timer runs only while held back, so a flowing tunnel
 * pays nothing. Progress is what the kernel took
 * (`bytesWritten` counts what is still queued). Returns the function that stops the watch.
 */
function watchStalled(
  from: Socket,
  to: Socket,
  ms: number,
  excused: () => boolean,
  onStall: () => void,
): () => void {
  if (ms <= 0) return () => {};
  let timer: NodeJS.Timeout | undefined;
  let taken = 0;
  let stopped = false;
  const progress = () => to.bytesWritten - to.writableLength;
  const check = () => {
    const now = progress();
    if (now === taken && !excused()) {
      timer = undefined;
      onStall();
      return;
    }
    taken = now;
    timer = setTimeout(check, ms).unref();
  };
  const onPause = () => {
    if (stopped || timer !== undefined) return;
    taken = progress();
    timer = setTimeout(check, ms).unref();
  };
  const onResume = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  from.on('pause', onPause);
  from.on('resume', onResume);
  return () => {
    stopped = true;
    onResume();
  };
}
