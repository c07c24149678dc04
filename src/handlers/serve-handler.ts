/**
 * Serves one request with a user handler. A handler that throws or rejects costs its request a
 * 500 (with an error id matching one log line carrying the stack), never the worker.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveFetch } from './fetch-adapter.js';
import type { LoadedHandler } from './load-handler.js';

/** What serving a handler needs from the request being served (declared here, implemented by the server). */
export interface HandlerExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly scheme: string;
  /** The Host header value as sent. */
  readonly hostHeader: string;
  status: number;
  bytesOut: number;
  /** The handler failed: log it and answer 500 (or break a started answer). */
  handlerFailed(err: unknown): void;
  complete(): void;
  clientGone(): void;
}

/** Runs `handler` for `x`. */
export function serveHandler(x: HandlerExchange, handler: LoadedHandler): void {
  const res = x.res;
  if (handler.kind === 'fetch') {
    serveFetch(handler.app, x.req, res, x.scheme, x.hostHeader).then(
      (bytes) => {
        x.status = res.statusCode;
        x.bytesOut = bytes;
        x.complete();
      },
      (err: unknown) => {
        if (res.destroyed && !res.writableFinished) x.clientGone();
        else x.handlerFailed(err);
      },
    );
    return;
  }
  // A Node listener writes to `res` itself: watch the response to know how it ended.
  const socket = x.req.socket;
  const before = socket.bytesWritten;
  res.once('finish', () => {
    x.status = res.statusCode;
    x.bytesOut = socket.bytesWritten - before;
    x.complete();
  });
  res.once('close', () => {
    if (!res.writableFinished) x.clientGone();
  });
  try {
    const result = handler.listener(x.req, res);
    if (result instanceof Promise) result.catch((err: unknown) => x.handlerFailed(err));
  } catch (err) {
    x.handlerFailed(err);
  }
}
