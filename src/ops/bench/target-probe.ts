/**
 * One TCP connection to a target before any load. autocannon reconnects at once after a failed
 * connect, so against a closed port it spins a core for the whole run, logging thousands of refusals
 * that say no more than the first one; a probe gets the same answer in a millisecond.
 */
import net from 'node:net';

/** Connects to the URL's host and port and closes; resolves null when it worked, else an error code. */
export function probeTarget(url: string, timeoutMs: number): Promise<string | null> {
  const u = new URL(url);
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (code: string | null) => {
      socket.destroy();
      resolve(code);
    };
    socket.setTimeout(timeoutMs, () => done('ETIMEDOUT'));
    socket.once('connect', () => done(null));
    socket.once('error', (err: Error & { code?: string }) => done(err.code ?? 'ECONNECT'));
  });
}
