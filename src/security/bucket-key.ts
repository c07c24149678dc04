/**
 * The key a rate-limit bucket is stored under. A key longer than KEY_MAX_LENGTH (one built from a
 * header a client writes, `key: $http_x_api_key`) is stored as its SHA-256 digest: the bound on
 * buckets counts keys, not bytes, and 30,000 distinct 15 KB keys took a worker from 66 to 528 MB
 * (100,000 would be about 1.5 GB per worker, and as much again in Redis key names). Addresses and
 * ordinary tokens stay as they are, readable in Redis; a digest costs about 1 µs per request, only
 * for long keys.
 */
import { createHash } from 'node:crypto';

/** Longest key kept as written: an IPv6 address with a scope (45), a UUID (36), a JWT's is not. */
const KEY_MAX_LENGTH = 64;

/** `key` as a bucket is stored under it. */
export function bucketKey(key: string): string {
  // A key kept as written that starts with `#` gets another: `#sha256:…` is then only ever a
  // digest, and a client cannot send one (read from Redis key names) to share another's bucket.
  if (key.length <= KEY_MAX_LENGTH) return key.charCodeAt(0) === 0x23 /* # */ ? `#${key}` : key;
  return `#sha256:${createHash('sha256').update(key).digest('base64url')}`;
}
