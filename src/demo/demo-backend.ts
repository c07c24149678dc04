/**
 * The demo stack's sample service: it answers every request with its path and the backend's
 * name; `/slow` waits 2 s first, so a thousand concurrent `/slow` requests finish together in
 * about 2 s (the event loop waits on timers, not threads).
 */
import http from 'node:http';

/** A running demo backend. */
export interface DemoBackend {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

/** How long `/slow` waits before answering. */
export const SLOW_MS = 2000;

/** Starts a demo backend on 127.0.0.1 (port 0: any free port). */
export async function startDemoBackend(name: string, port = 0): Promise<DemoBackend> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const answer = () => {
      const body = `${JSON.stringify({ backend: name, path, method: req.method })}\n`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    // Drain any request body before answering so keep-alive connections stay in step.
    req.resume();
    if (path === '/slow') setTimeout(answer, SLOW_MS);
    else answer();
  });
  // Above Node's default so a thousand concurrent /slow requests queue no one.
  server.maxConnections = 20_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => resolve());
  });
  const address = server.address();
  return {
    name,
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
