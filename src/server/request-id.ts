/**
 * Request ids (`$request_id`, `request_id` in logs, `x-sluice-error-id`): 24 hex characters, a
 * random per-process prefix and a counter. Unique across workers and restarts without a random
 * draw per request (crypto.randomBytes per request costs about 1 µs; this costs a string concat).
 */
import { randomBytes } from 'node:crypto';

let prefix = randomBytes(8).toString('hex');
let counter = 0;

/** The next request id of this process. */
export function nextRequestId(): string {
  counter = (counter + 1) >>> 0;
  // After 2^32 ids, a fresh prefix keeps them unique.
  if (counter === 0) prefix = randomBytes(8).toString('hex');
  return prefix + counter.toString(16).padStart(8, '0');
}
