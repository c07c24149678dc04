/**
 * W3C Trace Context (`traceparent`, `tracestate`) without the tracing SDK: parsing what a client
 * sent, and fresh ids when it sent none. Every request carries a trace id (logged as `trace_id`)
 * and passes a `traceparent` upstream, whether or not spans are exported.
 *
 * Ids come from a pool of random bytes refilled 4 KiB at a time: one `randomFillSync` per 170
 * trace ids instead of one per request.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

// Each id is its own string: a slice of one hex string per refill would be cheaper, but V8 keeps
// a 16- or 32-character slice as a view that holds the whole 8 KiB string alive for as long as
// the id lives (a WebSocket's or a stream's exchange keeps its trace id for hours).
function randomHex(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

/** A fresh 32-hex-digit trace id (never all zeros). */
export function newTraceId(): string {
  const id = randomHex(16);
  return id === '00000000000000000000000000000000' ? newTraceId() : id;
}

/** A fresh 16-hex-digit span id (never all zeros). */
export function newSpanId(): string {
  const id = randomHex(8);
  return id === '0000000000000000' ? newSpanId() : id;
}

/** The parts of a valid `traceparent`. */
export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  /** Two hex digits; bit 0 is "sampled". */
  readonly flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Parses a `traceparent` value; null when it is malformed, uses version ff, or has all-zero ids
 * (then the request starts a new trace, as the spec says).
 */
export function parseTraceparent(value: string | null): TraceParent | null {
  if (value === null) return null;
  const m = TRACEPARENT.exec(value.trim());
  if (m === null) return null;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return null;
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
}

/** The `traceparent` value for a span. */
export function formatTraceparent(traceId: string, spanId: string, flags: string): string {
  return `00-${traceId}-${spanId}-${flags}`;
}
