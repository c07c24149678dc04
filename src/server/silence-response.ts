/**
 * Makes a response drop whatever its writer still does with it, once sluice has ended the answer in
 * the writer's place (a 504 for handler_timeout, an answer broken while its written part drains).
 * Node sends nothing more after an answer ends, but its `writeHead()` and `setHeader()` throw once a
 * head is out (ERR_HTTP_HEADERS_SENT), which in a callback is an uncaught exception, one log line per
 * late answer; and while a broken answer's written part still drains, a write or `end()` would join
 * the queue and go out before the close: a body cut by a failure would reach the client with a clean
 * end (a last chunk), looking complete. Writes are dropped with their callbacks told `reason`, as Node
 * does for a client gone.
 */
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

export function silenceResponse(response: ServerResponse | Http2ServerResponse, reason: Error): void {
  const res = response as unknown as Record<string, unknown>;
  for (const name of HEAD_METHODS) res[name] = returnThis;
  res.write = (...args: unknown[]): boolean => {
    callBack(args, reason);
    return true;
  };
  res.end = function (this: unknown, ...args: unknown[]): unknown {
    callBack(args, reason);
    return this;
  };
}

/** Response methods that only shape a head: no-ops once sluice has ended the answer. */
const HEAD_METHODS = [
  'writeHead',
  'setHeader',
  'setHeaders',
  'appendHeader',
  'removeHeader',
  'flushHeaders',
  'writeContinue',
  'writeEarlyHints',
  'addTrailers',
] as const;

function returnThis<T>(this: T): T {
  return this;
}

/** Calls the callback among a write's `args` (its last function) with `err`, on the next tick. */
function callBack(args: readonly unknown[], err: Error): void {
  const last = args[args.length - 1];
  if (typeof last === 'function') process.nextTick(last as (err: Error) => void, err);
}
