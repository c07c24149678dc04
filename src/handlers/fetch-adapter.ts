/**
 * Serves a Node request with a fetch-style app: IncomingMessage → `Request` (the body as a web
 * stream, never buffered), `Response` → ServerResponse (the body streamed with back-pressure,
 * every Set-Cookie kept separate).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FetchApp } from './load-handler.js';

/** Builds the web `Request` for a Node request. */
export function toRequest(req: IncomingMessage, scheme: string, host: string): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (hasBody) {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return new Request(`${scheme}://${host || 'localhost'}${req.url ?? '/'}`, init);
}

/** Writes a web `Response` to the Node response; returns the body bytes written. */
export async function writeResponse(res: ServerResponse, response: Response): Promise<number> {
  const headers: string[] = [];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers.push(name, value);
  });
  for (const cookie of response.headers.getSetCookie()) headers.push('set-cookie', cookie);
  res.writeHead(response.status, response.statusText || undefined, headers);
  let bytes = 0;
  if (response.body === null) {
    res.end();
    return 0;
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          res.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          res.off('drain', onDrain);
          reject(new Error('client went away'));
        };
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
    }
  }
  res.end();
  return bytes;
}

/** Calls a fetch app for one request and writes its answer. */
export async function serveFetch(
  app: FetchApp,
  req: IncomingMessage,
  res: ServerResponse,
  scheme: string,
  host: string,
): Promise<number> {
  const response: unknown = await app.fetch(toRequest(req, scheme, host));
  // Duck-typed: a Response from another copy of undici (or a framework's subclass) is fine.
  if (
    typeof response !== 'object' ||
    response === null ||
    typeof (response as Response).status !== 'number'
  ) {
    throw new TypeError(
      `fetch() must return a Response, got ${response === null ? 'null' : typeof response}`,
    );
  }
  return writeResponse(res, response as Response);
}
