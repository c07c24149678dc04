import type { Readable } from 'node:stream';

/**
 * Ends a request body that will not arrive whole with the error Node's HTTP/1.1 server gives one
 * whose connection closed part-way (`ECONNRESET`, "aborted"): its readers see an error, never a
 * clean end, and none of them waits for ever.
 */
export function abortBody(req: Readable): void {
  if (!req.destroyed) req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
}
