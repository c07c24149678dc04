/** Raw-socket HTTP for tests that send what a normal client never would. */
import net from 'node:net';

/** What came back on a raw connection. */
export interface RawResult {
  /** Everything the server sent. */
  readonly text: string;
  /** Status code of the first response, or 0 when none came. */
  readonly status: number;
  /** Whether the server closed the connection before `waitMs` ran out. */
  readonly closed: boolean;
}

/**
 * Sends `payload` (strings are sent as latin1; arrays as separate writes `gapMs` apart) and
 * collects the answer until the server closes or `waitMs` passes.
 */
export function rawRequest(
  port: number,
  payload: string | readonly string[],
  opts: { waitMs?: number; gapMs?: number } = {},
): Promise<RawResult> {
  const waitMs = opts.waitMs ?? 1500;
  const parts = typeof payload === 'string' ? [payload] : payload;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (socket.destroyed) return;
        socket.write(parts[i]!, 'latin1');
      }
    });
  });
}
