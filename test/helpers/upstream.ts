/**
 * Real upstream servers on 127.0.0.1 for tests: each records what it received (method, target,
 * raw headers, body) and answers with a handler, by default a JSON echo of the request.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the upstream saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly remotePort: number;
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** A running test upstream. */
export interface TestUpstream {
  readonly port: number;
  readonly url: string;
  readonly seen: SeenRequest[];
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** The default handler: 200 with a JSON echo of the request. */
export const echo: UpstreamHandler = (req, res, body) => {
  const doc = JSON.stringify({
    method: req.method,
    url: req.url,
    headers: req.headers,
    body: body.toString(),
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc) });
  res.end(doc);
};

/**
 * Starts an upstream that buffers each request body, records it, then calls `handler`. Under a
 * long load, `record: false` keeps `seen` empty (the handler can count what it needs).
 */
export async function startUpstream(
  handler: UpstreamHandler = echo,
  opts: { streaming?: boolean; record?: boolean } = {},
): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  if (opts.record === false) seen.push = () => 0;
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server = http.createServer((req, res) => {
    if (opts.streaming) {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body: Buffer.alloc(0),
        remotePort: req.socket.remotePort ?? 0,
      });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        body,
        remotePort: req.socket.remotePort ?? 0,
      });
      handler(req, res, body);
    });
  });
  server.on('connection', (s: Socket) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    get connections() {
      return state.connections;
    },
    set connections(v: number) {
      state.connections = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
