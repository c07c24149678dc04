/** A small HTTP client for tests that, unlike fetch, may set Host and other forbidden headers. */
import { request as nodeRequest } from 'node:http';
import { request } from 'undici';

/** A buffered response. */
export interface TestResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  json(): unknown;
}

/** Sends one request and buffers the answer. */
export async function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<TestResponse> {
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
  });
  const body = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json: () => JSON.parse(body),
  };
}

/**
 * Sends `body` with node:http in writes of `piece` bytes (waiting for 'drain', and `pauseMs`
 * between writes): announced by Content-Length, or without one, which Node's client sends chunked.
 * Resolves with the status and the whole answer.
 */
export function sendInPieces(
  url: string,
  body: Buffer,
  opts: { method?: string; framing?: 'length' | 'chunked'; piece?: number; pauseMs?: number } = {},
): Promise<{ status: number; body: Buffer }> {
  const piece = opts.piece ?? 65_536;
  return new Promise((resolve, reject) => {
    const req = nodeRequest(url, {
      method: opts.method ?? 'PUT',
      headers: (opts.framing ?? 'length') === 'length' ? { 'content-length': body.length } : {},
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    (async () => {
      for (let at = 0; at < body.length; at += piece) {
        if (!req.write(body.subarray(at, at + piece))) await new Promise((r) => req.once('drain', r));
        if (opts.pauseMs !== undefined) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
      req.end();
    })().catch(reject);
  });
}
