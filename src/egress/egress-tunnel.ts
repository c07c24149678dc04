/**
 * A CONNECT tunnel: connect to the target, answer `200 Connection Established`, then relay bytes
 * both ways with back-pressure (`pipe`) until both sides are done.
 *
 *   net.connect ─connect─▶ peer is this proxy? ─yes─▶ 403 loop
 *        │                       └─no─▶ 200, early bytes (`head`) upstream, pipe ⇄ pipe
 *        ├─error─▶ 502          (connect refused, DNS failure, reset)
 *        └─timeout─▶ 504        (no connection within timeouts.connectMs)
 *
 * Half-closes are passed on (a FIN from one side ends the other's writing side); an error on either
 * side destroys both; so does `timeouts.idleMs` without a byte either way (each socket's timer
 * counts its reads and writes, so it fires only when the tunnel is silent both ways). Only the
 * name in the CONNECT line is known here: what flows inside (usually TLS) is not inspected.
 */
import net, { type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { upstreamErrorCode } from '../proxy/upstream-error.js';
import { nextRequestId } from '../server/request-id.js';
import type { EgressContext, EgressInFlight } from './egress-context.js';
import { type EgressAnswerCode, egressStatus, rawEgressResponse } from './egress-errors.js';
import { logDenied, logEgress } from './egress-log.js';
import type { EgressTarget } from './egress-target.js';

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** Bytes a client may send before its tunnel is established that are held for the target. */
const EARLY_MAX = 64 * 1024;

/** Opens an allowed tunnel for `client`; `head` holds bytes it sent after the CONNECT head. */
export function openEgressTunnel(
  ctx: EgressContext,
  client: Socket,
  head: Buffer,
  target: EgressTarget,
  source: string,
  policy: string,
): void {
  const startedAt = performance.now();
  const upstream = net.connect({
    host: target.connectHost,
    port: target.port,
    allowHalfOpen: true,
    noDelay: true,
  });
  let status = 0;
  let error: string | null = null;
  let errorId: string | null = null;
  let logged = false;
  // 499, as for a request whose client left before its answer: the client gone, or sluice cut it.
  const end499 = (why: string) => {
    if (logged) return;
    upstream.destroy();
    client.destroy();
    status = 499;
    error = why;
    log();
  };
  const inFlight: EgressInFlight = { cut: end499 };
  ctx.inFlight.add(inFlight);
  const log = () => {
    if (logged) return;
    logged = true;
    ctx.inFlight.delete(inFlight);
    logEgress(ctx.log, {
      source,
      host: target.host,
      port: target.port,
      method: 'CONNECT',
      policy,
      status,
      bytes_sent: upstream.bytesWritten,
      bytes_received: upstream.bytesRead,
      duration_ms: Math.round(performance.now() - startedAt),
      error,
      error_id: errorId,
    });
  };
  const fail = (code: EgressAnswerCode) => {
    if (logged) return;
    upstream.destroy();
    errorId = nextRequestId();
    error = code;
    if (!client.destroyed) {
      status = egressStatus(code);
      client.end(rawEgressResponse(code, errorId), () => client.destroy());
    }
    log();
  };
  const clientGone = () => end499('client_gone');
  // The client is read while the target connects, so its FIN is seen (a client that gave up ends
  // the attempt at once, not at the connect timeout with a 504 written to a closed socket); bytes
  // it sends meanwhile are kept for the target, at most EARLY_MAX before reading pauses.
  const early: Buffer[] = head.length > 0 ? [head] : [];
  let earlyBytes = head.length;
  const onEarly = (chunk: Buffer) => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes >= EARLY_MAX) client.pause();
  };
  client.on('data', onEarly);
  client.once('end', clientGone);
  // Node hands a CONNECT's socket over paused (and holdEarly leaves it so).
  if (earlyBytes < EARLY_MAX) client.resume();

  upstream.setTimeout(ctx.timeouts.connectMs);
  upstream.once('timeout', () => fail('SLUICE_E_UPSTREAM_TIMEOUT'));
  upstream.on('error', (err) => fail(upstreamErrorCode(err)));
  client.once('close', clientGone);
  upstream.once('connect', () => {
    upstream.removeAllListeners('timeout');
    upstream.removeAllListeners('error');
    client.off('close', clientGone);
    client.off('end', clientGone);
    client.off('data', onEarly);
    if (client.destroyed) {
      upstream.on('error', ignore);
      upstream.destroy();
      clientGone();
      return;
    }
    if (ctx.loop.pointsAtSelf(upstream.remoteAddress, upstream.remotePort)) {
      // Denied, not tunnelled: its line is `egress denied`.
      logged = true;
      ctx.inFlight.delete(inFlight);
      upstream.on('error', ignore);
      upstream.destroy();
      const id = nextRequestId();
      client.end(rawEgressResponse('SLUICE_E_CLIENT_EGRESS_LOOP', id), () => client.destroy());
      logDenied(ctx.log, {
        source,
        host: target.host,
        port: target.port,
        method: 'CONNECT',
        reason: 'loop',
        error_id: id,
      });
      return;
    }
    status = 200;
    client.write(ESTABLISHED);
    for (const chunk of early) upstream.write(chunk);
    join(client, upstream, ctx.timeouts.idleMs, log);
  });
}

/**
 * Reads a CONNECT's client while its answer waits (for the answers ahead of it on its connection):
 * bytes it sends are kept, behind `head`, at most EARLY_MAX before reading pauses, and its FIN
 * destroys it, so a client that left is seen at once. The returned function stops reading, leaves
 * the socket paused, and returns `head` with what was kept, for `openEgressTunnel`.
 */
export function holdEarly(client: Socket, head: Buffer): () => Buffer {
  const early: Buffer[] = [head];
  let earlyBytes = head.length;
  const onData = (chunk: Buffer) => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes >= EARLY_MAX) client.pause();
  };
  const onEnd = () => client.destroy();
  client.on('data', onData);
  client.once('end', onEnd);
  if (earlyBytes < EARLY_MAX) client.resume();
  return () => {
    client.off('data', onData);
    client.off('end', onEnd);
    client.pause();
    return early.length === 1 ? head : Buffer.concat(early);
  };
}

/** Relays bytes both ways; `onClosed` runs once, when both sockets are closed. */
function join(client: Socket, upstream: Socket, idleMs: number, onClosed: () => void): void {
  let closed = 0;
  for (const [a, b] of [
    [client, upstream],
    [upstream, client],
  ] as const) {
    a.on('error', () => {
      a.destroy();
      b.destroy();
    });
    a.on('close', () => {
      // Nothing more can reach `a`: finish what is being written to `b`, then close it.
      if (!b.destroyed) b.destroySoon();
      if (++closed === 2) onClosed();
    });
    a.setTimeout(idleMs, () => {
      a.destroy();
      b.destroy();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
}

function ignore(): void {}
