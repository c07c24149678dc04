/**
 * A WebSocket (or any Upgrade) tunnel after the target answered 101: the 101 head is relayed to
 * the client, then bytes flow both ways with back-pressure (`pipe`) until either side closes.
 * The tunnel closes when no byte has moved either way for `timeouts.read` (nginx closes
 * WebSockets after `proxy_read_timeout` of silence the same way; WebSocket pings keep a tunnel
 * open). An error or close on one side closes the other.
 */
import type { Socket } from 'node:net';
import { headerName } from '../core/header-names.js';
import type { ProxyExchange } from './proxy-exchange.js';
import type { ProxyRoute } from './proxy-route.js';

/** Hop-by-hop headers dropped from a 101 answer; `Connection` and `Upgrade` are its point and stay. */
const DROP_101 = new Set([
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
]);

/** Relays the 101 answer and joins the client and target sockets; `onClose` runs once, when both are closed. */
export function openTunnel(
  x: ProxyExchange,
  route: ProxyRoute,
  rawHeaders: readonly Buffer[],
  upstream: Socket,
  onClose: () => void,
): void {
  const client = x.req.socket;
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1');
    const lower = headerName(name);
    if (DROP_101.has(lower) || route.dropResponse.has(lower)) continue;
    head += `${name}: ${rawHeaders[i + 1]!.toString('latin1')}\r\n`;
  }
  // A 101 is none of the statuses `response_headers.add` applies to; `add_always` applies.
  for (const [name, template] of [...route.responseSetHeaders, ...route.responseAddAlwaysHeaders]) {
    const value = template(x);
    if (value !== '' && !/[\r\n\0]/.test(value)) head += `${name}: ${value}\r\n`;
  }
  client.write(`${head}\r\n`);
  const early = x.upgradeHead;
  if (early !== null && early.length > 0) upstream.write(early);

  let closed = 0;
  const done = () => {
    if (++closed < 2) return;
    onClose();
    x.complete();
  };
  const idleMs = route.readTimeoutMs;
  for (const [a, b] of [
    [client, upstream],
    [upstream, client],
  ] as const) {
    a.on('error', () => b.destroy());
    a.on('close', () => {
      b.destroy();
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
  upstream.on('data', (chunk: Buffer) => {
    x.bytesOut += chunk.length;
  });
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
  upstream.resume();
}
