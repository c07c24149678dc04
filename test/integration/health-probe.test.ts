/**
 * The active health check's probe against targets that answer in pieces: the check's timeout
 * covers the body, so a target that sends its head and then stalls fails the probe.
 */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthTarget } from '../../src/health/active-checker.js';
import { probeTarget } from '../../src/proxy/health-probe.js';

/** A target that writes what `answers` gives for the request path, and never closes on its own. */
async function rawTarget(answers: Record<string, (socket: net.Socket) => void>) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '';
      answers[path]?.(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('the health probe', () => {
  let target: Awaited<ReturnType<typeof rawTarget>>;

  beforeAll(async () => {
    target = await rawTarget({
      '/whole': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
      '/head-then-stall': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok'),
      '/chunked-stall': (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n'),
      // More than the probe reads, then nothing: the status has been read, and it passes.
      '/large-then-stall': (s) =>
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n${'x'.repeat(200 * 1024)}`),
      '/503': (s) => s.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n'),
      '/204': (s) => s.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n'),
      '/304': (s) => s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n'),
      '/cut-short': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok'),
    });
  });

  afterAll(async () => {
    await target?.close();
  });

  const probe = (path: string) =>
    probeTarget({
      upstream: 'u',
      origin: `http://${target.hostPort}`,
      hostPort: target.hostPort,
      check: {
        path,
        intervalMs: 1000,
        timeoutMs: 1000,
        rise: 1,
        fall: 1,
        expectStatus: [[200, 399]],
        host: null,
      },
      health: 'unknown',
      tls: null,
    } as HealthTarget);

  it('passes a whole answer with a status in expect_status', async () => {
    expect(await probe('/whole')).toBeNull();
  });

  it('fails a target that sends its head and part of its body, then stalls', async () => {
    const started = Date.now();
    expect(await probe('/head-then-stall')).toBe('no answer within 1000 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(await probe('/chunked-stall')).toBe('no answer within 1000 ms');
  });

  it('passes a large body without waiting for all of it', async () => {
    expect(await probe('/large-then-stall')).toBeNull();
  });

  // No body, whatever their Content-Length says (RFC 9110 8.6), as proxied answers take them.
  it('passes a 204 or 304 that announces a Content-Length', async () => {
    expect(await probe('/204')).toBeNull();
    expect(await probe('/304')).toBeNull();
  });

  it('fails a body cut short by the connection closing', async () => {
    expect(await probe('/cut-short')).toBe('other side closed');
  });

  it('fails a status outside expect_status', async () => {
    expect(await probe('/503')).toBe('status 503');
  });
});
